"""Writing sessions out as dataset files: streamed page by page, written atomically.

Memory stays flat whatever the size: pairs are read in pages of PAGE_SIZE by id (each page a
short query, so no read transaction stays open) and rendered into chunks of about CHUNK_CHARS.
The pairs exported are those that existed when the export started; pairs added meanwhile wait
for the next export.

Files are written through atomic_files: to a hidden temp file beside the target, renamed into
place at the end, so a crash or a kill never leaves a truncated export; an existing target is
replaced only with overwrite (`--force`).

A split (`{"train": 0.9, "validation": 0.1}`) gives each part exactly its share of the pairs
(largest remainder), chosen at random but the same for the same seed; each part keeps the
pairs in their stored order. Part files are named by inserting the part name before the
target's extension: `out.jsonl` gives `out.train.jsonl` and `out.validation.jsonl` (a target
without an extension gets the format's: `out` gives `out.train.jsonl`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO

from django.db.models import Max, TextField
from django.db.models.functions import Cast

from storage.exceptions import InvalidInput
from storage.models import ScrapedPair, ScrapeSession
from storage.services.datasets.atomic_files import atomic_output, atomic_outputs
from storage.services.datasets.conversations import Conversation, Conversations, may_hold_conversation
from storage.services.datasets.formats import FORMATS, ExportFormat, FormulaCells
from storage.services.datasets.splits import SplitChooser, check_split, part_path, split_sizes
from storage.services.protected_paths import refuse_protected_target
from storage.services.scan import PublishFilter
from storage.services.sessions import existing_sessions, session_id_list
from storage.validation import require_int, require_text

__all__ = [
    "FORMATS",
    "ExportFormat",
    "ExportPlan",
    "ExportResult",
    "ExportText",
    "atomic_output",
    "export_sessions",
    "iter_export_chunks",
]

PAGE_SIZE = 2000
CHUNK_CHARS = 256 * 1024
PROGRESS_EVERY = 5000

Progress = Callable[[int, int], None]
# (input, output, conversation): the conversation is None for a pair with nothing beyond its two texts.
ExportedPair = tuple[str, str, Conversation | None]


# --- What to export -----------------------------------------------------------------------


def export_format(fmt: str) -> ExportFormat:
    if fmt not in FORMATS:
        raise InvalidInput(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    return FORMATS[fmt]


def check_session_ids(session_ids: list[int]) -> list[int]:
    """Return the ids if every one names an existing session, once; else raise naming the bad ones."""
    ids = session_id_list(session_ids, repeats=False, required=True)
    existing_sessions(ids)
    return ids


def default_filename(session_ids: list[int], fmt: str) -> str:
    """A file name for an export, e.g. `session-3.jsonl` or `sessions-3-4.chatml.jsonl`."""
    spec = export_format(fmt)
    ids = [str(s) for s in session_ids]
    stem = f"session-{ids[0]}" if len(ids) == 1 else f"sessions-{'-'.join(ids[:4])}"
    if len(ids) > 4:
        stem += f"-and-{len(ids) - 4}-more"
    kind = "" if spec.extension == f".{fmt}" else f".{fmt}"
    return f"{stem}{kind}{spec.extension}"


@dataclass(frozen=True)
class ExportPlan:
    """A checked export: which sessions, which format, and the pairs as they were when it was made."""

    session_ids: list[int]
    format: ExportFormat
    system_prompt: str | None
    last_pair_id: int
    total: int
    formula_cells: FormulaCells = field(default_factory=FormulaCells)
    # Redact findings or drop flagged pairs while streaming (the safe-to-publish scan); None exports as stored.
    publish: PublishFilter | None = None
    # Each pair's system prompt and earlier turns, for the formats that hold them.
    conversations: Conversations = field(default_factory=Conversations)

    def renderer(self) -> Callable[[str, str], str]:
        """The format's renderer; for CSV, counting (and with excel_safe defusing) formula-like cells."""
        render = self.format.renderer(self.system_prompt)
        return self.formula_cells.wrap(render) if self.format.name == "csv" else render

    def pairs(self) -> Iterator[ExportedPair]:
        """Yield (input, output, conversation) of every pair, session by session, each in stored order."""
        reads_metadata = self.format.takes_system_prompt
        columns = ("id", "input_text", "output_text") + (("raw_metadata",) if reads_metadata else ())
        for session_id in self.session_ids:
            pages = ScrapedPair.objects.filter(session_id=session_id, id__lte=self.last_pair_id).order_by("id")
            if reads_metadata:
                # The stored text, parsed only when it may hold a conversation (most pairs have none).
                pages = pages.annotate(raw_metadata=Cast("metadata", TextField()))
                session_prompt = self.conversations.session_prompt(
                    session_id, ScrapeSession.objects.filter(pk=session_id).values_list("metadata", flat=True).first()
                )
            after = 0
            while True:
                page = list(pages.filter(id__gt=after).values_list(*columns)[:PAGE_SIZE])
                if not page:
                    break
                after = page[-1][0]
                if reads_metadata and session_prompt is None:
                    # The common case (scraped pairs): only pairs whose metadata may hold a conversation are parsed.
                    of = self.conversations.of
                    rows = ((i, o, of(pk, raw, None) if may_hold_conversation(raw) else None) for pk, i, o, raw in page)
                elif reads_metadata:
                    of = self.conversations.of
                    rows = ((i, o, of(pk, raw, session_prompt)) for pk, i, o, raw in page)
                else:
                    rows = ((i, o, None) for _, i, o in page)
                if self.publish is None:
                    yield from rows
                    continue
                for input_text, output_text, conversation in rows:
                    kept = self.publish.apply(input_text, output_text)
                    if kept is None:
                        continue
                    if conversation is not None:
                        conversation = published_conversation(self.publish, conversation)
                        if conversation is None:
                            continue
                    yield *kept, conversation

    def chunks(self, *, progress: Progress | None = None) -> Iterator[str]:
        """Yield the export file's text in chunks of about CHUNK_CHARS."""
        for _, chunk in ExportText(self, progress=progress):
            yield chunk


