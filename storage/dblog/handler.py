"""The database log handler: records of the configured loggers land in app_logs.

    LOGGING["handlers"]["database"] = {"class": "storage.dblog.handler.DatabaseLogHandler", "level": "INFO"}

`emit()` turns the record into a row and queues it; a writer thread (storage.dblog.writer) does
the database work. So logging never waits for the disk (only, when the writer is a full queue
behind, for it to make room), never raises, survives the caller's rollback, and never logs its
own SQL. Records of `django.db.backends` are never stored: with
DEBUG on they describe every query, including other handlers' writes, and would grow forever.

Options, all optional (as keys in the LOGGING handler entry):
  database    an SQLite file to write to instead of Django's default database
  store       "auto" (default), "sqlite" (own sqlite3 connection) or "django" (the writer
              thread's own Django connection; "auto" picks it on other databases than SQLite)
  queue_size  records held in memory at most (default 100,000)
  queue_bytes bytes of text held in memory at most (default 32 MB); beyond either bound the
              caller waits for the writer (records are dropped and counted only where waiting
              could deadlock or the database cannot be written to)
  max_chars   a message or traceback longer than this is stored cut to it, with a marker
              "[... truncated N characters ...]" (default 1,000,000)
  batch_size  most records written per transaction (default 1,000)
  timeout     busy timeout of the writer's SQLite connection in seconds (default 30)
"""

from __future__ import annotations

import functools
import logging
import threading
from pathlib import Path
from sys import getsizeof

from storage.dblog.stores import store_for
from storage.dblog.writer import (
    DEFAULT_CAPACITY,
    DEFAULT_CAPACITY_BYTES,
    ROW_OVERHEAD,
    LogWriter,
    acquire_writer,
    cap_text,
    release_writer,
)

DEFAULT_FLUSH_TIMEOUT = 10.0
DEFAULT_MAX_CHARS = 1_000_000
STORES = ("auto", "sqlite", "django")
IGNORED_LOGGER = "django.db.backends"

_tracebacks = logging.Formatter()


class DatabaseLogHandler(logging.Handler):
    """Queue records for app_logs; a background writer stores them in batches."""

    def __init__(
        self,
        level: int | str = logging.NOTSET,
        *,
        database: str | Path | None = None,
        store: str = "auto",
        queue_size: int = DEFAULT_CAPACITY,
        queue_bytes: int = DEFAULT_CAPACITY_BYTES,
        max_chars: int = DEFAULT_MAX_CHARS,
        batch_size: int = 1_000,
        timeout: float = 30.0,
    ):
        super().__init__(level)
        if store not in STORES:
            raise ValueError(f"store must be one of {', '.join(STORES)}, got {store!r}")
        if max_chars < 100:
            raise ValueError(f"max_chars must be at least 100, got {max_chars!r}")
        self.max_chars = max_chars
        self._key = (None if database is None else str(database), store, queue_size, queue_bytes, batch_size, timeout)
        factory = functools.partial(store_for, database=database, store=store, timeout=timeout)
        self._writer = acquire_writer(
            self._key,
            lambda: LogWriter(factory, capacity=queue_size, capacity_bytes=queue_bytes, batch_size=batch_size),
        )
        self._released = False

    def handle(self, record: logging.LogRecord) -> bool | logging.LogRecord:
        # emit() only touches the thread-safe queue, so skip the per-handler lock (8 threads would contend on it).
        result = self.filter(record)
        if isinstance(result, logging.LogRecord):
            record = result
        if result:
            self.emit(record)
        return result

    def emit(self, record: logging.LogRecord) -> None:
        try:
            name = record.name
            if name == IGNORED_LOGGER or name.startswith(IGNORED_LOGGER + "."):
                return
            if threading.get_ident() == self._writer.thread_ident:
                return  # whatever the writer itself causes to be logged must not feed back into it
            try:
                message = record.getMessage()
            except Exception as exc:  # a bad format string still leaves a trace of the record
                message = f"{record.msg!r} with arguments {record.args!r} could not be formatted: {exc!r}"
            if record.exc_info and not record.exc_text:
                record.exc_text = _tracebacks.formatException(record.exc_info)
            details = record.exc_text or None
            if record.stack_info:
                stack = _tracebacks.formatStack(record.stack_info)
                details = f"{details}\n{stack}" if details else stack
            limit = self.max_chars
            if len(message) > limit:
                message = cap_text(message, limit)
            if details is not None and len(details) > limit:
                details = cap_text(details, limit)
            size = ROW_OVERHEAD + getsizeof(message) + (getsizeof(details) if details else 0)
            row = (record.created, record.levelname, name, message, record.module, record.funcName, record.lineno)
            self._writer.put((*row, details), size)
        except Exception:
            # Never raise into the caller, and never print a traceback per record: count it instead.
            self._writer.count_dropped(1)

    def flush(self, timeout: float | None = DEFAULT_FLUSH_TIMEOUT) -> bool:
        """Wait until every record emitted before this call is in app_logs; False if `timeout` ran out."""
        return self._writer.flush(timeout)

    def close(self) -> None:
        """Write what is queued; stop the writer when no other handler shares it."""
        self.flush()
        if not self._released:
            self._released = True
            release_writer(self._key)
        super().close()


def attach_database_handler(*, level: int = logging.INFO, logger_name: str | None = None) -> DatabaseLogHandler:
    """Store records of `logger_name` (the root logger when None) at `level` and above; return the handler."""
    logger = logging.getLogger(logger_name)
    for handler in logger.handlers:
        if isinstance(handler, DatabaseLogHandler):
            handler.setLevel(level)
            return handler
    handler = DatabaseLogHandler(level)
    logger.addHandler(handler)
    if logger.getEffectiveLevel() > level:
        logger.setLevel(level)
    return handler
