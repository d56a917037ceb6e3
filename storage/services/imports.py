"""Importing dataset files as pairs: every export format, and FineFoundry's JSON and ChatML files.

`import_pairs` reads the file twice. The first pass checks every record (shapes and rules in
import_records) and writes nothing; the second writes them all in one transaction. A bad file
therefore changes nothing, and its error names the file, the record, the line and the reason.
JSON Lines, CSV and JSON lists are all read incrementally, so memory stays flat whatever the
file size.

Formats: `auto` (default) tells JSON lists (`[`), JSON Lines (`{`) and CSV apart by the first
character and the record shape by the first record's keys; `json`, `jsonl` and `csv` expect
what those exports write (standard records); `chatml`, `alpaca` and `sharegpt` accept a JSON
list or JSON Lines of that shape.

Pairs go into a new session (source "import" unless told otherwise, named after the file) or,
with session_id, are added to an existing one. A system prompt shared by every record becomes
the new session's metadata `system_prompt`; otherwise each pair keeps its own in its metadata.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from django.db import connections, transaction

from storage import search_index
from storage.exceptions import InvalidInput, NotFound, StorageError
from storage.models import ScrapeSession
from storage.services import dataset_readers, scraping
from storage.services.import_records import SHAPES, ImportedPair, RecordError, detect_shape, to_pair
from storage.services.inputs import optional_text, require_int, to_json
from storage.services.pair_insert import insert_pair_rows

IMPORT_FORMATS = ("auto", "json", "jsonl", "chatml", "alpaca", "sharegpt", "csv")
FIXED_SHAPES = {"json": "standard", "jsonl": "standard", "csv": "standard"}
CSV_COLUMNS = {"standard": ("input", "output"), "alpaca": ("instruction", "output")}
WRITE_BATCH = 5000
DEFAULT_SOURCE = "import"


@dataclass(frozen=True)
class ImportResult:
    session_id: int
    created: bool
    count: int
    container: str
    shape: str


@dataclass(frozen=True)
class DatasetFile:
    """A file to import and how to read it."""

    path: Path
    container: str  # "json" (a list), "jsonl" or "csv"
    shape: str | None  # None: taken from the first record
    limit: int

    @property
    def max_record_bytes(self) -> int:
        # Two texts at the limit, every character escaped, plus room for context and metadata.
        return 16 * self.limit + 1_000_000

    def located_records(self) -> Iterator[tuple[int, int, object]]:
        if self.container == "csv":
            return dataset_readers.iter_csv_records(
                self.path, max_line_bytes=self.max_record_bytes, max_field_chars=self.limit
            )
        if self.container == "jsonl":
            return dataset_readers.iter_json_lines(self.path, max_line_bytes=self.max_record_bytes)
        return dataset_readers.iter_json_array(self.path, max_record_chars=self.max_record_bytes)

    def pairs(self) -> Iterator[tuple[str, ImportedPair]]:
        """Yield (shape, pair) for every record; raise InvalidInput at the first bad one."""
        shape = self.shape
        for record, line, value in self.located_records():
            if shape is None:
                shape = detect_shape(value)
            if record == 1 and self.container == "csv":
                self.check_csv_header(list(value), shape)
            try:
                yield shape, to_pair(value, shape, self.limit)
            except RecordError as exc:
                raise InvalidInput(f"{self.path}: record {record} (line {line}): {exc}") from None

    def check_csv_header(self, columns: list[str], shape: str) -> None:
        needed = CSV_COLUMNS.get(shape)
        if needed is None:
            raise InvalidInput(f"{self.path}: {shape} records cannot be read from CSV; use JSON or JSON Lines")
        missing = [column for column in needed if column not in columns]
        if missing:
            guessed = (
                ""
                if self.path.suffix.lower() == ".csv"
                else "; it was read as CSV because it does not start with '[' or '{'"
            )
            raise InvalidInput(
                f"{self.path}: the CSV header has no {' or '.join(map(repr, missing))} column"
                f" (its columns: {', '.join(map(repr, columns))}){guessed}"
            )


def open_dataset_file(path: str | os.PathLike, *, fmt: str = "auto") -> DatasetFile:
    """Check the file can be read and decide how; raise InvalidInput saying why not."""
    if fmt not in IMPORT_FORMATS:
        raise InvalidInput(f"unknown format {fmt!r}; expected one of {', '.join(IMPORT_FORMATS)}")
    path = Path(path)
    first = dataset_readers.first_character(path)
    if fmt == "csv":
        container = "csv"
    elif fmt == "json":
        if first != "[":
            raise InvalidInput(f"{path}: a json file must be a list ([...]) of records; this one starts with {first!r}")
        container = "json"
    elif fmt == "jsonl":
        container = "jsonl"
    elif first == "[":
        container = "json"
    elif first == "{" or fmt != "auto":
        container = "jsonl"
    else:
        container = "csv"
    shape = FIXED_SHAPES.get(fmt) or (fmt if fmt in SHAPES else None)
    return DatasetFile(path=path, container=container, shape=shape, limit=scraping.max_text_chars())


@dataclass(frozen=True)
class Scan:
    count: int
    shape: str
    # The one system prompt every record has, if so; each pair keeps its own otherwise.
    shared_prompt: str | None
    per_pair_prompts: bool


def scan(dataset: DatasetFile) -> Scan:
    """Check every record without writing anything."""
    count = 0
    shape = dataset.shape or "standard"
    prompts: set[str | None] = set()
    for record_shape, pair in dataset.pairs():
        count += 1
        shape = record_shape
        if len(prompts) < 2:
            prompts.add(pair.system_prompt)
    if count == 0:
        if dataset.container == "csv":
            header = dataset_readers.read_csv_header(dataset.path, max_line_bytes=dataset.max_record_bytes)
            dataset.check_csv_header(header, dataset.shape or detect_shape(dict.fromkeys(header)))
        raise InvalidInput(f"{dataset.path}: there are no records to import")
    shared = next(iter(prompts)) if len(prompts) == 1 else None
    return Scan(count=count, shape=shape, shared_prompt=shared, per_pair_prompts=len(prompts) > 1)


def _row(session_id: int, pair: ImportedPair, *, per_pair_prompts: bool) -> tuple:
    metadata = pair.metadata
    if per_pair_prompts and pair.system_prompt is not None:
        metadata = {**(metadata or {}), "system_prompt": pair.system_prompt}
    metadata_json = to_json(metadata, name="metadata") if metadata else None
    return (session_id, pair.input, pair.output, pair.source_url, metadata_json)


def import_pairs(
    *,
    path: str | os.PathLike,
    fmt: str = "auto",
    source: str | None = None,
    name: str | None = None,
    session_id: int | None = None,
) -> ImportResult:
    """Import every record of a file as pairs, all or nothing; return where they went and how many."""
    optional_text(source, name="source")
    optional_text(name, name="name")
    if session_id is not None:
        require_int(session_id, name="session id", minimum=1)
        if source is not None or name is not None:
            raise InvalidInput("give either a session to add to, or a source/name for a new session, not both")
        if not ScrapeSession.objects.filter(pk=session_id).exists():
            raise NotFound(f"scrape session {session_id} does not exist")
    dataset = open_dataset_file(path, fmt=fmt)
    found = scan(dataset)
    dataset = DatasetFile(dataset.path, dataset.container, found.shape, dataset.limit)
    with transaction.atomic():
        if session_id is None:
            session = _new_session(dataset, found, source=source, name=name)
        else:
            session = ScrapeSession.objects.filter(pk=session_id).first()
            if session is None:
                raise NotFound(f"scrape session {session_id} does not exist")
        written = _write(dataset, session.pk, found, appending=session_id is not None)
        if written != found.count:
            raise StorageError(f"{dataset.path} changed while it was being imported; nothing was imported")
        # New pairs for the search index: indexed by a thread once this commits, as merges do.
        search_index.index_in_background()
    return ImportResult(session.pk, session_id is None, written, dataset.container, found.shape)


def _new_session(dataset: DatasetFile, found: Scan, *, source: str | None, name: str | None) -> ScrapeSession:
    metadata = {"imported_from": str(dataset.path.resolve()), "container": dataset.container, "shape": found.shape}
    if found.shared_prompt is not None:
        metadata["system_prompt"] = found.shared_prompt
    chat = found.shape in ("chatml", "sharegpt")
    return scraping.create_scrape_session(
        source=source or DEFAULT_SOURCE,
        source_details=f"file={dataset.path.name}",
        dataset_format=ScrapeSession.DatasetFormat.CHATML if chat else ScrapeSession.DatasetFormat.STANDARD,
        metadata=metadata,
        name=name if name is not None else dataset.path.name,
    )


def _write(dataset: DatasetFile, session_id: int, found: Scan, *, appending: bool) -> int:
    # A session added to keeps its own metadata, so a shared prompt goes on every pair instead.
    per_pair = found.per_pair_prompts or (appending and found.shared_prompt is not None)
    written = 0
    rows: list[tuple] = []
    with connections["default"].cursor() as cursor:
        for _, pair in dataset.pairs():
            rows.append(_row(session_id, pair, per_pair_prompts=per_pair))
            if len(rows) >= WRITE_BATCH:
                insert_pair_rows(rows)
                written += len(rows)
                rows.clear()
        if rows:
            insert_pair_rows(rows)
            written += len(rows)
        cursor.execute(
            "UPDATE scrape_sessions SET pair_count = COALESCE(pair_count, 0) + %s WHERE id = %s", [written, session_id]
        )
    return written