def published_conversation(publish: PublishFilter, conversation: Conversation) -> Conversation | None:
    """The publish filter on a conversation's texts too: a finding in a system prompt or an earlier turn counts."""
    prompt, context = conversation
    if publish.drop_flagged:
        texts = ([prompt] if prompt is not None else []) + [text for _, text in context]
        if any(publish.scanner.find(text) for text in texts):
            publish.dropped += 1
            return None
        return conversation
    if prompt is not None:
        prompt, found = publish.scanner.redact(prompt)
        publish.redacted += found
    turns = []
    for role, text in context:
        text, found = publish.scanner.redact(text)
        publish.redacted += found
        turns.append((role, text))
    return Conversation(prompt, tuple(turns))


def plan_export(
    *,
    session_ids: list[int],
    fmt: str,
    system_prompt: str | None = None,
    excel_safe: bool = False,
    redact: bool = False,
    drop_flagged: bool = False,
) -> ExportPlan:
    """Check what is asked and note which pairs the export covers; raise before anything is written."""
    spec = export_format(fmt)
    if excel_safe and fmt != "csv":
        raise InvalidInput(f"excel-safe applies to csv only, not {fmt}")
    if system_prompt is not None:
        require_text(system_prompt, name="system prompt")
        if not spec.takes_system_prompt:
            takers = ", ".join(name for name, f in FORMATS.items() if f.takes_system_prompt)
            raise InvalidInput(f"a system prompt has no place in {fmt}; it applies to {takers}")
    session_ids = check_session_ids(session_ids)
    pairs = ScrapedPair.objects.filter(session_id__in=session_ids)
    last_pair_id = pairs.aggregate(last=Max("id"))["last"] or 0
    total = pairs.filter(id__lte=last_pair_id).count()
    publish = PublishFilter(redact=redact, drop_flagged=drop_flagged) if redact or drop_flagged else None
    return ExportPlan(
        session_ids,
        spec,
        system_prompt,
        last_pair_id,
        total,
        FormulaCells(excel_safe=excel_safe),
        publish,
        Conversations(forced_prompt=system_prompt, with_context=spec.takes_context),
    )


class FileBody:
    """One export file's text: the opening, the records with separators, the closing, in chunks."""

    def __init__(self, spec: ExportFormat, render: Callable[[str, str], str]):
        self.spec = spec
        self.render = render
        self.render_conversation = spec.render_conversation
        self.count = 0
        self.pending: list[str] = []
        self.pending_chars = 0

    def add(self, input_text: str, output_text: str, conversation: Conversation | None = None) -> str | None:
        """Take one pair; return a chunk when enough text has gathered."""
        if conversation is None:
            text = self.render(input_text, output_text)
        else:
            text = self.render_conversation(input_text, output_text, conversation)
        if self.count == 0:
            self.pending.append(self.spec.opening)
        elif self.spec.separator:
            self.pending.append(self.spec.separator)
        self.pending.append(text)
        self.count += 1
        self.pending_chars += len(text)
        if self.pending_chars < CHUNK_CHARS:
            return None
        chunk = "".join(self.pending)
        self.pending = []
        self.pending_chars = 0
        return chunk

    def finish(self) -> str:
        self.pending.append(self.spec.closing if self.count else self.spec.empty)
        return "".join(self.pending)


