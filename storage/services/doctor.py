"""Health checks for the database and the storage root, each able to repair what it finds.

A check is a function taking a DoctorContext and returning a list of Findings; with
`context.fix` it also repairs what it safely can and marks those findings fixed. Checks are
independent: one that crashes becomes a finding of its own and the others still run.

To add a check, register it; it runs after the ones already registered:

    from storage.services.doctor import DoctorContext, Finding, register_check

        def check_search_index(context: DoctorContext) -> list[Finding]:
        missing = ...
        if not missing:
            return []
        finding = Finding(f"{len(missing)} pairs are missing from the search index", fixable=True)
        if context.fix:
            ...  # rebuild
            finding.fixed = True
        return [finding]

Register from a module that is imported when Django starts (an AppConfig.ready() import, say),
or the doctor command will not know the check exists. A check that does not apply here (the
SQLite integrity check on PostgreSQL) raises Skipped with the reason.

What --fix does, check by check: `integrity` cannot be repaired in place (restore a backup);
`pair-counts` recounts; `imports` rolls back an abandoned import (or completes one that was
moving its rows into the session it appends to: storage/services/datasets/import_sessions.py);
`stuck-runs` marks the run failed through the run life cycle, with the
reason in its metadata (`failure_reason`) and logs; `jobs` marks a background job whose worker is gone
(or silent for 10 minutes) failed, with the reason as its error, and the task backend's row with it;
`orphan-directories` never deletes: it moves the directory into `<storage root>/.quarantine/`,
where the user can look and delete it;
`missing-directories` recreates an empty run directory inside the storage root (never outside);
`orphan-pairs` deletes pairs whose session no longer exists (the desktop app deletes a session
and relies on foreign keys for its pairs) and unlinks evaluations from missing runs;
`search-index` (storage/search/health.py) builds a missing index, rebuilds one that lacks pairs,
is damaged (FTS5 integrity-check, with --full) or is mostly entries of deleted pairs, and
indexes a large backlog of new pairs.
"""

from __future__ import annotations

import datetime as dt
import os
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.db import connections, transaction
from django.db.models import Q
from django.utils import timezone

from storage.db import files
from storage.exceptions import StorageError, UnsafePath
from storage.models import EvaluationRun, ScrapedPair, ScrapeSession, TrainingRun
from storage.search import health as search_index_health
from storage.services import jobs, near_duplicates, pair_counts, run_files, runs, scan_findings
from storage.services.datasets import import_sessions
from storage.services.run_reports import format_duration

QUARANTINE_DIRECTORY = ".quarantine"
DEFAULT_STUCK_AFTER = dt.timedelta(minutes=60)
# A directory this new may belong to a run being created right now (directory first, then row).
ORPHAN_GRACE = dt.timedelta(minutes=10)


@dataclass
class Finding:
    """One problem a check found; `fixed` once --fix repaired it."""

    problem: str
    fixable: bool = True
    fixed: bool = False
    action: str = ""
    # Worth saying, not a problem: it neither fails doctor nor counts as fixed.
    note: bool = False


@dataclass(frozen=True)
class DoctorContext:
    fix: bool = False
    stuck_after: dt.timedelta = DEFAULT_STUCK_AFTER
    full_integrity_check: bool = False
    now: dt.datetime = field(default_factory=timezone.now)


@dataclass(frozen=True)
class Check:
    name: str
    title: str
    run: Callable[[DoctorContext], list[Finding]]


@dataclass
class CheckReport:
    check: Check
    findings: list[Finding]
    skipped: str | None = None

    @property
    def unresolved(self) -> list[Finding]:
        return [finding for finding in self.findings if not finding.fixed and not finding.note]


class Skipped(Exception):
    """Raised by a check that does not apply here (e.g. a PRAGMA on PostgreSQL); the message says why."""


