"""The files this project must never write over or read as data: the live database and the run artefacts.

One owner for the rule, asked by exports (targets) and imports (sources). A path is the database
when it resolves to it (realpath, so through symlinks) or is the same inode (os.stat, so through
hard links; stat opens no descriptor, so it drops no SQLite lock). The same holds for its
`-wal`, `-shm` and `-journal` files: replacing the database under live connections corrupts
it, and replacing or even closing a descriptor of the `-wal` breaks every connection.
"""

from __future__ import annotations

import os
from pathlib import Path

from django.conf import settings
from django.db import connections

from storage.exceptions import InvalidInput

DATABASE_COMPANIONS = ("", "-wal", "-shm", "-journal")


def database_files() -> list[Path]:
    """The SQLite database and the files SQLite keeps beside it (whether they exist now or not)."""
    connection = connections["default"]
    if connection.vendor != "sqlite":
        return []
    name = str(connection.settings_dict["NAME"])
    if name == ":memory:" or name.startswith("file:"):
        return []
    return [Path(f"{name}{suffix}") for suffix in DATABASE_COMPANIONS]


def _same_file(path: str, other: Path) -> bool:
    if os.path.realpath(path) == os.path.realpath(other):
        return True
    try:
        return os.path.samestat(os.stat(path), os.stat(other))
    except OSError:  # either does not exist (yet): then realpath has said it all
        return False


def _inside(path: str, directory: Path) -> bool:
    real = os.path.realpath(path)
    root = os.path.realpath(directory)
    return real == root or real.startswith(root.rstrip(os.sep) + os.sep)


def refuse_database_file(path: str | os.PathLike, *, action: str) -> None:
    """Raise InvalidInput if `path` is the live database or one of its -wal, -shm, -journal files."""
    text = os.fspath(path)
    if "\x00" in str(text):
        raise InvalidInput(f"cannot {action} {text!r}: a path cannot contain a NUL character")
    for protected in database_files():
        if _same_file(text, protected):
            raise InvalidInput(
                f"refusing to {action} {text}: it is the live database file {protected.name}, "
                "which only SQLite may open; choose another path"
            )


def refuse_protected_target(path: str | os.PathLike, *, action: str = "write") -> None:
    """Raise InvalidInput if writing `path` would replace the database, its companions or run artefacts."""
    refuse_database_file(path, action=action)
    root = Path(settings.FINEFOUNDRY_STORAGE_ROOT)
    if _inside(os.fspath(path), root):
        raise InvalidInput(
            f"refusing to {action} {os.fspath(path)}: it is inside the storage root {root}, "
            "which holds the training runs' artefacts; choose another path"
        )
