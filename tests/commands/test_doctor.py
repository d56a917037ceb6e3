"""doctor: each check finds its problem, exits non-zero until it is fixed, and --fix repairs it safely."""

from __future__ import annotations

import datetime as dt
import io
import os
import shutil
import sqlite3
import time
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.utils import timezone

from storage.models import ScrapedPair, ScrapeSession, TrainingRun
from storage.services import doctor, runs
from tests.helpers.datasets import add_pairs_directly, copy_test_database, manage

pytestmark = pytest.mark.django_db


def run_doctor(*args) -> str:
    out = io.StringIO()
    call_command("doctor", *args, stdout=out)
    return out.getvalue()


def failing_doctor(*args) -> tuple[str, str]:
    out = io.StringIO()
    with pytest.raises(CommandError) as raised:
        call_command("doctor", *args, stdout=out)
    assert raised.value.returncode == 1
    return out.getvalue(), str(raised.value)


@pytest.mark.sqlite_only("asserts the SQLite file-integrity check among the results")
def test_a_healthy_database_passes(session_factory, run_factory):
    session_factory(pairs=3)
    run_factory()
    out = run_doctor()
    assert "ok SQLite file integrity" in out
    assert "No problems found." in out and "No problems left." not in out


def test_pair_count_drift_is_reported_then_recounted(session_factory):
    session = session_factory(pairs=3)
    ScrapeSession.objects.filter(pk=session.pk).update(pair_count=10)
    out, error = failing_doctor()
    assert f"session {session.pk} says 10 pairs but has 3" in out
    assert error == "doctor found 1 problem; run with --fix to repair what can be repaired"
    out = run_doctor("--fix")
    assert "(fixed: recounted)" in out
    session.refresh_from_db()
    assert session.pair_count == 3
    run_doctor()


def make_running(run_factory, *, idle: dt.timedelta, iso: bool) -> TrainingRun:
    run = run_factory(name="stuck-llama", metadata={"target": "local"})
    runs.update_training_run(run_id=run.pk, status="running", logs=["{'loss': 1.9, 'epoch': 0.1}"])
    moment = (timezone.now() - idle).replace(tzinfo=None)
    # The desktop app wrote run times in ISO format; compare across formats.
    stamp = moment.isoformat() if iso else moment.strftime("%Y-%m-%d %H:%M:%S")
    with connection.cursor() as cursor:
        cursor.execute("UPDATE training_runs SET updated_at = %s WHERE id = %s", [stamp, run.pk])
    return run


@pytest.mark.parametrize("iso", [True, False])
def test_a_stuck_run_is_marked_failed_with_the_reason(run_factory, iso):
    run = make_running(run_factory, idle=dt.timedelta(hours=2), iso=iso)
    out, _ = failing_doctor("--check", "stuck-runs")
    assert f"run {run.pk} (stuck-llama) is running but has not been updated for 2 hours" in out
    run_doctor("--check", "stuck-runs", "--stuck-after-minutes", "180")
    out = run_doctor("--fix", "--check", "stuck-runs")
    assert "(fixed: marked failed)" in out
    run.refresh_from_db()
    assert run.status == "failed"
    assert run.completed_at is not None
    assert run.metadata == {
        "target": "local",
        "failure_reason": "marked failed by doctor: no update for 2 hours while running",
    }
    assert run.logs[-1] == "[doctor] marked failed by doctor: no update for 2 hours while running"


def test_a_run_that_is_still_updating_is_not_stuck(run_factory):
    make_running(run_factory, idle=dt.timedelta(minutes=5), iso=True)
    run_doctor("--check", "stuck-runs")


def age(path: Path, *, hours: float) -> None:
    moment = time.time() - hours * 3600
    os.utime(path, (moment, moment))


def test_a_directory_without_a_run_is_quarantined_never_deleted(storage_root, run_factory):
    run_factory()
    stray = storage_root / "old_experiment_20240101_093000"
    (stray / "outputs").mkdir(parents=True)
    (stray / "outputs" / "adapter.safetensors").write_bytes(b"weights")
    age(stray, hours=3)
    fresh = storage_root / "being_created_20240101_093000"
    (fresh / "outputs").mkdir(parents=True)
    out, _ = failing_doctor("--check", "orphan-directories")
    assert f"directory {stray} belongs to no training run" in out
    assert "being_created" not in out
    out = run_doctor("--fix", "--check", "orphan-directories")
    moved = storage_root / ".quarantine" / stray.name
    assert f"moved to {moved}" in out
    assert (moved / "outputs" / "adapter.safetensors").read_bytes() == b"weights"
    assert not stray.exists()
    assert fresh.is_dir()
    run_doctor("--check", "orphan-directories")