def run_checks(context: DoctorContext, *, only: list[str] | None = None) -> list[CheckReport]:
    """Run every check (or those named in `only`) and collect what they found."""
    if only:
        unknown = sorted(set(only) - {check.name for check in CHECKS})
        if unknown:
            raise StorageError(f"unknown check {', '.join(unknown)}; known: {', '.join(c.name for c in CHECKS)}")
    reports = []
    for check in CHECKS:
        if only and check.name not in only:
            continue
        try:
            report = CheckReport(check, check.run(context))
        except Skipped as exc:
            report = CheckReport(check, [], skipped=str(exc))
        except Exception as exc:
            # One broken check must not hide what the others find.
            detail = traceback.format_exception_only(exc)[-1].strip()
            report = CheckReport(check, [Finding(f"the check itself failed: {detail}", fixable=False)])
        reports.append(report)
        if check.name == "integrity" and report.unresolved:
            # Nothing else may open (and so write) a damaged database.
            reports += [
                CheckReport(rest, [], skipped="the database is damaged, so it was not opened for this check")
                for rest in CHECKS
                if rest is not check and rest not in [r.check for r in reports] and (not only or rest.name in only)
            ]
            break
    return reports


# --- The checks ---------------------------------------------------------------------------


def check_integrity(context: DoctorContext) -> list[Finding]:
    connection = connections["default"]
    if connection.vendor != "sqlite":
        raise Skipped(f"only for SQLite (this is {connection.vendor})")
    pragma = "integrity_check" if context.full_integrity_check else "quick_check"
    # A read-only connection of its own: a damaged file is reported, never written (not even
    # switched to WAL, which our own connections would do).
    path = Path(connection.settings_dict["NAME"])
    if not path.exists():
        raise Skipped(f"the database {path} does not exist yet")
    messages = files.damage_report(path, full=context.full_integrity_check)
    findings = [
        Finding(f"{pragma}: {message}", fixable=False, action="restore a backup or run sqlite3 .recover")
        for message in messages
    ]
    if findings:
        return findings
    foreign = files.foreign_key_problems(path)
    tables = sorted({row[0] for row in foreign})
    if foreign and not set(tables) <= {"scraped_pairs", "evaluation_runs"}:
        findings.append(Finding(f"foreign keys point nowhere in {', '.join(tables)}", fixable=False))
    return findings


def check_orphans(context: DoctorContext) -> list[Finding]:
    pairs = ScrapedPair.objects.exclude(session_id__in=ScrapeSession.objects.values("pk"))
    evaluations = EvaluationRun.objects.filter(training_run_id__isnull=False).exclude(
        training_run_id__in=TrainingRun.objects.values("pk")
    )
    findings = []
    orphan_pairs = pairs.count()
    if orphan_pairs:
        finding = Finding(f"{orphan_pairs:,} pairs belong to sessions that no longer exist")
        if context.fix:
            with transaction.atomic():
                deleted, _ = pairs.delete()
            finding.fixed, finding.action = True, f"deleted {deleted:,} pairs"
        findings.append(finding)
    orphan_evaluations = evaluations.count()
    if orphan_evaluations:
        finding = Finding(f"{orphan_evaluations:,} evaluations point at training runs that no longer exist")
        if context.fix:
            with transaction.atomic():
                evaluations.update(training_run=None)
            finding.fixed, finding.action = True, "unlinked them from the missing runs"
        findings.append(finding)
    return findings


def check_pair_counts(context: DoctorContext) -> list[Finding]:
    drift = pair_counts.pair_count_drift()
    findings = [
        Finding(f"session {session_id} says {stored if stored is not None else 'NULL'} pairs but has {actual:,}")
        for session_id, stored, actual in drift
    ]
    if findings and context.fix:
        pair_counts.repair_pair_counts()
        for finding in findings:
            finding.fixed, finding.action = True, "recounted"
    return findings


def check_abandoned_imports(context: DoctorContext) -> list[Finding]:
    findings = []
    for abandoned in import_sessions.abandoned_imports():
        finding = Finding(abandoned.describe())
        if context.fix:
            action = import_sessions.recover(abandoned)
            finding.fixed, finding.action = True, action or "finished by another process meanwhile"
        findings.append(finding)
    return findings


def check_stuck_runs(context: DoctorContext) -> list[Finding]:
    cutoff = context.now - context.stuck_after
    stuck = TrainingRun.objects.filter(status=TrainingRun.Status.RUNNING).filter(
        Q(updated_at__lt=cutoff) | Q(updated_at__isnull=True, created_at__lt=cutoff)
    )
    findings = []
    for run in stuck.order_by("id"):
        last = run.updated_at or run.created_at
        idle = format_duration(context.now - last, coarse=True) if last else "ever"
        finding = Finding(f"run {run.pk} ({run.name}) is running but has not been updated for {idle}")
        if context.fix:
            reason = f"marked failed by doctor: no update for {idle} while running"
            metadata = run.metadata if isinstance(run.metadata, dict) else {}
            run_logs = run.logs if isinstance(run.logs, list) else []
            runs.update_training_run(
                run_id=run.pk,
                status=TrainingRun.Status.FAILED,
                metadata={**metadata, "failure_reason": reason},
                logs=[*run_logs, f"[doctor] {reason}"],
            )
            finding.fixed, finding.action = True, "marked failed"
        findings.append(finding)
    return findings


