"""Writing sessions out as dataset files: streamed row by row, written atomically."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from storage.exceptions import InvalidInput, NotFound
from storage.models import ScrapedPair, ScrapeSession


@contextmanager
def atomic_output(path: Path, *, overwrite: bool) -> Iterator[IO[str]]:
    """Write to a temp file beside `path` and rename it into place only when the body succeeds."""
    path = Path(path)
    if path.is_dir():
        raise InvalidInput(f"{path} is a directory")
    if not path.parent.is_dir():
        raise InvalidInput(f"cannot write {path}: directory {path.parent} does not exist")
    if path.exists() and not overwrite:
        raise InvalidInput(f"{path} already exists; pass overwrite/--force to replace it")
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def write_json_array(pairs: Iterator[tuple[str, str]], handle: IO[str]) -> int:
    """Write FineFoundry's `[{"input": ..., "output": ...}]` (indent 2, UTF-8) one pair at a time."""
    count = 0
    for input_text, output_text in pairs:
        item = json.dumps({"input": input_text, "output": output_text}, ensure_ascii=False, indent=2)
        handle.write("[\n  " if count == 0 else ",\n  ")
        handle.write(item.replace("\n", "\n  "))
        count += 1
    handle.write("[]" if count == 0 else "\n]")
    return count


def export_session_to_json(*, session_id: int, output_path: str | os.PathLike, overwrite: bool = True) -> int:
    """Export a session's pairs as FineFoundry's JSON file; return how many were written."""
    if not ScrapeSession.objects.filter(pk=session_id).exists():
        raise NotFound(f"scrape session {session_id} does not exist")
    pairs = (
        ScrapedPair.objects.filter(session_id=session_id)
        .order_by("id")
        .values_list("input_text", "output_text")
        .iterator(chunk_size=2000)
    )
    with atomic_output(Path(output_path), overwrite=overwrite) as handle:
        return write_json_array(pairs, handle)
