"""Files that appear whole or not at all: written to a temp file beside the target, then renamed.

A crash or a kill leaves at most the hidden `.NAME.<random>.part` temp file, never a truncated
target. An existing target is replaced only with overwrite, and even then a file that appears
while writing is not silently replaced.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from storage.exceptions import InvalidInput, StorageError


def check_target(path: Path, *, overwrite: bool) -> Path:
    """Refuse a target that is a directory, lies in a missing directory, or exists without overwrite."""
    path = Path(path)
    if path.is_dir():
        raise InvalidInput(f"cannot write {path}: it is a directory")
    if not path.parent.is_dir():
        raise InvalidInput(f"cannot write {path}: directory {path.parent} does not exist")
    if path.exists() and not overwrite:
        raise InvalidInput(f"{path} already exists; pass --force to replace it")
    return path


class PendingFile:
    """A temp file beside `path` that becomes `path` only when published."""

    def __init__(self, path: Path, *, overwrite: bool):
        self.path = check_target(path, overwrite=overwrite)
        self.overwrite = overwrite
        self.temp = path.parent / f".{path.name}.{secrets.token_hex(4)}.part"
        try:
            # Mode 0o666 lets the umask decide, as for any file the user creates.
            fd = os.open(self.temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except OSError as exc:
            raise InvalidInput(f"cannot write {path}: {exc.strerror}") from exc
        self.handle: IO[str] = os.fdopen(fd, "w", encoding="utf-8", newline="")

    def publish(self) -> None:
        """Flush the data to disk and move it to the target in one step."""
        self.handle.flush()
        os.fsync(self.handle.fileno())
        self.handle.close()
        if self.overwrite:
            os.replace(self.temp, self.path)
        else:
            try:
                # link() never replaces: a file that appeared since check_target is kept.
                os.link(self.temp, self.path)
            except FileExistsError:
                raise InvalidInput(f"{self.path} appeared during the export; it was left as it is") from None
            except OSError:
                # A filesystem without hard links: the check in check_target has to do.
                os.replace(self.temp, self.path)
            self.temp.unlink(missing_ok=True)
        _sync_directory(self.path.parent)

    def discard(self) -> None:
        # Closing flushes; on a full disk that fails again, and the file goes anyway.
        with contextlib.suppress(OSError):
            self.handle.close()
        self.temp.unlink(missing_ok=True)


def _sync_directory(directory: Path) -> None:
    """Make a rename durable; not every platform can open a directory, so this is best effort."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextmanager
def atomic_outputs(paths: list[Path], *, overwrite: bool) -> Iterator[list[IO[str]]]:
    """Write several files, each to a temp file, and move them all into place when the body succeeds."""
    for path in paths:
        check_target(path, overwrite=overwrite)
    pending: list[PendingFile] = []
    try:
        for path in paths:
            pending.append(PendingFile(Path(path), overwrite=overwrite))
        try:
            yield [file.handle for file in pending]
            for file in pending:
                file.publish()
        except OSError as exc:
            # A full or read-only disk, a vanished directory: say which files, not a traceback.
            names = ", ".join(str(path) for path in paths)
            raise StorageError(f"cannot write {names}: {exc.strerror or exc}") from exc
    except BaseException:
        for file in pending:
            file.discard()
        raise


@contextmanager
def atomic_output(path: Path, *, overwrite: bool) -> Iterator[IO[str]]:
    """Write to a temp file beside `path` and rename it into place only when the body succeeds."""
    with atomic_outputs([Path(path)], overwrite=overwrite) as (handle,):
        yield handle
