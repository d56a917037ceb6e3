"""FineFoundry's `db` package, served by storage.api (put storage/compat on sys.path to use it).

The project root is made importable here, so that folder on the path is all FineFoundry needs;
storage.api sets Django up (DJANGO_SETTINGS_MODULE, FINEFOUNDRY_DB) on first import.
"""

import importlib.util
import sys
from pathlib import Path

if importlib.util.find_spec("storage") is None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from db.core import close_all_connections, get_connection, get_db_path, init_db
from db.evaluation_runs import (
    delete_evaluation_run,
    get_evaluation_history_for_model,
    get_evaluation_run,
    get_evaluation_runs_for_training,
    get_recent_evaluation_runs,
    save_evaluation_run,
)
from db.logs import DatabaseHandler, clear_logs, get_log_count, get_logs, setup_database_logging
from db.scraped_data import (
    add_scraped_pairs,
    create_scrape_session,
    delete_scrape_session,
    export_session_to_json,
    get_pairs_for_session,
    get_scrape_session,
    list_scrape_sessions,
)
from db.settings import delete_setting, get_all_settings, get_setting, set_setting
from db.training_configs import (
    delete_training_config,
    get_last_used_config,
    get_training_config,
    list_training_configs,
    rename_training_config,
    save_training_config,
    set_last_used_config,
    validate_config,
)
from db.training_runs import (
    create_training_run,
    delete_training_run,
    get_latest_run,
    get_managed_storage_root,
    get_run_storage_paths,
    get_training_run,
    list_training_runs,
    update_training_run,
)

# The names FineFoundry's own db/__init__.py exports.
__all__ = [
    "DatabaseHandler",
    "add_scraped_pairs",
    "clear_logs",
    "close_all_connections",
    "create_scrape_session",
    "create_training_run",
    "delete_evaluation_run",
    "delete_scrape_session",
    "delete_setting",
    "delete_training_config",
    "delete_training_run",
    "export_session_to_json",
    "get_all_settings",
    "get_connection",
    "get_db_path",
    "get_evaluation_history_for_model",
    "get_evaluation_run",
    "get_evaluation_runs_for_training",
    "get_last_used_config",
    "get_latest_run",
    "get_log_count",
    "get_logs",
    "get_managed_storage_root",
    "get_pairs_for_session",
    "get_recent_evaluation_runs",
    "get_run_storage_paths",
    "get_scrape_session",
    "get_setting",
    "get_training_config",
    "get_training_run",
    "init_db",
    "list_scrape_sessions",
    "list_training_configs",
    "list_training_runs",
    "rename_training_config",
    "save_evaluation_run",
    "save_training_config",
    "set_last_used_config",
    "set_setting",
    "setup_database_logging",
    "update_training_run",
    "validate_config",
]
