"""FineFoundry's db.settings: JSON values by key, and its named settings."""

from storage.api import (
    delete_setting,
    get_all_settings,
    get_hf_token,
    get_ollama_config,
    get_proxy_config,
    get_runpod_api_key,
    get_setting,
    set_hf_token,
    set_ollama_config,
    set_proxy_config,
    set_runpod_api_key,
    set_setting,
)

__all__ = [
    "delete_setting",
    "get_all_settings",
    "get_hf_token",
    "get_ollama_config",
    "get_proxy_config",
    "get_runpod_api_key",
    "get_setting",
    "set_hf_token",
    "set_ollama_config",
    "set_proxy_config",
    "set_runpod_api_key",
    "set_setting",
]