def test_a_project_folder_as_storage_root_keeps_everything_that_is_not_a_run_directory(storage_root, run_factory):
    run_factory()
    project = {
        ".git": "objects",
        ".venv": "bin",
        "src": "db",
        "notes_20240101_093000": "drafts",  # run-shaped name, but none of outputs/, checkpoints/, logs/
        "old_20240101": "outputs",  # has outputs/, but not the <name>_<YYYYMMDD_HHMMSS> name
    }
    for name, sub in project.items():
        (storage_root / name / sub).mkdir(parents=True)
        (storage_root / name / sub / "file").write_text(name)
        age(storage_root / name, hours=3)
    stray = storage_root / "llama_20240101_093000_123456"
    (stray / "logs").mkdir(parents=True)
    age(stray, hours=3)
    out = run_doctor("--fix", "--check", "orphan-directories")
    for name, sub in project.items():
        assert f"{storage_root / name}: left alone: not a run directory" in out
        assert (storage_root / name / sub / "file").read_text() == name
    assert f"directory {stray} belongs to no training run" in out
    assert (storage_root / ".quarantine" / stray.name / "logs").is_dir()
    assert sorted(p.name for p in (storage_root / ".quarantine").iterdir()) == [stray.name]
    assert "Fixed 1 problem." in out and "No problems left." in out


def test_a_missing_run_directory_is_recreated_inside_the_root(run_factory):
    run = run_factory(name="lost")
    shutil.rmtree(run.storage_path)
    out, _ = failing_doctor("--check", "missing-directories")
    assert f"run {run.pk} (lost, pending): directory {run.storage_path} is missing" in out
    run_doctor("--fix", "--check", "missing-directories")
    assert sorted(p.name for p in Path(run.storage_path).iterdir()) == ["checkpoints", "logs", "outputs"]


def test_a_missing_directory_outside_the_root_is_left_alone(run_factory, tmp_path):
    run = run_factory(name="elsewhere")
    outside = tmp_path / "somewhere_else" / "run"
    TrainingRun.objects.filter(pk=run.pk).update(storage_path=str(outside))
    out, error = failing_doctor("--fix", "--check", "missing-directories")
    assert "it is outside the storage root, so doctor leaves it alone" in out
    assert error == "doctor found 1 problem"
    assert not outside.exists()


@pytest.mark.sqlite_only("orphan pairs exist only where foreign keys can be off (PRAGMA defer_foreign_keys)")
def test_pairs_of_deleted_sessions_are_removed(session_factory):
    kept = session_factory(pairs=2)
    with connection.cursor() as cursor:
        # What a desktop app running without foreign keys leaves behind; checked only at commit, which never comes.
        cursor.execute("PRAGMA defer_foreign_keys = ON")
        cursor.execute("INSERT INTO scraped_pairs (session_id, input_text, output_text) VALUES (987654, 'q', 'a')")
    out, _ = failing_doctor("--check", "orphan-pairs")
    assert "1 pairs belong to sessions that no longer exist" in out
    run_doctor("--fix", "--check", "orphan-pairs")
    assert list(ScrapedPair.objects.values_list("session_id", flat=True)) == [kept.pk, kept.pk]


def test_added_checks_run_and_a_crashing_check_does_not_hide_the_others(monkeypatch, session_factory):
    seen = []

    def custom(context):
        seen.append(context.fix)
        return [doctor.Finding("something custom is off", fixable=False)]

    def broken(context):
        raise RuntimeError("boom")

    assert len({check.name for check in doctor.CHECKS}) == len(doctor.CHECKS)
    added = (
        doctor.Check("custom", "A check added by another module", custom),
        doctor.Check("broken", "A check with a bug", broken),
    )
    monkeypatch.setattr(doctor, "CHECKS", (*doctor.CHECKS, *added))
    out, error = failing_doctor()
    assert seen == [False]
    assert "!! A check added by another module:\n   - something custom is off" in out
    assert "the check itself failed: RuntimeError: boom" in out
    assert "ok Sessions' pair_count matches their pairs" in out
    assert error.startswith("doctor found 2 problems")


