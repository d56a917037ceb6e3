"""The safe-to-publish scan's stored findings: written by a scan run, read by the admin's pages and the pairs filter.

A run scans each session with `storage.services.scan.scan_sessions` (offsets only), then stores the findings
under a new `SessionScan` row of its own (status `writing`) in short transactions: in each, the flagged pairs
are read again and scanned as they are at that moment (on PostgreSQL with their rows locked), so a pair
edited while the run read the rest is stored as it is now, never by offsets into its old text. One short
transaction at the end makes the scan `current` and the session's previous one `superseded`; that one's
rows are then deleted in short batches. Readers only ever use current scans, so a session's findings are
replaced as a whole, at one commit.

What is stored is (pair, side, kind, start, end, scan time), never the text found: pages mask their
examples from the pair's current text (`sensitive_text.masked_example`). An edit of a pair deletes its
findings (a trigger, migration 0011); a deleted pair's findings are skipped by every reader here (joined
with scraped_pairs) and pruned by doctor (`prune_orphans`).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from django.db import connections, transaction
from django.db.models import Count, Exists, OuterRef, QuerySet
from django.utils import timezone

from storage.db.write_batches import sqlite_batch_manners
from storage.models import Job, ScanFinding, ScrapedPair, SessionScan
from storage.sensitive_text import KINDS, Finding, masked_example
from storage.services.scan import Example, PairScanner, scan_pair_texts, scan_sessions
from storage.services.sessions import existing_sessions, session_id_list

# Flagged pairs read again and stored per write transaction (a few ms each).
WRITE_BATCH = 500
DELETE_BATCH = 5_000
EXAMPLES_PER_KIND = 5
# A scan still `writing` this long after it started, with no running job behind it, was abandoned.
ABANDONED_AFTER = dt.timedelta(minutes=30)

Progress = Callable[[int, int], None]


@dataclass
class SessionScanResult:
    session_id: int
    scan_id: int
    pairs_scanned: int
    counts: dict[str, int] = field(default_factory=dict)
    flagged_pairs: int = 0

    @property
    def findings(self) -> int:
        return sum(self.counts.values())


def scan_and_store(
    *, session_ids: list[int], job_id: int | None = None, progress: Progress | None = None
) -> list[SessionScanResult]:
    """Scan the sessions and store their findings, each session's replacing its previous scan at one commit."""
    ids = session_id_list(session_ids, repeats=False)
    sessions = existing_sessions(ids)
    total = sum(session.pair_count or 0 for session in sessions.values())
    results = []
    done = 0
    for session_id in ids:
        offset = done

        def session_progress(scanned: int, _total: int, offset=offset) -> None:
            if progress is not None:
                progress(offset + scanned, max(total, offset + scanned))

        scan = SessionScan.objects.create(session_id=session_id, job_id=job_id, started_at=timezone.now())
        report = scan_sessions(session_ids=[session_id], examples_per_kind=0, progress=session_progress)
        flagged = sorted({finding.pair_id for finding in report.findings})
        counts, flagged_pairs = _write_findings(scan, flagged)
        _make_current(scan, report.pairs_scanned)
        _delete_superseded(session_id)
        done += report.pairs_scanned
        results.append(
            SessionScanResult(
                session_id, scan.pk, report.pairs_scanned, {k: counts.get(k, 0) for k in KINDS}, flagged_pairs
            )
        )
    if progress is not None:
        progress(done, max(total, done))
    return results


def _locked_texts(pair_ids: list[int]) -> list[tuple[int, str, str]]:
    """The pairs' texts as they are now; on PostgreSQL their rows stay locked until the transaction ends.

    (On SQLite the transaction holds the write lock already: no edit can come between the read and the commit;
    on PostgreSQL an edit waits for our commit, then its trigger deletes what we stored.)
    """
    rows = ScrapedPair.all_objects.filter(pk__in=pair_ids).order_by("pk")
    if connections["default"].vendor == "postgresql":
        rows = rows.select_for_update()
    return list(rows.values_list("id", "input_text", "output_text"))


