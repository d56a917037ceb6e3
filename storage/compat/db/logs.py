"""FineFoundry's db.logs: the database log handler and reading and clearing app_logs."""

from storage.api import DatabaseHandler, clear_logs, get_log_count, get_logs, setup_database_logging

__all__ = ["DatabaseHandler", "clear_logs", "get_log_count", "get_logs", "setup_database_logging"]