def check_dead_jobs(context: DoctorContext) -> list[Finding]:
    """Background jobs still 'running' whose worker died (process gone here, or no heartbeat for 10 minutes)."""
    findings = []
    for dead in jobs.dead_jobs(now=context.now):
        finding = Finding(f"job {dead.job.pk} ({dead.job.label}) is running but {dead.reason}")
        if context.fix:
            jobs.fail_dead_job(dead)
            finding.fixed, finding.action = True, "marked failed"
        findings.append(finding)
    return findings


def _run_directories() -> dict[Path, TrainingRun]:
    directories = {}
    for run in TrainingRun.objects.exclude(storage_path__isnull=True).exclude(storage_path="").order_by("id"):
        try:
            directory = os.path.realpath(run_files.resolve_stored_path(run.storage_path))
        except ValueError:
            continue  # a NUL byte: it names no directory
        directories[Path(directory)] = run
    return directories


def check_interrupted_deletes(context: DoctorContext) -> list[Finding]:
    """A delete killed between moving the directory aside and deleting the row leaves `.deleting-<id>-*`.

    While the run's row exists the files are its artefacts: they go back. Without the row the
    delete had finished its database part; the files belong to no run and go to quarantine.
    """
    root = Path(settings.FINEFOUNDRY_STORAGE_ROOT)
    if not root.is_dir():
        return []
    findings = []
    with run_files.open_root() as root_fd:
        for entry in sorted(root.iterdir()):
            if not entry.name.startswith(run_files.DELETING_PREFIX) or entry.is_symlink() or not entry.is_dir():
                continue
            if run_files.is_locked(root_fd, entry.name):
                continue  # a delete is running right now
            match = run_files.DELETING_NAME.fullmatch(entry.name)
            run = TrainingRun.objects.filter(pk=int(match[1])).first() if match else None
            if run is not None and run.storage_path:
                finding = Finding(f"run {run.pk} ({run.name}): a killed delete left its artefacts in {entry}")
                if context.fix:
                    try:
                        finding.action = run_files.restore_moved_aside(entry.name, stored=run.storage_path)
                        finding.fixed = True
                    except StorageError as exc:
                        finding.fixable, finding.action = False, str(exc)
            else:
                finding = Finding(f"directory {entry} was left by a delete whose run is gone")
                if context.fix:
                    _quarantine(root, entry, finding)
            findings.append(finding)
    return findings


def check_orphan_directories(context: DoctorContext) -> list[Finding]:
    """Quarantine run-shaped directories no run points at; anything else (.git, src/, ...) is left alone."""
    root = Path(settings.FINEFOUNDRY_STORAGE_ROOT)
    if not root.is_dir():
        return []
    known = _run_directories()
    findings = []
    for entry in sorted(root.iterdir()):
        if entry.name == QUARANTINE_DIRECTORY or entry.name.startswith(run_files.DELETING_PREFIX):
            continue
        if not entry.is_dir() or entry.is_symlink() or entry.resolve() in known:
            continue
        if not run_files.looks_like_run_directory(entry):
            findings.append(Finding(f"{entry}: left alone: not a run directory", note=True))
            continue
        age = context.now - dt.datetime.fromtimestamp(entry.stat().st_mtime, tz=dt.UTC)
        if age < ORPHAN_GRACE:
            continue
        finding = Finding(f"directory {entry} belongs to no training run")
        if context.fix:
            _quarantine(root, entry, finding)
        findings.append(finding)
    return findings


def _quarantine(root: Path, entry: Path, finding: Finding) -> None:
    """Move `entry` into the quarantine directory (never deleted: a person decides) and say so on the finding."""
    quarantine = root / QUARANTINE_DIRECTORY
    quarantine.mkdir(exist_ok=True)
    destination = quarantine / entry.name
    suffix = 1
    while destination.exists():
        destination = quarantine / f"{entry.name}.{suffix}"
        suffix += 1
    os.rename(entry, destination)
    finding.fixed, finding.action = True, f"moved to {destination} (delete it there once you are sure)"