def test_unknown_check_and_bad_threshold_are_refused():
    with pytest.raises(CommandError, match="unknown check nope"):
        run_doctor("--check", "nope")
    with pytest.raises(CommandError, match="--stuck-after-minutes must be at least 1"):
        run_doctor("--stuck-after-minutes", "0")


@pytest.mark.sqlite_only("file-level corruption of an SQLite file")
def test_a_corrupted_file_fails_the_integrity_check(tmp_path):
    db_file = copy_test_database(tmp_path / "finefoundry.db")
    add_pairs_directly(db_file, [(f"question {i} " * 20, f"answer {i} " * 40) for i in range(5000)])
    plain = sqlite3.connect(db_file)
    plain.execute("PRAGMA journal_mode=DELETE")
    page_size, pages = plain.execute("PRAGMA page_size").fetchone()[0], plain.execute("PRAGMA page_count").fetchone()[0]
    plain.close()
    with db_file.open("r+b") as handle:
        handle.seek(page_size * (pages // 2) + 100)
        handle.write(b"\xff" * 200)
    result = manage(db_file, "doctor", "--check", "integrity")
    assert result.returncode == 1
    assert "quick_check" in result.stdout.decode()
    assert "restore a backup" in result.stdout.decode()


def test_near_duplicate_signatures_of_deleted_pairs_are_reported_then_pruned(session_factory):
    from storage.services.near_duplicates import find_near_duplicates

    session = session_factory(pairs=3)
    find_near_duplicates(session_ids=[session.pk])
    with connection.cursor() as cursor:  # as the desktop app deletes: its own SQL, no cascade into our tables
        cursor.execute("DELETE FROM scraped_pairs WHERE id = %s", [session.pairs.order_by("id").first().pk])
    ScrapeSession.objects.filter(pk=session.pk).update(pair_count=2)
    out, _ = failing_doctor("--check", "signatures")
    assert "1 near-duplicate signatures belong to pairs that no longer exist" in out
    assert "(fixed: pruned them and their band rows)" in run_doctor("--fix", "--check", "signatures")
    run_doctor("--check", "signatures")


@pytest.mark.sqlite_only("the FTS5 search index and a plain sqlite3 writer")
def test_an_import_leaves_nothing_to_index_and_a_backlog_is_information(tmp_path):
    from storage.search.health import PENDING_WORTH_FIXING
    from storage.search.index import STATE_TABLE

    db = tmp_path / "finefoundry.db"
    assert manage(db, "migrate", "-v", "0", text=True).returncode == 0
    data = tmp_path / "pairs.jsonl"
    data.write_text("".join(f'{{"input": "question {i}", "output": "answer {i}"}}\n' for i in range(3000)))
    imported = manage(db, "import_pairs", str(data), "--source", "test", text=True)
    assert imported.returncode == 0, imported.stderr

    def mark_and_highest():
        with sqlite3.connect(db) as plain:
            return plain.execute(
                f"SELECT (SELECT indexed_through FROM {STATE_TABLE}), (SELECT max(id) FROM scraped_pairs)"
            ).fetchone()

    # The importing process indexed what it imported before it ended.
    assert mark_and_highest() == (3000, 3000)

    # The desktop app adds a large batch: pending pairs are normal, doctor says so and exits 0.
    with sqlite3.connect(db) as plain:
        plain.executemany(
            "INSERT INTO scraped_pairs (session_id, input_text, output_text) VALUES (1, ?, 'a')",
            ((f"desktop {i}",) for i in range(PENDING_WORTH_FIXING)),
        )
        plain.execute("UPDATE scrape_sessions SET pair_count = pair_count + ? WHERE id = 1", [PENDING_WORTH_FIXING])
    plain.close()
    result = manage(db, "doctor", text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{PENDING_WORTH_FIXING:,} new pairs are not indexed yet" in result.stdout
    assert "No problems found." in result.stdout
    fixed = manage(db, "doctor", "--fix", text=True)
    assert fixed.returncode == 0 and f"indexed {PENDING_WORTH_FIXING:,} pending pairs" in fixed.stdout
    assert mark_and_highest() == (3000 + PENDING_WORTH_FIXING,) * 2
