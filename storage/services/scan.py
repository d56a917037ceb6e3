"""The safe-to-publish scan: personal data and secrets in sessions' pairs, found, counted and shown masked.

What counts as a finding is `storage.sensitive_text`'s rule; this module reads the pairs (page by page, in
constant memory), adds the stored values of secret settings (read from the database on every scan: the
desktop app changes them with plain sqlite3), and sums the results up; a big scan runs in worker
processes (`storage.sensitive_text.pool`). Findings are computed here, from the pairs as they are now;
storing a run's findings is `storage.services.scan_findings`'s. Exports use the same `PairScanner` row by
row (redact or drop while streaming).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from django.conf import settings

from storage.exceptions import InvalidInput
from storage.models import ScrapedPair
from storage.sensitive_text import (
    KINDS,
    Finding,
    find_sensitive,
    masked_example,
    redact_findings,
    stored_secrets_pattern,
)
from storage.sensitive_text.pool import scan_page, scan_pages, usable_workers
from storage.services.sessions import existing_sessions, session_id_list
from storage.services.settings import secret_values

PAGE_SIZE = 2000
PROGRESS_EVERY = 5000
EXAMPLES_PER_KIND = 5
# Below this many pairs (about 2 s of scanning) starting worker processes (~0.5 s) is not worth it.
PARALLEL_FROM = 20_000

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class PairFinding:
    pair_id: int
    side: str
    kind: str
    start: int
    end: int

    def as_dict(self) -> dict:
        return {"pair_id": self.pair_id, "side": self.side, "kind": self.kind, "start": self.start, "end": self.end}


@dataclass(frozen=True)
class Example:
    pair_id: int
    side: str
    kind: str
    excerpt: str  # the finding masked, see sensitive_text.masked_example


@dataclass
class ScanReport:
    session_ids: list[int]
    pairs_scanned: int = 0
    findings: list[PairFinding] = field(default_factory=list)
    examples: dict[str, list[Example]] = field(default_factory=dict)
    workers: int = 1  # the worker processes that scanned; 1: the calling process itself

    @property
    def counts(self) -> dict[str, int]:
        counted = Counter(finding.kind for finding in self.findings)
        return {kind: counted.get(kind, 0) for kind in KINDS}

    @property
    def flagged_pairs(self) -> int:
        return len({finding.pair_id for finding in self.findings})


class PairScanner:
    """Scans pair texts with the secret settings as they are stored now; one per scan or export."""

    def __init__(self, secrets_re: re.Pattern[str] | None = None):
        self.secrets_re = stored_secrets_pattern(secret_values()) if secrets_re is None else secrets_re

    def find(self, text: str) -> list[Finding]:
        return find_sensitive(text, self.secrets_re)

    def redact(self, text: str) -> tuple[str, int]:
        """The text with every finding replaced by its placeholder, and how many there were."""
        findings = self.find(text)
        return (redact_findings(text, findings), len(findings)) if findings else (text, 0)


def iter_pages(session_ids: list[int]) -> Iterator[list[tuple[int, str, str]]]:
    """Pages of (id, input, output) of the sessions' pairs, session by session in stored order."""
    for session_id in session_ids:
        after = 0
        pairs = ScrapedPair.objects.filter(session_id=session_id).order_by("id")
        while True:
            page = list(pairs.filter(id__gt=after).values_list("id", "input_text", "output_text")[:PAGE_SIZE])
            if not page:
                break
            after = page[-1][0]
            yield page


def iter_pairs(session_ids: list[int]) -> Iterator[tuple[int, str, str]]:
    """(id, input, output) of the sessions' pairs, session by session in stored order, a page at a time."""
    for page in iter_pages(session_ids):
        yield from page


def scan_pair_texts(pair_id: int, input_text: str, output_text: str, scanner: PairScanner) -> list[PairFinding]:
    found_input, found_output = scanner.find(input_text), scanner.find(output_text)
    if not found_input and not found_output:
        return []  # most pairs: no list building per side
    return _pair_findings(pair_id, found_input, found_output)


def _pair_findings(pair_id: int, found_input: list[Finding], found_output: list[Finding]) -> list[PairFinding]:
    return [PairFinding(pair_id, "input", f.kind, f.start, f.end) for f in found_input] + [
        PairFinding(pair_id, "output", f.kind, f.start, f.end) for f in found_output
    ]


