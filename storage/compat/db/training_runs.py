"""FineFoundry's db.training_runs: runs, their status and their managed storage."""

from storage.api import (
    create_training_run,
    delete_training_run,
    get_latest_run,
    get_managed_storage_root,
    get_run_storage_paths,
    get_runs_by_model,
    get_training_run,
    list_training_runs,
    update_training_run,
)

__all__ = [
    "create_training_run",
    "delete_training_run",
    "get_latest_run",
    "get_managed_storage_root",
    "get_run_storage_paths",
    "get_runs_by_model",
    "get_training_run",
    "list_training_runs",
    "update_training_run",
]
