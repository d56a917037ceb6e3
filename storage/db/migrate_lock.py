"""One `migrate` at a time per database file, across processes (four FineFoundry processes may start at once).

The lock is a write transaction on a small SQLite file beside the database,
`<database>.migrate-lock`: SQLite holds it (so it works wherever SQLite does and dies with the
process), and it is never a lock on the database file itself, which SQLite alone manages. The
others wait, then find their migrations applied and nothing to do.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path

# Adopting a large desktop database (backup, then indexing every pair) can take minutes.
WAIT_SECONDS = 3600


def lock_path(database: Path) -> Path:
    return database.with_name(database.name + ".migrate-lock")


@contextlib.contextmanager
def migrate_lock(database: Path, *, on_wait: Callable[[], None] | None = None) -> Iterator[None]:
    """Hold the migrate lock of `database` for the block; wait (up to an hour) while another process holds it."""
    connection = sqlite3.connect(lock_path(database), timeout=0, isolation_level=None)
    try:
        deadline = time.monotonic() + WAIT_SECONDS
        waited = False
        while True:
            try:
                connection.execute("BEGIN EXCLUSIVE")
                break
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                if not waited and on_wait is not None:
                    on_wait()
                waited = True
                time.sleep(0.1)
        try:
            yield
        finally:
            connection.execute("ROLLBACK")
    finally:
        connection.close()