def scan_sessions(
    *, session_ids: list[int], examples_per_kind: int = EXAMPLES_PER_KIND, progress: Progress | None = None
) -> ScanReport:
    """Scan every pair of the sessions; return the findings (offsets only) and a few masked examples per kind.

    Past PARALLEL_FROM pairs, with more than one core, worker processes (FINEFOUNDRY_SCAN_WORKERS at
    most) scan while this one reads (storage.sensitive_text.pool); the findings are the same either
    way, in pair order.
    """
    ids = session_id_list(session_ids, repeats=False)
    sessions = existing_sessions(ids)
    total = sum(session.pair_count or 0 for session in sessions.values())
    values = secret_values()
    workers = min(settings.FINEFOUNDRY_SCAN_WORKERS, usable_workers()) if total >= PARALLEL_FROM else 1
    if workers > 1:
        scanned = scan_pages(iter_pages(ids), values, workers)  # each worker compiles the pattern itself
    else:
        secrets_re = stored_secrets_pattern(values)
        scanned = ((page, scan_page(page, secrets_re)) for page in iter_pages(ids))
    report = ScanReport(session_ids=ids, examples={kind: [] for kind in KINDS}, workers=workers)
    for page, flagged in scanned:
        texts = {pair_id: (input_text, output_text) for pair_id, input_text, output_text in page} if flagged else {}
        for pair_id, found_input, found_output in flagged:
            found = _pair_findings(pair_id, found_input, found_output)
            report.findings.extend(found)
            for finding in found:
                shown = report.examples[finding.kind]
                if len(shown) < examples_per_kind:
                    text = texts[pair_id][0 if finding.side == "input" else 1]
                    excerpt = masked_example(
                        text,
                        Finding(finding.kind, finding.start, finding.end),
                        findings=side_findings(found, finding.side),
                    )
                    shown.append(Example(pair_id, finding.side, finding.kind, excerpt))
        before = report.pairs_scanned
        report.pairs_scanned += len(page)
        if progress is not None and report.pairs_scanned // PROGRESS_EVERY > before // PROGRESS_EVERY:
            progress(report.pairs_scanned, total)
    if progress is not None:
        progress(report.pairs_scanned, total)
    return report


def scan_pair(*, pair: ScrapedPair) -> list[tuple[PairFinding, str]]:
    """One pair's findings, each with a masked excerpt for its admin page."""
    scanner = PairScanner()
    texts = {"input": pair.input_text, "output": pair.output_text}
    found = scan_pair_texts(pair.pk, pair.input_text, pair.output_text, scanner)
    return [
        (
            finding,
            masked_example(
                texts[finding.side],
                Finding(finding.kind, finding.start, finding.end),
                findings=side_findings(found, finding.side),
            ),
        )
        for finding in found
    ]


def side_findings(found: list[PairFinding], side: str) -> list[Finding]:
    """The findings of one side of a pair, for masked_example: every one of them (stored secrets too) is masked."""
    return [Finding(f.kind, f.start, f.end) for f in found if f.side == side]


class PublishFilter:
    """What an export does to each pair while it streams: mask every finding, or leave flagged pairs out."""

    def __init__(self, *, redact: bool = False, drop_flagged: bool = False, scanner: PairScanner | None = None):
        if redact and drop_flagged:
            raise InvalidInput("choose redact or drop-flagged, not both")
        self.redact = redact
        self.drop_flagged = drop_flagged
        self.scanner = scanner or PairScanner()
        self.redacted = 0  # findings replaced by placeholders
        self.dropped = 0  # pairs left out

    def apply(self, input_text: str, output_text: str) -> tuple[str, str] | None:
        """The pair as it is to be exported, or None when it is left out."""
        if self.drop_flagged:
            if self.scanner.find(input_text) or self.scanner.find(output_text):
                self.dropped += 1
                return None
            return input_text, output_text
        input_text, in_count = self.scanner.redact(input_text)
        output_text, out_count = self.scanner.redact(output_text)
        self.redacted += in_count + out_count
        return input_text, output_text
