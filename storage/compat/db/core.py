"""FineFoundry's db.core: the database file, raw connections, schema set-up and version."""

from storage.api import (
    close_all_connections,
    get_connection,
    get_db_path,
    get_schema_version,
    init_db,
    set_schema_version,
)

__all__ = [
    "close_all_connections",
    "get_connection",
    "get_db_path",
    "get_schema_version",
    "init_db",
    "set_schema_version",
]
