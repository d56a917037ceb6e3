"""Refuse to run on a database file that is not SQLite, is damaged, or cannot be written.

Checked by storage.sqlite_backend before it opens the file (opening runs PRAGMAs that would
fail with a raw traceback, or leave a WAL beside a file that is not ours), so the user gets
one clear sentence and the file is never touched.
"""

from __future__ import annotations

import os
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

SQLITE_HEADER = b"SQLite format 3\x00"


class UnusableDatabase(ImproperlyConfigured):
    """The configured database file must not be opened; the message says why."""

    def __str__(self) -> str:
        return (
            f"FineFoundry Storage will not open its database: {self.args[0]}. Nothing was changed. "
            "Point FINEFOUNDRY_DB at a FineFoundry database, or restore this one from a backup "
            "(finefoundry.backup-*.db beside it)."
        )


def database_file_problem(path: Path) -> str | None:
    """Say what is wrong with the SQLite file at `path`, or None when it is usable (or absent)."""
    if not path.exists():
        if not os.access(path.parent, os.W_OK):
            return f"the database {path} does not exist and its directory {path.parent} is not writable"
        return None
    if path.is_dir():
        return f"the database path {path} is a directory, not a file"
    try:
        with path.open("rb") as handle:
            header = handle.read(len(SQLITE_HEADER))
    except OSError as exc:
        return f"the database {path} cannot be read: {exc.strerror}"
    if header and header != SQLITE_HEADER:
        return f"{path} is not an SQLite database (its first bytes are not the SQLite header)"
    if not os.access(path, os.W_OK) or not os.access(path.parent, os.W_OK):
        return f"the database {path} (or its directory, where SQLite keeps its journal) is read-only"
    return None
