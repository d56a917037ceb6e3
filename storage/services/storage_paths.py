"""The managed storage root for training artefacts, and the one rule for deleting inside it."""

from __future__ import annotations

import os
import re
import shutil
import uuid
from pathlib import Path

from django.conf import settings

from storage.exceptions import StorageError, UnsafePath

RUN_SUBDIRECTORIES = ("outputs", "checkpoints", "logs")


def storage_root() -> Path:
    """The managed storage root, created if missing."""
    root = Path(settings.FINEFOUNDRY_STORAGE_ROOT)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageError(f"cannot create the storage root {root}: {exc.strerror}") from exc
    return root


def safe_directory_name(name: str) -> str:
    """Keep ASCII letters, digits, '-' and '_'; anything else becomes '_' (portable on every filesystem)."""
    cleaned = re.sub(r"[^A-Za-z0-9_-]", "_", name)[:80]
    return cleaned or "run"


def resolve_stored_path(stored: str) -> Path:
    """Interpret a storage_path from the database; relative ones are relative to the data directory."""
    path = Path(stored).expanduser()
    if not path.is_absolute():
        path = Path(settings.FINEFOUNDRY_DATA_DIR) / path
    return path


def check_deletable(stored: str) -> Path:
    """Return the resolved directory if it may be deleted; raise UnsafePath saying why not."""
    path = resolve_stored_path(stored)
    root = Path(settings.FINEFOUNDRY_STORAGE_ROOT).resolve()
    if path.is_symlink():
        raise UnsafePath(f"refusing to delete {stored!r}: it is a symbolic link")
    resolved = path.resolve()
    if resolved == root:
        raise UnsafePath(f"refusing to delete {stored!r}: it is the storage root itself")
    if root not in resolved.parents:
        raise UnsafePath(f"refusing to delete {stored!r}: it is outside the storage root {root}")
    if resolved.exists() and not resolved.is_dir():
        raise UnsafePath(f"refusing to delete {stored!r}: it is not a directory")
    return resolved


def move_aside(directory: Path) -> Path:
    """Rename a run directory to a hidden name in the root, so a later failure can put it back."""
    aside = Path(settings.FINEFOUNDRY_STORAGE_ROOT).resolve() / f".deleting-{directory.name}-{uuid.uuid4().hex[:8]}"
    os.rename(directory, aside)
    return aside


def remove_tree(directory: Path) -> None:
    """Delete a directory that check_deletable accepted; symlinks inside are unlinked, never followed."""
    shutil.rmtree(directory)


def directory_size(path: Path) -> int:
    """Total bytes of the regular files under `path`, not following symlinks."""
    total = 0
    for dirpath, _dirnames, filenames in os.walk(path):
        for filename in filenames:
            try:
                stat = os.lstat(os.path.join(dirpath, filename))
            except OSError:
                continue
            total += stat.st_size
    return total
