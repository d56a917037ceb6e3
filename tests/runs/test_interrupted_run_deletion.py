"""A delete_training_run killed with SIGKILL half way: doctor --fix puts the artefacts back, or quarantines them."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.processes import PROJECT_ROOT, child_env, kill, manage, wait_for

pytestmark = pytest.mark.reliability


def start_deletion(db: Path, window: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "tests/helpers/run_deletion_worker.py", window],
        cwd=PROJECT_ROOT,
        env=child_env(db),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def leftovers(root: Path) -> list[Path]:
    return [entry for entry in root.iterdir() if entry.name.startswith(".deleting-")]


def test_doctor_moves_the_artefacts_of_a_killed_delete_back_while_the_run_exists(migrated_db):
    root = migrated_db.parent / "training_outputs"
    worker = start_deletion(migrated_db, "moved-aside")
    paused = wait_for(worker, "paused")
    kill(worker)
    run_directory = Path(paused["storage_path"])
    assert not run_directory.exists() and len(leftovers(root)) == 1  # the window the kill hit

    report = manage(migrated_db, "doctor")
    assert report.returncode == 1
    assert f"run {paused['run_id']} (doomed): a killed delete left its artefacts in" in report.stdout
    assert "is missing" not in report.stdout  # not offered to be recreated empty
    fixed = manage(migrated_db, "doctor", "--fix")
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert f"fixed: moved back to {run_directory}" in fixed.stdout
    assert (run_directory / "outputs" / "adapter.safetensors").read_bytes() == b"weights"
    assert leftovers(root) == [] and not (root / ".quarantine").exists()
    connection = sqlite3.connect(migrated_db)
    assert connection.execute("SELECT COUNT(*) FROM training_runs").fetchone() == (1,)
    connection.close()
    assert manage(migrated_db, "doctor").returncode == 0

    # The delete can now be done again, and completes.
    deleted = manage(
        migrated_db, "shell", "-c", f"from storage import api; print(api.delete_training_run({paused['run_id']}))"
    )
    assert deleted.stdout.strip().endswith("True"), deleted.stderr
    assert not run_directory.exists() and leftovers(root) == []


def test_doctor_quarantines_the_artefacts_of_a_killed_delete_whose_row_is_gone(migrated_db):
    root = migrated_db.parent / "training_outputs"
    worker = start_deletion(migrated_db, "row-deleted")
    paused = wait_for(worker, "paused")
    kill(worker)
    (aside,) = leftovers(root)

    report = manage(migrated_db, "doctor")
    assert report.returncode == 1
    assert f"directory {aside} was left by a delete whose run is gone" in report.stdout
    fixed = manage(migrated_db, "doctor", "--fix")
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    quarantined = root / ".quarantine" / aside.name
    assert (quarantined / "outputs" / "adapter.safetensors").read_bytes() == b"weights"  # never deleted
    assert not Path(paused["storage_path"]).exists()  # and no empty run directory recreated
    assert manage(migrated_db, "doctor").returncode == 0


def test_doctor_leaves_a_delete_in_progress_alone(migrated_db):
    root = migrated_db.parent / "training_outputs"
    worker = start_deletion(migrated_db, "moved-aside")
    paused = wait_for(worker, "paused")
    try:
        # The worker holds the moved directory locked: doctor must not move it back under its feet.
        report = manage(migrated_db, "doctor", "--fix", "--check", "interrupted-deletes")
        assert report.returncode == 0, report.stdout
        assert len(leftovers(root)) == 1
    finally:
        kill(worker)
    assert not Path(paused["storage_path"]).exists()
