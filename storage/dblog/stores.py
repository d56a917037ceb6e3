"""Where the log writer puts its batches: app_logs, over a connection nobody else uses.

`SQLiteLogStore` (the default on SQLite) opens its own `sqlite3` connection to the file Django
is configured with at write time, so a caller's transaction never holds our rows back or rolls
them back, and Django's `django.db.backends` logger never sees our SQL. `DjangoLogStore`
(PostgreSQL and other databases) writes through the writer thread's own Django connection:
Django connections are per thread, so it is just as separate from the callers'.
"""

from __future__ import annotations

import contextlib
import functools
import json
import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from storage.redaction import is_secret_setting

LOG_COLUMNS = ("timestamp", "level", "logger", "message", "module", "func_name", "line_no", "exc_info")
# A row as queued and written: record.created (epoch seconds), level name, logger, message,
# module, function, line, traceback text.
LogRow = tuple[float, str, str, str, str | None, str | None, int | None, str | None]


@functools.lru_cache(maxsize=8)
def _utc_second(seconds: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(seconds))


def utc_text(created: float) -> str:
    """`YYYY-MM-DD HH:MM:SS.ffffff` in UTC: sorts with SQLite's datetime('now') defaults."""
    seconds = int(created)
    return f"{_utc_second(seconds)}.{int((created - seconds) * 1_000_000):06d}"


class StoreNotReady(Exception):
    """The database file or the app_logs table does not exist yet (fresh checkout, during migrate)."""


class StoreUnavailable(Exception):
    """The database refused the batch for now (locked past the busy timeout, read-only, I/O error)."""


class StoreRejected(Exception):
    """The database refuses this batch itself (a value too big, a constraint or trigger): retrying cannot help."""


class LogStore(Protocol):
    def describe(self) -> str: ...

    def secret_values(self) -> Sequence[str]: ...

    def write(self, rows: Sequence[LogRow]) -> None: ...

    def close(self) -> None: ...


def require_apps_ready() -> None:
    """Records wait until Django's apps are loaded (the settings table may not be there before)."""
    from django.apps import apps

    if not apps.models_ready:
        raise StoreNotReady("Django apps are not loaded yet")


def secret_setting_rows(rows: Sequence[tuple[str, str]]) -> list[str]:
    """The stored values of the secret settings among all (key, value) rows (one rule: is_secret_setting)."""
    return [value for key, value in rows if is_secret_setting(key)]


def configured_database_name(alias: str = "default") -> str:
    """The database Django uses right now (in tests: the test database, not FINEFOUNDRY_DB)."""
    from django.conf import settings
    from django.db import connections

    if not settings.configured:
        raise StoreNotReady("Django settings are not configured")
    return str(connections[alias].settings_dict["NAME"])


def _is_missing(message: str) -> bool:
    message = message.lower()
    return "no such table" in message or "unable to open database" in message or "does not exist" in message


# The timestamp text is made in SQL (as utc_text() would). With JSON the whole batch is one
# statement, so SQLite does the per-row work without taking the GIL back after every row, and a
# caller logging in a tight loop does not starve the writer (about 20% more records/s end to end
# in bench/dblog.py). executemany() is the fallback for SQLite before 3.38 (no ->> operator).
_TIMESTAMP = (
    "strftime('%Y-%m-%d %H:%M:%S', CAST({c} AS INTEGER), 'unixepoch')"
    " || printf('.%06d', CAST(({c} - CAST({c} AS INTEGER)) * 1000000 AS INTEGER))"
)
_FIELDS = ", ".join(f"value ->> {i} AS {name}" for i, name in enumerate(("created", *LOG_COLUMNS[1:])))
SQLITE_INSERT_BATCH = (
    f"WITH batch AS MATERIALIZED (SELECT {_FIELDS} FROM json_each(?) ORDER BY key) "
    f"INSERT INTO app_logs ({', '.join(LOG_COLUMNS)}) "
    f"SELECT {_TIMESTAMP.format(c='created')}, {', '.join(LOG_COLUMNS[1:])} FROM batch"
)
SQLITE_INSERT_ROW = (
    f"INSERT INTO app_logs ({', '.join(LOG_COLUMNS)}) VALUES ({_TIMESTAMP.format(c='?1')}, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
)


# Long texts are the other way round: SQLite parses a JSON value again for every ->>, so rows
# averaging more than this many characters go through executemany() (3x faster at 1 MB a row).
WHOLE_BATCH_MAX_TEXT = 2_000


def _text_size(rows: Sequence[LogRow]) -> int:
    return sum(len(row[3]) + (len(row[7]) if row[7] else 0) for row in rows)