def _write_findings(scan: SessionScan, flagged: list[int]) -> tuple[Counter, int]:
    scanner = PairScanner()
    counts: Counter = Counter()
    pairs = 0
    with sqlite_batch_manners() as between_batches:
        for start in range(0, len(flagged), WRITE_BATCH):
            chunk = flagged[start : start + WRITE_BATCH]
            with transaction.atomic():
                now = timezone.now()
                rows = [
                    ScanFinding(
                        scan_id=scan.pk,
                        pair_id=finding.pair_id,
                        side=finding.side,
                        kind=finding.kind,
                        start=finding.start,
                        end=finding.end,
                        scanned_at=now,
                    )
                    for pair_id, input_text, output_text in _locked_texts(chunk)
                    for finding in scan_pair_texts(pair_id, input_text, output_text, scanner)
                ]
                ScanFinding.objects.bulk_create(rows, batch_size=1000)
            counts.update(row.kind for row in rows)
            pairs += len({row.pair_id for row in rows})
            between_batches(more=start + WRITE_BATCH < len(flagged))
    return counts, pairs


def _make_current(scan: SessionScan, pairs_scanned: int) -> None:
    with transaction.atomic():
        SessionScan.objects.filter(session_id=scan.session_id, status=SessionScan.Status.CURRENT).update(
            status=SessionScan.Status.SUPERSEDED
        )
        SessionScan.objects.filter(pk=scan.pk).update(
            status=SessionScan.Status.CURRENT, scanned_at=timezone.now(), pairs_scanned=pairs_scanned
        )


def _delete_scans(scans: QuerySet[SessionScan]) -> int:
    """Delete the scans' findings in short batches, then the scans; how many findings went."""
    deleted = 0
    scan_ids = list(scans.values_list("pk", flat=True))
    with sqlite_batch_manners() as between_batches:
        while scan_ids:
            with transaction.atomic():
                doomed = list(
                    ScanFinding.objects.filter(scan_id__in=scan_ids).values_list("pk", flat=True)[:DELETE_BATCH]
                )
                ScanFinding.objects.filter(pk__in=doomed).delete()
                if len(doomed) < DELETE_BATCH:
                    SessionScan.objects.filter(pk__in=scan_ids).delete()
            deleted += len(doomed)
            between_batches(more=len(doomed) == DELETE_BATCH)
            if len(doomed) < DELETE_BATCH:
                break
    return deleted


def _delete_superseded(session_id: int) -> None:
    _delete_scans(SessionScan.objects.filter(session_id=session_id, status=SessionScan.Status.SUPERSEDED))


# --- Reading -----------------------------------------------------------------------------------


def current_scan(*, session_id: int) -> SessionScan | None:
    return SessionScan.objects.filter(session_id=session_id, status=SessionScan.Status.CURRENT).first()


def current_findings(*, kind: str | None = None) -> QuerySet[ScanFinding]:
    """Findings of every session's current scan (one of a deleted pair too: join with the pairs to skip it)."""
    findings = ScanFinding.objects.filter(
        scan_id__in=SessionScan.objects.filter(status=SessionScan.Status.CURRENT).values("pk")
    )
    return findings if kind is None else findings.filter(kind=kind)


def flagged_pairs(queryset: QuerySet[ScrapedPair], *, kind: str | None = None, flagged: bool = True):
    """The pairs of `queryset` that the current scans flagged (of `kind`), or those they did not.

    Flagged pairs are few: `id IN (findings)` lets the engine start from the findings' index and look the
    pairs up by id. The rest are most pairs: NOT EXISTS probes the findings' pair index row by row.
    """
    if flagged:
        return queryset.filter(pk__in=current_findings(kind=kind).values("pair_id"))
    return queryset.filter(~Exists(current_findings(kind=kind).filter(pair_id=OuterRef("pk"))))


def _existing(findings: QuerySet[ScanFinding]) -> QuerySet[ScanFinding]:
    return findings.filter(Exists(ScrapedPair.all_objects.filter(pk=OuterRef("pair_id"))))


@dataclass
class SessionFindings:
    """What a session's current scan found, for its page: counts, masked examples, when."""

    scan: SessionScan
    counts: dict[str, int]
    flagged_pairs: int
    examples: dict[str, list[Example]]

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def session_findings(*, session_id: int, examples_per_kind: int = EXAMPLES_PER_KIND) -> SessionFindings | None:
    """The session's current scan as stored (None before its first scan); pairs deleted since are left out."""
    stored = _current_scan_findings(session_id)
    if stored is None:
        return None
    scan, findings = stored
    counted = dict(findings.order_by().values_list("kind").annotate(n=Count("pk")).values_list("kind", "n"))
    flagged = findings.order_by().values("pair_id").distinct().count()
    examples: dict[str, list[Example]] = {kind: [] for kind in KINDS}
    for kind in KINDS:
        for finding in findings.filter(kind=kind).order_by("pair_id", "side", "start")[:examples_per_kind]:
            excerpt = _masked(finding)
            if excerpt is not None:
                examples[kind].append(Example(finding.pair_id, finding.side, finding.kind, excerpt))
    return SessionFindings(scan, {kind: counted.get(kind, 0) for kind in KINDS}, flagged, examples)


