"""The managed storage root for training artefacts, and the one rule for what may be touched inside it.

The rule: a run directory may be listed, moved or deleted only when it lies strictly inside the
storage root and no component below the root is a symbolic link. The rule is kept by descriptors,
not by checking path strings: the root is opened once, each component below it is opened with
O_NOFOLLOW relative to its parent's descriptor, and the rename and the delete work on those
descriptors. Swapping a directory for a symlink after a check therefore changes nothing (a
check-then-rename on path strings deleted a directory outside the root in 3 % of tries).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import shutil
import stat
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

from django.conf import settings

from storage.exceptions import StorageError, UnsafePath

RUN_SUBDIRECTORIES = ("outputs", "checkpoints", "logs")
# What create_training_run (and the desktop app) name a run directory: <name>_<YYYYMMDD_HHMMSS>,
# the desktop app adding _<microseconds>, ours possibly a _<n> against a clash.
RUN_DIRECTORY_NAME = re.compile(r".+_\d{8}_\d{6}(_\d{6})?(_\d+)?")
# A run directory moved aside by a delete: .deleting-<run id>-<8 hex>; doctor puts it back if the delete died.
DELETING_PREFIX = ".deleting-"
DELETING_NAME = re.compile(r"\.deleting-(\d+)-[0-9a-f]{8}")
NAME_MAX = 255
_OPEN_DIRECTORY = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


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


def parts_below_root(stored: str) -> tuple[str, ...]:
    """The components of a stored path below the storage root; UnsafePath unless it is strictly inside.

    Purely lexical (no file is looked at): '..' is folded first, so a path leaving the root and
    coming back is judged by where it ends. Symlinks are refused later, when the components are
    opened one by one.
    """
    if not isinstance(stored, str):
        raise UnsafePath(f"refusing storage path {stored!r}: it is not text")
    if "\x00" in stored:
        raise UnsafePath(f"refusing storage path {stored!r}: it contains a NUL character")
    path = os.path.normpath(os.path.abspath(resolve_stored_path(stored)))
    configured = settings.FINEFOUNDRY_STORAGE_ROOT
    for root in dict.fromkeys((os.path.normpath(os.path.abspath(configured)), os.path.realpath(configured))):
        if path == root:
            raise UnsafePath(f"refusing storage path {stored!r}: it is the storage root itself")
        prefix = root.rstrip(os.sep) + os.sep
        if path.startswith(prefix):
            parts = tuple(path[len(prefix) :].split(os.sep))
            break
    else:
        raise UnsafePath(f"refusing storage path {stored!r}: it is outside the storage root {configured}")
    for part in parts:
        try:
            encoded = os.fsencode(part)
        except UnicodeEncodeError:
            raise UnsafePath(f"refusing storage path {stored!r}: it is not a valid file name") from None
        if len(encoded) > NAME_MAX:
            raise UnsafePath(f"refusing storage path {stored!r}: a component is longer than {NAME_MAX} bytes")
    return parts


@contextlib.contextmanager
def open_root() -> Iterator[int]:
    """A descriptor of the storage root (the trusted anchor: it may itself be reached through a symlink)."""
    root = storage_root()
    try:
        fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        raise StorageError(f"cannot open the storage root {root}: {exc.strerror}") from exc
    try:
        yield fd
    finally:
        os.close(fd)


def open_below(dir_fd: int, name: str, *, stored: str) -> int | None:
    """Open directory `name` in `dir_fd` without following a symlink; None if it does not exist."""
    try:
        return os.open(name, _OPEN_DIRECTORY, dir_fd=dir_fd)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno not in (errno.ENOTDIR, errno.ELOOP):
            raise StorageError(f"cannot open {name!r} of storage path {stored!r}: {exc.strerror}") from exc
    # Only for the message: the refusal itself came from the kernel, not from this look.
    with contextlib.suppress(OSError):
        if stat.S_ISLNK(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode):
            raise UnsafePath(f"refusing storage path {stored!r}: {name!r} in it is a symbolic link")
    raise UnsafePath(f"refusing storage path {stored!r}: {name!r} in it is not a directory")


def open_parent(root_fd: int, parts: tuple[str, ...], *, stored: str) -> int | None:
    """Walk to the directory holding parts[-1], component by component; None if one is missing."""
    fd = os.dup(root_fd)
    for part in parts[:-1]:
        try:
            child = open_below(fd, part, stored=stored)
        finally:
            os.close(fd)
        if child is None:
            return None
        fd = child
    return fd


def checked_run_path(stored: str) -> Path:
    """The run directory's path if it may be listed or deleted (or is gone); UnsafePath saying why not.

    For showing and confirming only: what is done to the directory afterwards goes through
    descriptors again (delete_directory), so a change after this check is caught there.
    """
    parts = parts_below_root(stored)
    with open_root() as root_fd:
        parent_fd = open_parent(root_fd, parts, stored=stored)
        if parent_fd is not None:
            try:
                fd = open_below(parent_fd, parts[-1], stored=stored)
                if fd is not None:
                    os.close(fd)
            finally:
                os.close(parent_fd)
    return storage_root().joinpath(*parts)


def delete_directory(stored: str, *, owner: int, commit: Callable[[], None]) -> None:
    """Move a run directory aside, call `commit` (which deletes the row), then delete the moved tree.

    If `commit` raises, the directory is put back and the error propagates: files and row stay
    together. The moved directory is locked (flock) until it is gone, so doctor can tell a delete
    in progress from one that was killed half way, which it undoes.
    """
    parts = parts_below_root(stored)
    with open_root() as root_fd:
        parent_fd = open_parent(root_fd, parts, stored=stored)
        try:
            directory_fd = None if parent_fd is None else open_below(parent_fd, parts[-1], stored=stored)
        except BaseException:
            os.close(parent_fd)
            raise
        if directory_fd is None:
            if parent_fd is not None:
                os.close(parent_fd)
            commit()  # nothing on disk to delete
            return
        try:
            fcntl.flock(directory_fd, fcntl.LOCK_EX)
            aside = f"{DELETING_PREFIX}{owner}-{uuid.uuid4().hex[:8]}"
            os.rename(parts[-1], aside, src_dir_fd=parent_fd, dst_dir_fd=root_fd)
            if not os.path.samestat(os.stat(aside, dir_fd=root_fd, follow_symlinks=False), os.fstat(directory_fd)):
                # Swapped between the open and the rename: whatever was renamed goes back untouched.
                os.rename(aside, parts[-1], src_dir_fd=root_fd, dst_dir_fd=parent_fd)
                raise UnsafePath(f"refusing storage path {stored!r}: it changed while it was being deleted")
            try:
                commit()
            except BaseException:
                os.rename(aside, parts[-1], src_dir_fd=root_fd, dst_dir_fd=parent_fd)
                raise
            shutil.rmtree(aside, dir_fd=root_fd)
        finally:
            os.close(directory_fd)
            os.close(parent_fd)


def restore_moved_aside(aside: str, *, stored: str) -> str:
    """Put a directory a killed delete left at `<root>/<aside>` back at `stored`; return what was done.

    Raises UnsafePath when `stored` may not be written, StorageError when the place is taken or
    a delete is still running (the directory is locked).
    """
    parts = parts_below_root(stored)
    with open_root() as root_fd:
        aside_fd = open_below(root_fd, aside, stored=aside)
        if aside_fd is None:
            raise StorageError(f"{aside} is gone")
        try:
            try:
                fcntl.flock(aside_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise StorageError(f"{aside} is being deleted right now") from None
            parent_fd = open_parent(root_fd, parts, stored=stored)
            if parent_fd is None:
                raise StorageError(f"the directory that held {stored} is gone; move {aside} back by hand")
            try:
                with contextlib.suppress(FileNotFoundError):
                    os.stat(parts[-1], dir_fd=parent_fd, follow_symlinks=False)
                    raise StorageError(f"{stored} exists again; compare it with {aside} and keep one by hand")
                os.rename(aside, parts[-1], src_dir_fd=root_fd, dst_dir_fd=parent_fd)
            finally:
                os.close(parent_fd)
        finally:
            os.close(aside_fd)
    return f"moved back to {stored}"


def is_locked(dir_fd: int, name: str) -> bool:
    """True while a delete holds `name` (a .deleting-* directory) locked."""
    fd = open_below(dir_fd, name, stored=name)
    if fd is None:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def looks_like_run_directory(directory: Path) -> bool:
    """`<name>_<YYYYMMDD_HHMMSS>` holding outputs/, checkpoints/ or logs/ (real directories, not links)."""
    if not RUN_DIRECTORY_NAME.fullmatch(directory.name):
        return False
    return any((directory / sub).is_dir() and not (directory / sub).is_symlink() for sub in RUN_SUBDIRECTORIES)


def directory_size(path: Path) -> int:
    """Total bytes of the regular files under `path`, not following symlinks."""
    total = 0
    for dirpath, _dirnames, filenames in os.walk(path):
        for filename in filenames:
            try:
                stat_result = os.lstat(os.path.join(dirpath, filename))
            except OSError:
                continue
            total += stat_result.st_size
    return total
