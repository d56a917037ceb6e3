"""Importing dataset files as pairs: every export format, and FineFoundry's JSON and ChatML files.

`import_pairs` reads the file twice. The first pass checks every record (shapes and rules in
import_records) and writes nothing, outside any transaction; the second writes them in short
transactions into a session that stays hidden until the last commit (import_sessions), so no
other writer waits long and a bad, failed or killed import changes nothing. Errors name the
file, the record, the line and the reason.
JSON Lines, CSV and JSON lists are all read incrementally, so memory stays flat whatever the
file size.

Formats: `auto` (default) tells JSON lists (`[`), JSON Lines (`{`) and CSV apart by the first
character and the record shape by the first record's keys; `json`, `jsonl` and `csv` expect
what those exports write (standard records); `chatml`, `alpaca` and `sharegpt` accept a JSON
list or JSON Lines of that shape.

Pairs go into a new session (source "import" unless told otherwise, named after the file) or,
with session_id, are added to an existing one. A system prompt shared by every record becomes
the new session's metadata `system_prompt`; otherwise each pair keeps its own in its metadata.

With skip_invalid, a record that breaks a rule (a blank field, a wrong type, a text too long) is
left out and reported (file, record, line, reason) instead of stopping the import; a file that
cannot be parsed (broken JSON, a bad CSV header) still stops it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from django.template.defaultfilters import pluralize

from storage.exceptions import InvalidInput, NotFound, StorageError
from storage.models import ScrapeSession
from storage.search import index as search_index
from storage.services import protected_paths, sessions
from storage.services.datasets import import_sessions, readers
from storage.services.datasets.formats import FORMATS
from storage.services.datasets.records import SHAPES, ImportedPair, RecordError, detect_shape, to_pair
from storage.validation import optional_text, require_int, to_json

IMPORT_FORMATS = ("auto", *FORMATS)  # every export format reads back
FIXED_SHAPES = {"json": "standard", "jsonl": "standard", "csv": "standard"}
CSV_COLUMNS = {"standard": ("input", "output"), "alpaca": ("instruction", "output")}
DEFAULT_SOURCE = "import"


@dataclass(frozen=True)
class SkippedRecord:
    """A record left out by an import with skip_invalid."""

    path: Path
    record: int
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: record {self.record} (line {self.line}): {self.reason}"


@dataclass(frozen=True)
class ImportResult:
    session_id: int
    created: bool
    count: int
    container: str
    shape: str
    skipped: tuple[SkippedRecord, ...] = ()
    # What no export writes back (said at import, see Scan.not_exported).
    not_exported: tuple[str, ...] = ()


@dataclass(frozen=True)
class DatasetFile:
    """A file to import and how to read it."""

    path: Path
    container: str  # "json" (a list), "jsonl" or "csv"
    shape: str | None  # None: taken from the first record
    limit: int
    skip_invalid: bool = False

    @property
    def max_record_bytes(self) -> int:
        # Two texts at the limit, every character escaped, plus room for context and metadata.
        return 16 * self.limit + 1_000_000

    def located_records(self) -> Iterator[tuple[int, int, object]]:
        if self.container == "csv":
            return readers.iter_csv_records(self.path, max_line_bytes=self.max_record_bytes, max_field_chars=self.limit)
        if self.container == "jsonl":
            return readers.iter_json_lines(self.path, max_line_bytes=self.max_record_bytes)
        return readers.iter_json_array(self.path, max_record_chars=self.max_record_bytes)

    def pairs(self, skipped: list[SkippedRecord] | None = None) -> Iterator[tuple[str, ImportedPair]]:
        """Yield (shape, pair) for every record; raise InvalidInput at the first bad one.

        With skip_invalid, a bad record is left out (and added to `skipped`, when given) instead.
        """
        shape = self.shape
        for record, line, value in self.located_records():
            if shape is None:
                shape = detect_shape(value)
            if record == 1 and self.container == "csv":
                self.check_csv_header(list(value), shape)
            try:
                yield shape, to_pair(value, shape, self.limit)
            except RecordError as exc:
                if not self.skip_invalid:
                    raise InvalidInput(f"{self.path}: record {record} (line {line}): {exc}") from None
                if skipped is not None:
                    skipped.append(SkippedRecord(self.path, record, line, str(exc)))

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
    protected_paths.refuse_database_file(path, action="import from")
    first = readers.first_character(path)
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
    return DatasetFile(path=path, container=container, shape=shape, limit=sessions.max_text_chars())


@dataclass(frozen=True)
class Scan:
    count: int
    shape: str
    # The one system prompt every record has, if so; each pair keeps its own otherwise.
    shared_prompt: str | None
    per_pair_prompts: bool
    skipped: tuple[SkippedRecord, ...] = ()
    # Records with keys no export writes, and those keys (the first few names).
    with_unwritten: int = 0
    unwritten: tuple[str, ...] = ()

    def not_exported(self, path: Path) -> tuple[str, ...]:
        """Sentences for what an export will not write back: keys outside what the format holds."""
        if not self.with_unwritten:
            return ()
        names = ", ".join(self.unwritten[:UNWRITTEN_NAMES]) + (", …" if len(self.unwritten) > UNWRITTEN_NAMES else "")
        return (
            f"{path}: {self.with_unwritten:,} record{pluralize(self.with_unwritten)} had keys no export writes back "
            f"({names}); a record's are kept in the pair's source_url or metadata, a turn's only in earlier turns",
        )


UNWRITTEN_NAMES = 8


def scan(dataset: DatasetFile) -> Scan:
    """Check every record without writing anything."""
    count = 0
    shape = dataset.shape or "standard"
    prompts: set[str | None] = set()
    skipped: list[SkippedRecord] = []
    with_unwritten = 0
    unwritten: dict[str, None] = {}
    for record_shape, pair in dataset.pairs(skipped):
        count += 1
        shape = record_shape
        if pair.unwritten:
            with_unwritten += 1
            if len(unwritten) <= UNWRITTEN_NAMES:
                unwritten.update(dict.fromkeys(pair.unwritten))
        if len(prompts) < 2:
            prompts.add(pair.system_prompt)
    if count == 0:
        if dataset.container == "csv":
            header = readers.read_csv_header(dataset.path, max_line_bytes=dataset.max_record_bytes)
            dataset.check_csv_header(header, dataset.shape or detect_shape(dict.fromkeys(header)))
        if skipped:
            raise InvalidInput(
                f"{dataset.path}: no valid record to import; all {len(skipped):,} are invalid ({skipped[0]})"
            )
        raise InvalidInput(f"{dataset.path}: there are no records to import")
    shared = next(iter(prompts)) if len(prompts) == 1 else None
    return Scan(
        count=count,
        shape=shape,
        shared_prompt=shared,
        per_pair_prompts=len(prompts) > 1,
        skipped=tuple(skipped),
        with_unwritten=with_unwritten,
        unwritten=tuple(unwritten),
    )


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
    skip_invalid: bool = False,
) -> ImportResult:
    """Import every record of a file as pairs, all or nothing; return where they went and how many.

    With skip_invalid, records that break a rule are left out and listed in the result's `skipped`.
    """
    optional_text(source, name="source")
    optional_text(name, name="name")
    if session_id is not None:
        require_int(session_id, name="session id", minimum=1)
        if source is not None or name is not None:
            raise InvalidInput("give either a session to add to, or a source/name for a new session, not both")
        if not ScrapeSession.objects.filter(pk=session_id).exists():
            raise NotFound(f"scrape session {session_id} does not exist")
    import_sessions.recover_abandoned_imports()
    dataset = open_dataset_file(path, fmt=fmt)
    dataset = DatasetFile(dataset.path, dataset.container, dataset.shape, dataset.limit, skip_invalid)
    found = scan(dataset)  # outside any transaction: nobody waits while a big file is checked
    dataset = DatasetFile(dataset.path, dataset.container, found.shape, dataset.limit, skip_invalid)
    appending = session_id is not None
    hidden = import_sessions.begin(
        session=lambda: (
            _staging_session(dataset, session_id)
            if appending
            else _new_session(dataset, found, source=source, name=name)
        ),
        path=str(dataset.path.resolve()),
        target_session_id=session_id,
    )
    try:
        written = import_sessions.insert_batches(hidden.pk, _rows(dataset, hidden.pk, found, appending=appending))
        if written != found.count:
            raise StorageError(f"{dataset.path} changed while it was being imported; nothing was imported")
        if appending:
            if not ScrapeSession.objects.filter(pk=session_id).exists():
                raise NotFound(f"scrape session {session_id} was deleted during the import; nothing was imported")
            import_sessions.move_into(hidden.pk, session_id)
        else:
            import_sessions.publish(hidden.pk)
    except BaseException:
        import_sessions.discard(hidden.pk)
        raise
    # Index the new pairs now, in this process, in short transactions: a command's process ends right
    # after, taking a background thread with it, and searches would scan the backlog until someone caught up
    # (measured in bench/import_search.py).
    search_index.index_pending()
    return ImportResult(
        session_id if appending else hidden.pk,
        not appending,
        written,
        dataset.container,
        found.shape,
        found.skipped,
        found.not_exported(dataset.path),
    )


def _new_session(dataset: DatasetFile, found: Scan, *, source: str | None, name: str | None) -> ScrapeSession:
    metadata = {"imported_from": str(dataset.path.resolve()), "container": dataset.container, "shape": found.shape}
    if found.shared_prompt is not None:
        metadata["system_prompt"] = found.shared_prompt
    chat = found.shape in ("chatml", "sharegpt")
    return sessions.create_scrape_session(
        source=source or DEFAULT_SOURCE,
        source_details=f"file={dataset.path.name}",
        dataset_format=ScrapeSession.DatasetFormat.CHATML if chat else ScrapeSession.DatasetFormat.STANDARD,
        metadata=metadata,
        name=name if name is not None else dataset.path.name,
    )


def _staging_session(dataset: DatasetFile, target_id: int) -> ScrapeSession:
    """Where an append's rows wait until they are moved into the target (import_sessions.move_into)."""
    return sessions.create_scrape_session(
        source=DEFAULT_SOURCE,
        source_details=f"file={dataset.path.name}",
        metadata={"imported_from": str(dataset.path.resolve()), "importing_into": target_id},
        name=f"(importing {dataset.path.name} into session {target_id})",
    )


def _rows(dataset: DatasetFile, session_id: int, found: Scan, *, appending: bool) -> Iterator[tuple]:
    # A session added to keeps its own metadata, so a shared prompt goes on every pair instead.
    per_pair = found.per_pair_prompts or (appending and found.shared_prompt is not None)
    for _, pair in dataset.pairs():
        yield _row(session_id, pair, per_pair_prompts=per_pair)
