"""FineFoundry's db.training_configs: saved training configurations and the last one used."""

from storage.api import (
    delete_training_config,
    get_last_used_config,
    get_training_config,
    list_training_configs,
    rename_training_config,
    save_training_config,
    set_last_used_config,
    validate_config,
)

__all__ = [
    "delete_training_config",
    "get_last_used_config",
    "get_training_config",
    "list_training_configs",
    "rename_training_config",
    "save_training_config",
    "set_last_used_config",
    "validate_config",
]
