"""FineFoundry's `db` package, served by storage.api (put storage/compat on sys.path to use it).

The project root is made importable here, so that folder on the path is all FineFoundry needs;
storage.api sets Django up (DJANGO_SETTINGS_MODULE, FINEFOUNDRY_DB) on first import.
"""

import importlib.util
import sys
from pathlib import Path

if importlib.util.find_spec("storage") is None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from db.core import close_all_connections, get_connection, get_db_path, init_db  # noqa: E402
from db.evaluation_runs import (  # noqa: E402
    delete_evaluation_run,
    get_evaluation_history_for_model,
    get_evaluation_run,
    get_evaluation_runs_for_training,
    get_recent_evaluation_runs,
    save_evaluation_run,
)
from db.logs import DatabaseHandler, clear_logs, get_log_count, get_logs, setup_database_logging  # noqa: E402
from db.scraped_data import (  # noqa: E402
    add_scraped_pairs,
    create_scrape_session,
    delete_scrape_session,
    export_session_to_json,
    get_pairs_for_session,
    get_scrape_session,
    list_scrape_sessions,
)
from db.settings import delete_setting, get_all_settings, get_setting, set_setting  # noqa: E402
from db.training_configs import (  # noqa: E402
    delete_training_config,
    get_last_used_config,
    get_training_config,
    list_training_configs,
    rename_training_config,
    save_training_config,
    set_last_used_config,
    validate_config,
)
from db.training_runs import (  # noqa: E402
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
    "get_db_path",
    "get_connection",
    "init_db",
    "close_all_connections",
    "get_setting",
    "set_setting",
    "get_all_settings",
    "delete_setting",
    "list_training_configs",
    "get_training_config",
    "save_training_config",
    "delete_training_config",
    "rename_training_config",
    "get_last_used_config",
    "set_last_used_config",
    "validate_config",
    "create_scrape_session",
    "add_scraped_pairs",
    "get_scrape_session",
    "list_scrape_sessions",
    "get_pairs_for_session",
    "export_session_to_json",
    "delete_scrape_session",
    "create_training_run",
    "get_training_run",
    "list_training_runs",
    "update_training_run",
    "delete_training_run",
    "get_run_storage_paths",
    "get_latest_run",
    "get_managed_storage_root",
    "DatabaseHandler",
    "get_logs",
    "clear_logs",
    "get_log_count",
    "setup_database_logging",
    "save_evaluation_run",
    "get_evaluation_run",
    "get_evaluation_runs_for_training",
    "get_recent_evaluation_runs",
    "get_evaluation_history_for_model",
    "delete_evaluation_run",
]
