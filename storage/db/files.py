"""Refuse to run on a database file that is not SQLite, is damaged, or cannot be written.

Checked by storage.db.sqlite before a process's first connection (opening runs PRAGMAs that
would fail with a raw traceback, switch a damaged file to WAL, or leave a WAL beside a file that
is not ours), so the user gets one clear sentence and the file is never touched.

The file itself is only ever read through SQLite. Closing any descriptor of a file drops every
POSIX lock the process holds on it, including those of its live SQLite connections (SQLite's
"How To Corrupt An SQLite Database File", 2.2); SQLite's own connections share one lock table
per file and defer closing descriptors while a lock is held, so they are safe where Python's
`open()` is not. `os.stat` and `os.access` take a path, never a descriptor, so they are safe too.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured


class UnusableDatabase(ImproperlyConfigured):
    """The configured database file must not be opened; the message says why."""

    def __str__(self) -> str:
        return (
            f"FineFoundry Storage will not open its database: {self.args[0]}. Nothing was changed. "
            "Point FINEFOUNDRY_DB at a FineFoundry database, or restore this one from a backup "
            "(finefoundry.backup-*.db beside it)."
        )


# Files this process has vetted (resolved path strings); see vet_database_file.
_vetted: set[str] = set()
_vetting = threading.Lock()


def database_file_problem(path: Path) -> str | None:
    """Say what is wrong with the place `path` names, or None; looks at paths only, never opens the file."""
    try:
        os.stat(path)
    except FileNotFoundError:
        if not os.access(path.parent, os.W_OK):
            return f"the database {path} does not exist and its directory {path.parent} is not writable"
        return None
    except OSError as exc:
        return f"the database {path} cannot be read: {exc.strerror}"
    if os.path.isdir(path):
        return f"the database path {path} is a directory, not a file"
    if not os.access(path, os.R_OK):
        return f"the database {path} cannot be read: permission denied"
    if not os.access(path, os.W_OK) or not os.access(path.parent, os.W_OK):
        return f"the database {path} (or its directory, where SQLite keeps its journal) is read-only"
    return None


def _sqlite_problem(path: Path, exc: sqlite3.Error) -> str:
    text = str(exc)
    if "not a database" in text:
        return f"{path} is not an SQLite database or its header is damaged"
    if "readonly" in text or "read-only" in text:
        return f"the database {path} (or its directory, where SQLite keeps its journal) is read-only"
    return f"the database {path} is damaged or unreadable ({text})"


def damage_report(path: Path, *, full: bool = False) -> list[str]:
    """Run quick_check (integrity_check with `full`) on a read-only SQLite connection; [] when healthy.

    Read-only (`mode=ro`): a damaged file is never written, its journal mode never switched.
    """
    pragma = "integrity_check" if full else "quick_check"
    try:
        connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=30)
    except sqlite3.Error as exc:
        return [_sqlite_problem(path, exc)]
    try:
        return [message for (message,) in connection.execute(f"PRAGMA {pragma}") if message != "ok"]
    except sqlite3.Error as exc:
        # A badly damaged file makes the check itself stop half way; that is the finding.
        return [_sqlite_problem(path, exc)]
    finally:
        connection.close()


def foreign_key_problems(path: Path) -> list[tuple]:
    """PRAGMA foreign_key_check on a read-only connection: (table, rowid, parent, fk index) rows."""
    connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=30)
    try:
        return connection.execute("PRAGMA foreign_key_check").fetchall()
    finally:
        connection.close()


def _journal_mode(path: Path) -> str:
    connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=30)
    try:
        return connection.execute("PRAGMA journal_mode").fetchone()[0].lower()
    finally:
        connection.close()


def vet_database_file(path: Path, *, thorough: bool = False) -> None:
    """Raise UnusableDatabase unless the file at `path` may be opened and written; once per process.

    Every process checks the header (through SQLite) before its first connection. A file not yet
    in WAL mode (a desktop database, or one we have never opened) also gets a quick_check, because
    our first connection rewrites its header to switch it to WAL; `thorough` (migrate, adoption)
    always runs one, before the first write.
    """
    key = str(path)
    with _vetting:
        if key in _vetted and not thorough:
            return
        problem = database_file_problem(path)
        if problem is not None:
            raise UnusableDatabase(problem)
        if not os.path.exists(path):
            _vetted.add(key)
            return
        try:
            mode = _journal_mode(path)
        except sqlite3.Error as exc:
            raise UnusableDatabase(_sqlite_problem(path, exc)) from exc
        if thorough or mode != "wal":
            damage = damage_report(path)
            if damage:
                more = f" and {len(damage) - 1} more problem(s)" if len(damage) > 1 else ""
                raise UnusableDatabase(f"the database {path} is damaged (quick_check: {damage[0]}{more})")
        _vetted.add(key)


def damaged_database_error(error: BaseException | None, path: Path) -> UnusableDatabase | None:
    """The UnusableDatabase an SQLite error met while serving amounts to, or None if it says nothing of damage."""
    if isinstance(error, UnusableDatabase):
        return error
    text = str(error)
    if error is None or not any(sign in text for sign in ("malformed", "not a database", "database corruption")):
        return None
    return UnusableDatabase(f"the database {path} is damaged ({text})")