class SQLiteLogStore:
    """Batches into app_logs on a private sqlite3 connection: WAL, busy timeout, BEGIN IMMEDIATE."""

    def __init__(self, database: str | Path | None = None, *, timeout: float = 30.0, whole_batch: bool | None = None):
        self.database = None if database is None else str(database)
        self.timeout = timeout
        self._connection: sqlite3.Connection | None = None
        self._path: str | None = None
        self._whole_batch = sqlite3.sqlite_version_info >= (3, 38, 0) if whole_batch is None else whole_batch

    def describe(self) -> str:
        return self._path or self.database or "the configured database"

    def _connect(self) -> sqlite3.Connection:
        path = self.database or configured_database_name()
        if self._connection is not None and path == self._path:
            return self._connection
        self.close()
        # mode=rw: never create the file; that is migrate's job, and a typo must not leave stray files.
        uri = f"{Path(path).resolve().as_uri()}?mode=rw"
        try:
            connection = sqlite3.connect(
                uri, uri=True, timeout=self.timeout, isolation_level=None, check_same_thread=False
            )
            connection.execute(f"PRAGMA busy_timeout={int(self.timeout * 1000)}")
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")
        except sqlite3.Error as exc:
            raise self._translate(exc) from exc
        self._connection, self._path = connection, path
        return connection

    @staticmethod
    def _translate(exc: sqlite3.Error) -> Exception:
        if _is_missing(str(exc)):
            return StoreNotReady(str(exc))
        # "string or blob too big" is a DataError, a trigger's RAISE(ABORT) an IntegrityError.
        if isinstance(exc, (sqlite3.DataError, sqlite3.IntegrityError)):
            return StoreRejected(str(exc))
        return StoreUnavailable(str(exc))

    def secret_values(self) -> Sequence[str]:
        require_apps_ready()
        connection = self._connect()
        try:
            rows = connection.execute("SELECT key, value FROM settings").fetchall()
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):
                return ()
            raise self._translate(exc) from exc
        return secret_setting_rows(rows)

    def write(self, rows: Sequence[LogRow]) -> None:
        connection = self._connect()
        try:
            connection.execute("BEGIN IMMEDIATE")
            try:
                if self._whole_batch and _text_size(rows) < WHOLE_BATCH_MAX_TEXT * len(rows):
                    connection.execute(SQLITE_INSERT_BATCH, (json.dumps(rows, ensure_ascii=False),))
                else:
                    connection.executemany(SQLITE_INSERT_ROW, rows)
                connection.execute("COMMIT")
            finally:
                if connection.in_transaction:
                    connection.execute("ROLLBACK")
        except sqlite3.Error as exc:
            raise self._translate(exc) from exc

    def close(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(sqlite3.Error):
                self._connection.close()
        self._connection, self._path = None, None

    def abandon(self) -> None:
        """Forget the connection without closing it (after fork it belongs to the parent)."""
        self._connection, self._path = None, None


class DjangoLogStore:
    """Batches into app_logs through this thread's own Django connection (portable fallback)."""

    def __init__(self, alias: str = "default"):
        self.alias = alias

    def describe(self) -> str:
        return f"database {self.alias!r}"

    def _run(self, sql: str, params, *, many: bool = False):
        from django.db import DatabaseError, DataError, IntegrityError, connections, transaction

        connection = connections[self.alias]
        try:
            with transaction.atomic(using=self.alias):
                # create_cursor(): the backend's own cursor, without the debug wrapper that logs SQL.
                cursor = connection.create_cursor()
                try:
                    if many:
                        cursor.executemany(sql, params)
                        return None
                    cursor.execute(sql, params)
                    return cursor.fetchall()
                finally:
                    cursor.close()
        except (DataError, IntegrityError) as exc:
            raise StoreRejected(str(exc)) from exc
        except DatabaseError as exc:
            connection.close_if_unusable_or_obsolete()
            raise (StoreNotReady if _is_missing(str(exc)) else StoreUnavailable)(str(exc)) from exc

    def secret_values(self) -> Sequence[str]:
        require_apps_ready()
        try:
            rows = self._run("SELECT key, value FROM settings", ())
        except StoreNotReady:
            return ()
        return secret_setting_rows(rows)

    def write(self, rows: Sequence[LogRow]) -> None:
        from django.db import connections

        quote = connections[self.alias].ops.quote_name
        columns = ", ".join(quote(column) for column in LOG_COLUMNS)
        sql = f"INSERT INTO {quote('app_logs')} ({columns}) VALUES ({', '.join(['%s'] * len(LOG_COLUMNS))})"
        self._run(sql, [(utc_text(row[0]), *row[1:]) for row in rows], many=True)

    def close(self) -> None:
        from django.db import connections

        connections[self.alias].close()

    def abandon(self) -> None:
        """Nothing to forget: Django connections are per thread and the writer thread did not survive fork."""


def store_for(*, database: str | Path | None = None, store: str = "auto", timeout: float = 30.0) -> LogStore:
    """Pick the store: a given SQLite file, or whatever Django's default database is."""
    if store not in {"auto", "sqlite", "django"}:
        raise ValueError(f"store must be 'auto', 'sqlite' or 'django', got {store!r}")
    if store == "sqlite" or database is not None:
        return SQLiteLogStore(database, timeout=timeout)
    from django.conf import settings
    from django.db import connections

    if not settings.configured:
        raise StoreNotReady("Django settings are not configured")
    if store == "django":
        return DjangoLogStore()

    return SQLiteLogStore(timeout=timeout) if connections["default"].vendor == "sqlite" else DjangoLogStore()