def stored_findings(*, session_id: int) -> tuple[SessionScan, list[ScanFinding]] | None:
    """The session's current scan and its findings in (pair, side, start) order; None before its first scan.

    Findings of pairs deleted since are left out (an edited pair's were dropped by the edit).
    """
    existing_sessions([session_id])
    stored = _current_scan_findings(session_id)
    if stored is None:
        return None
    scan, findings = stored
    return scan, list(findings.order_by("pair_id", "side", "start"))


def _current_scan_findings(session_id: int) -> tuple[SessionScan, QuerySet[ScanFinding]] | None:
    """The session's current scan and its findings of pairs that still exist; None before its first scan."""
    scan = current_scan(session_id=session_id)
    if scan is None:
        return None
    return scan, _existing(ScanFinding.objects.filter(scan_id=scan.pk))


def _text(pair: ScrapedPair, side: str) -> str:
    return pair.input_text if side == "input" else pair.output_text


def _masked(finding: ScanFinding) -> str | None:
    pair = ScrapedPair.all_objects.filter(pk=finding.pair_id).only("input_text", "output_text").first()
    if pair is None:
        return None
    text = _text(pair, finding.side)
    if not 0 <= finding.start < finding.end <= len(text):
        return None  # offsets that do not fit the text are never shown (an edit deletes them; this is a guard)
    # The other findings of that side as the scan stored them (stored secret settings included), masked too.
    others = [
        Finding(kind, start, end)
        for kind, start, end in ScanFinding.objects.filter(
            scan_id=finding.scan_id, pair_id=finding.pair_id, side=finding.side
        ).values_list("kind", "start", "end")
        if end <= len(text)
    ]
    return masked_example(text, Finding(finding.kind, finding.start, finding.end), findings=others)


def pair_findings(*, pair: ScrapedPair) -> tuple[SessionScan | None, list[ScanFinding]]:
    """The pair's findings in the current scans (and the scan), valid offsets into its current text only."""
    findings = [
        finding
        for finding in current_findings().filter(pair_id=pair.pk).order_by("side", "start")
        if 0 <= finding.start < finding.end <= len(_text(pair, finding.side))
    ]
    scan = SessionScan.objects.filter(pk=findings[0].scan_id).first() if findings else None
    return scan, findings


# --- doctor ------------------------------------------------------------------------------------


def _abandoned_scans() -> QuerySet[SessionScan]:
    running = Job.objects.filter(status__in=(Job.Status.QUEUED, Job.Status.RUNNING)).values("pk")
    return SessionScan.objects.filter(
        status=SessionScan.Status.WRITING, started_at__lt=timezone.now() - ABANDONED_AFTER
    ).exclude(job_id__in=running)


def orphan_count() -> int:
    """Findings of pairs that no longer exist, plus findings of superseded or abandoned scans."""
    gone = ScanFinding.objects.filter(~Exists(ScrapedPair.all_objects.filter(pk=OuterRef("pair_id")))).count()
    stale = [
        *SessionScan.objects.filter(status=SessionScan.Status.SUPERSEDED).values_list("pk", flat=True),
        *_abandoned_scans().values_list("pk", flat=True),
    ]
    return gone + ScanFinding.objects.filter(scan_id__in=stale).count()


def prune_orphans() -> int:
    """Delete those findings (in short batches); how many."""
    pruned = 0
    with sqlite_batch_manners() as between_batches:
        while True:
            with transaction.atomic():
                doomed = list(
                    ScanFinding.objects.filter(
                        ~Exists(ScrapedPair.all_objects.filter(pk=OuterRef("pair_id")))
                    ).values_list("pk", flat=True)[:DELETE_BATCH]
                )
                ScanFinding.objects.filter(pk__in=doomed).delete()
            pruned += len(doomed)
            between_batches(more=len(doomed) == DELETE_BATCH)
            if len(doomed) < DELETE_BATCH:
                break
    pruned += _delete_scans(SessionScan.objects.filter(status=SessionScan.Status.SUPERSEDED))
    pruned += _delete_scans(_abandoned_scans())
    return pruned