def check_missing_directories(context: DoctorContext) -> list[Finding]:
    root = Path(settings.FINEFOUNDRY_STORAGE_ROOT).resolve()
    # Runs whose artefacts a killed delete left aside are interrupted-deletes' to put back, not to recreate empty.
    moved_aside = {
        int(match[1])
        for entry in (root.iterdir() if root.is_dir() else ())
        if (match := run_files.DELETING_NAME.fullmatch(entry.name))
    }
    findings = []
    for directory, run in _run_directories().items():
        if directory.is_dir() or run.pk in moved_aside:
            continue
        inside = _inside_storage_root(run.storage_path)
        finding = Finding(
            f"run {run.pk} ({run.name}, {run.status}): directory {directory} is missing",
            fixable=inside,
            action="" if inside else "it is outside the storage root, so doctor leaves it alone",
        )
        if context.fix and inside:
            for sub in run_files.RUN_SUBDIRECTORIES:
                (directory / sub).mkdir(parents=True, exist_ok=True)
            finding.fixed, finding.action = True, "recreated it empty (the artefacts that were in it are gone)"
        findings.append(finding)
    return findings


def _inside_storage_root(stored: str) -> bool:
    """Whether doctor may recreate this directory: run_files' rule (inside the root, never through a symlink)."""
    try:
        run_files.checked_run_path(stored)
    except UnsafePath:
        return False
    return True


def check_search_index(context: DoctorContext) -> list[Finding]:
    health = search_index_health.inspect(thorough=context.full_integrity_check)
    if health is None:
        raise Skipped("needs PostgreSQL or SQLite with FTS5; searches scan the pairs instead")
    findings = [Finding(problem) for problem in health.problems()]
    if findings and context.fix:
        action = search_index_health.repair(health)
        for finding in findings:
            finding.fixed, finding.action = True, action
        return findings
    # A backlog of new pairs is information, not a problem: indexing catches up on its own.
    notes = health.notes()
    if notes and context.fix:
        notes = [f"{note}; indexed {search_index_health.repair(health).removeprefix('indexed ')}" for note in notes]
    return [*findings, *(Finding(note, note=True) for note in notes)]


def check_orphan_signatures(context: DoctorContext) -> list[Finding]:
    """Near-duplicate signatures of pairs deleted since (harmless: lookups skip them; pruned with --fix)."""
    orphans = near_duplicates.orphan_signature_count()
    if not orphans:
        return []
    finding = Finding(f"{orphans:,} near-duplicate signatures belong to pairs that no longer exist")
    if context.fix:
        near_duplicates.prune_orphan_signatures()
        finding.fixed, finding.action = True, "pruned them and their band rows"
    return [finding]


def check_orphan_findings(context: DoctorContext) -> list[Finding]:
    """Scan findings of pairs deleted since, or of scans replaced or abandoned (harmless: readers skip them)."""
    orphans = scan_findings.orphan_count()
    if not orphans:
        return []
    finding = Finding(f"{orphans:,} stored scan findings belong to deleted pairs or to replaced scans")
    if context.fix:
        scan_findings.prune_orphans()
        finding.fixed, finding.action = True, "pruned them"
    return [finding]


# Every check, in the order they run and are reported; `--check NAME` picks by the first field.
CHECKS: tuple[Check, ...] = (
    Check("integrity", "SQLite file integrity", check_integrity),
    Check("orphan-pairs", "Pairs and evaluations point at rows that exist", check_orphans),
    Check("pair-counts", "Sessions' pair_count matches their pairs", check_pair_counts),
    Check("imports", "No import was left half-written", check_abandoned_imports),
    Check("stuck-runs", "No training run is stuck in running", check_stuck_runs),
    Check("jobs", "No background job is left running by a dead worker", check_dead_jobs),
    Check("interrupted-deletes", "No run deletion was left half done", check_interrupted_deletes),
    Check("orphan-directories", "Every directory in the storage root belongs to a run", check_orphan_directories),
    Check("missing-directories", "Every run's directory exists", check_missing_directories),
    Check("search-index", "Search index covers every pair", check_search_index),
    Check("signatures", "Near-duplicate signatures belong to existing pairs", check_orphan_signatures),
    Check("scan-findings", "Stored scan findings belong to existing pairs and current scans", check_orphan_findings),
)
