"""The database file's life in one process: raw sqlite3 connections, schema set-up, and letting go of it all.

FineFoundry runs raw SQL (`?` placeholders, `sqlite3.Row`) on `db.get_connection()`, and its
factory reset closes connections, deletes the database file and calls `init_db()` again. Every
connection this process holds on the file (Django's, the raw ones handed out here, the log
writer's, the search indexer's) must then let go, or it keeps writing into the deleted file.
Only SQLite itself ever opens or closes the database file here (see DESIGN: closing any other
descriptor of it drops the process's POSIX locks).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import weakref
from pathlib import Path

from django.db import connections
from django.db.backends.signals import connection_created

from storage.exceptions import StorageError


class RawSQLNeedsSQLite(StorageError):
    """get_connection() hands out an sqlite3 connection; a database server has none to give."""


class RawConnection(sqlite3.Connection):
    """A plain sqlite3 connection that can be weakly referenced (so a dead thread's one is let go)."""


_local = threading.local()
_raw_connections: weakref.WeakSet[RawConnection] = weakref.WeakSet()
_lock = threading.Lock()
_schema_ready = False
_schema_file: tuple[int, int] | None = None


def _database_settings() -> dict:
    return connections["default"].settings_dict


def _is_sqlite() -> bool:
    return connections["default"].vendor == "sqlite"


def database_file() -> Path:
    return Path(_database_settings()["NAME"])


def _file_identity() -> tuple[int, int] | None:
    """(device, inode) of the database file, or None when there is none; a stat, never an open."""
    try:
        info = os.stat(database_file())
    except FileNotFoundError:
        return None
    return (info.st_dev, info.st_ino)


# --- Raw connections -------------------------------------------------------------------------


def get_connection() -> sqlite3.Connection:
    """This thread's sqlite3 connection to the configured database, set up like Django's own."""
    if not _is_sqlite():
        raise RawSQLNeedsSQLite(
            "get_connection() returns a raw sqlite3 connection, and raw SQL needs SQLite; "
            f"this project uses a {connections['default'].vendor} database (DATABASE_URL). "
            "Use the storage.api functions instead."
        )
    cached = getattr(_local, "connection", None)
    if cached is not None and cached[1] == _file_identity():
        return cached[0]
    if cached is not None:  # the file was deleted or replaced under this connection
        _close_quietly(cached[0])
    options = _database_settings().get("OPTIONS", {})
    connection = sqlite3.connect(
        database_file(),
        timeout=options.get("timeout", 5),
        check_same_thread=False,
        factory=RawConnection,
        # Python's implicit BEGIN before a write becomes BEGIN IMMEDIATE, like Django's transaction_mode.
        isolation_level=options.get("transaction_mode") or "",
    )
    connection.row_factory = sqlite3.Row
    # The pragmas Django runs on its own connections, read from the one place they are set.
    for statement in (options.get("init_command") or "").split(";"):
        if statement.strip():
            connection.execute(statement)
    _local.connection = (connection, _file_identity())
    with _lock:
        _raw_connections.add(connection)
    return connection


def _close_quietly(connection: sqlite3.Connection) -> None:
    with contextlib.suppress(sqlite3.Error):
        connection.close()


# --- Letting go of the file ------------------------------------------------------------------

# Django connections of every thread, with the file they opened, so a reset can close them all.
_django_connections: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _remember_django_connection(sender, connection, **kwargs) -> None:
    if connection.vendor == "sqlite" and connection.alias == "default":
        _django_connections[connection] = _file_identity()


connection_created.connect(_remember_django_connection, dispatch_uid="storage.database_lifecycle")


def close_all_connections() -> None:
    """Close every connection this process holds on the database, in every thread.

    Queued log records are written first and the log writer reconnects on its next record;
    a running search-index thread is waited for; idle raw and Django connections of other threads
    are closed too (each reconnects on its next use). A connection of another thread that is inside
    a transaction is left alone: closing it would break that thread's work and drop the locks its
    read or write relies on. After this the file can be deleted (FineFoundry's factory reset).
    """
    global _schema_ready
    from storage.dblog import writer
    from storage.search import index as search_index

    writer.flush_all()
    search_index.wait_for_background()
    with _lock:
        raw = list(_raw_connections)
        _raw_connections.clear()
    own = getattr(_local, "connection", None)
    for connection in raw:
        if (own is not None and connection is own[0]) or not connection.in_transaction:
            _close_quietly(connection)
        else:
            with _lock:
                _raw_connections.add(connection)
    _local.connection = None
    connections.close_all()
    for wrapper in list(_django_connections):
        _drop_django_connection(wrapper)
    _schema_ready = False


def _drop_django_connection(wrapper) -> None:
    # Another thread's wrapper: close its sqlite3 handle (Django opens it with check_same_thread=False)
    # and forget it, so that thread opens a new one on its next query instead of using a closed one.
    handle = wrapper.connection
    if handle is not None:
        if handle.in_transaction:
            return  # busy in its own thread; see close_all_connections
        _close_quietly(handle)
        wrapper.connection = None
    _django_connections.pop(wrapper, None)


# --- Schema --------------------------------------------------------------------------------


def ensure_schema() -> None:
    """Create or upgrade the schema once per database file (cheap afterwards: FineFoundry calls this often).

    When the file was deleted or replaced since the schema was set up (a factory reset), every
    connection to the old file is closed first, then the new file gets the whole schema.
    """
    global _schema_ready, _schema_file
    if _schema_ready and _is_sqlite() and _file_identity() != _schema_file:
        close_all_connections()
    if _schema_ready:
        return
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)
    _schema_file = _file_identity() if _is_sqlite() else None
    _schema_ready = True


# --- Schema version (FineFoundry's app_state entry) ----------------------------------------

SCHEMA_VERSION_KEY = "schema_version"


def get_schema_version() -> int:
    """FineFoundry's own schema version number (app_state.schema_version); 0 when unset or unreadable."""
    from storage.models import AppState

    value = AppState.objects.filter(key=SCHEMA_VERSION_KEY).values_list("value", flat=True).first()
    try:
        return int(value) if value is not None else 0
    except (TypeError, ValueError):
        return 0


def set_schema_version(*, version: int) -> None:
    from storage.models import AppState
    from storage.validation import require_int

    if isinstance(version, str) and version.strip().lstrip("-").isdigit():
        version = int(version)
    require_int(version, name="version")
    AppState.objects.update_or_create(key=SCHEMA_VERSION_KEY, defaults={"value": str(version)})


__all__ = [
    "RawSQLNeedsSQLite",
    "close_all_connections",
    "ensure_schema",
    "get_connection",
    "get_schema_version",
    "set_schema_version",
]