class ExportText:
    """The one write loop of every export: iterate for (part index, chunk), counting pairs per part.

    One part for a plain export (the admin's download, standard output, one file); `choose` deals each
    pair to a part for a split. `progress(done, total)` is called every PROGRESS_EVERY pairs and at the end.
    """

    def __init__(
        self,
        plan: ExportPlan,
        *,
        parts: int = 1,
        choose: Callable[[], int] | None = None,
        progress: Progress | None = None,
    ):
        self.plan = plan
        render = plan.renderer()
        self.bodies = [FileBody(plan.format, render) for _ in range(parts)]
        self.choose = choose
        self.progress = progress

    @property
    def counts(self) -> list[int]:
        """Pairs rendered so far, per part."""
        return [body.count for body in self.bodies]

    def __iter__(self) -> Iterator[tuple[int, str]]:
        bodies, choose, progress, total = self.bodies, self.choose, self.progress, self.plan.total
        done = 0
        for input_text, output_text, conversation in self.plan.pairs():
            index = 0 if choose is None else choose()
            chunk = bodies[index].add(input_text, output_text, conversation)
            if chunk is not None:
                yield index, chunk
            done += 1
            if progress is not None and done % PROGRESS_EVERY == 0:
                progress(done, total)
        for index, body in enumerate(bodies):
            yield index, body.finish()
        if progress is not None:
            progress(done, total)


def iter_export_chunks(*, progress: Progress | None = None, **request) -> Iterator[str]:
    """Check the request now (plan_export's keywords), then return an iterator over the export file's text.

    For streaming responses.
    """
    return plan_export(**request).chunks(progress=progress)


# --- Exporting to files -------------------------------------------------------------------


@dataclass(frozen=True)
class ExportedFile:
    path: Path
    count: int
    part: str | None = None


@dataclass(frozen=True)
class ExportResult:
    format: str
    count: int
    files: list[ExportedFile]
    # CSV cells starting like a formula (=, +, -, @, tab, CR); prefixed with ' when excel_safe.
    formula_cells: int = 0
    # With redact: findings replaced by placeholders; with drop_flagged: pairs left out.
    redacted: int = 0
    dropped: int = 0
    # Unusable metadata 'system_prompt'/'context' exported without (conversations.py): how often, the first.
    metadata_ignored: int = 0
    metadata_problem: str | None = None


def export_sessions(
    *,
    session_ids: list[int],
    fmt: str,
    output_path: str | os.PathLike,
    system_prompt: str | None = None,
    split: Mapping[str, float] | None = None,
    seed: int | None = None,
    overwrite: bool = False,
    excel_safe: bool = False,
    redact: bool = False,
    drop_flagged: bool = False,
    progress: Progress | None = None,
) -> ExportResult:
    """Export the sessions' pairs to one file, or to one file per part of a split; nothing is left half-written."""
    plan = plan_export(
        session_ids=session_ids,
        fmt=fmt,
        system_prompt=system_prompt,
        excel_safe=excel_safe,
        redact=redact,
        drop_flagged=drop_flagged,
    )
    target = Path(output_path)
    if split is None:
        if seed is not None:
            raise InvalidInput("a seed only applies to a split")
        names: list[str | None] = [None]
        paths = [target]
        choose = None
    else:
        parts = check_split(split)
        seed = 0 if seed is None else require_int(seed, name="seed")
        names = list(parts)
        paths = [part_path(target, name, plan.format) for name in names]
        choose = SplitChooser(list(split_sizes(kept_total(plan), parts).values()), seed)
    for path in paths:
        refuse_protected_target(path, action="export to")
    with atomic_outputs(paths, overwrite=overwrite) as handles:
        counts = _write(plan, handles, choose, progress)
    files = [ExportedFile(path, count, name) for path, count, name in zip(paths, counts, names, strict=True)]
    publish = plan.publish
    return ExportResult(
        format=fmt,
        count=sum(counts),
        files=files,
        formula_cells=plan.formula_cells.count,
        redacted=publish.redacted if publish else 0,
        dropped=publish.dropped if publish else 0,
        metadata_ignored=plan.conversations.ignored,
        metadata_problem=plan.conversations.first_problem,
    )


def kept_total(plan: ExportPlan) -> int:
    """How many pairs the export writes: all of them, unless flagged pairs are dropped (then count them first)."""
    if plan.publish is None or not plan.publish.drop_flagged:
        return plan.total
    counting = replace(
        plan,
        publish=PublishFilter(drop_flagged=True, scanner=plan.publish.scanner),
        conversations=Conversations(forced_prompt=plan.system_prompt, with_context=plan.format.takes_context),
    )
    return sum(1 for _ in counting.pairs())


def _write(plan: ExportPlan, handles: list[IO[str]], choose: Callable[[], int] | None, progress: Progress | None):
    text = ExportText(plan, parts=len(handles), choose=choose, progress=progress)
    for index, chunk in text:
        handles[index].write(chunk)
    return text.counts


def export_session_to_json(*, session_id: int, output_path: str | os.PathLike, overwrite: bool = True) -> int:
    """Export a session's pairs as FineFoundry's JSON file; return how many were written."""
    return export_sessions(session_ids=[session_id], fmt="json", output_path=output_path, overwrite=overwrite).count
