"""`migrate` and `api.init_db()` as FineFoundry runs them: several processes at once, and killed half way.

A desktop database (tests/fixtures) whose pair_count has drifted, so adoption has something to
repair; real `manage.py migrate` processes, real SIGKILL.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.desktop import load_desktop_fixture
from tests.helpers.processes import PROJECT_ROOT, child_env, manage

pytestmark = pytest.mark.reliability


@pytest.fixture
def drifted_desktop_db(tmp_path) -> Path:
    db = load_desktop_fixture("current", tmp_path / "finefoundry.db")
    connection = sqlite3.connect(db)
    connection.execute("UPDATE scrape_sessions SET pair_count = 0")
    connection.commit()
    connection.close()
    return db


def snapshot(db: Path) -> dict[str, list[tuple]]:
    connection = sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True)
    try:
        return {
            table: connection.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall()
            for table in ("scrape_sessions", "scraped_pairs", "settings", "training_runs", "app_logs")
        }
    finally:
        connection.close()


def assert_adopted(db: Path) -> None:
    connection = sqlite3.connect(db)
    try:
        assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        drift = connection.execute(
            "SELECT id, pair_count FROM scrape_sessions s"
            " WHERE pair_count IS NOT (SELECT COUNT(*) FROM scraped_pairs WHERE session_id = s.id)"
        ).fetchall()
        assert drift == []
        duplicated = connection.execute(
            "SELECT app, name, COUNT(*) FROM django_migrations GROUP BY app, name HAVING COUNT(*) > 1"
        ).fetchall()
        assert duplicated == []
        assert connection.execute("SELECT COUNT(*) FROM storage_adoption").fetchone() == (0,)
    finally:
        connection.close()


def complete_backups(db: Path) -> list[Path]:
    return sorted(path for path in db.parent.glob(f"{db.stem}.backup-*{db.suffix}"))


INIT_DB = "from storage import api; api.init_db(); print('init_db done')"


def test_four_migrates_and_two_init_dbs_at_once_adopt_once(drifted_desktop_db):
    original = snapshot(drifted_desktop_db)
    env = child_env(drifted_desktop_db)
    commands = [[sys.executable, "manage.py", "migrate", "--no-input"]] * 4 + [[sys.executable, "-c", INIT_DB]] * 2
    processes = [
        subprocess.Popen(command, cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for command in commands
    ]
    results = [(*process.communicate(timeout=300), process.returncode) for process in processes]
    for _, err, returncode in results:
        assert returncode == 0, err
        assert err == "", err
    outputs = "".join(out for out, _, _ in results)
    # Whichever process won adopted (init_db says nothing); the others found nothing to do.
    assert outputs.count("Adopting a FineFoundry desktop database") <= 1
    assert outputs.count("pair_count repaired") <= 1
    backups = complete_backups(drifted_desktop_db)
    assert len(backups) == 1
    assert snapshot(backups[0]) == original
    assert_adopted(drifted_desktop_db)


def start_adoption(db: Path, point: str) -> subprocess.Popen:
    process = subprocess.Popen(
        [sys.executable, str(PROJECT_ROOT / "tests" / "helpers" / "adoption_worker.py"), point],
        cwd=PROJECT_ROOT,
        env=child_env(db),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    line = process.stdout.readline()
    while line and not line.startswith("{"):  # migrate's own progress lines
        line = process.stdout.readline()
    if not line:
        process.kill()
        raise AssertionError(f"the worker did not reach {point}: {line}{process.communicate()[1]}")
    assert json.loads(line) == {"event": point}
    return process


def kill(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=30)


@pytest.mark.parametrize("delay", [0.0, 0.3, 1.0])
def test_killed_while_writing_the_backup_leaves_no_short_backup_and_a_rerun_adopts(drifted_desktop_db, delay):
    import time

    original = snapshot(drifted_desktop_db)
    worker = start_adoption(drifted_desktop_db, "backup")
    time.sleep(delay)
    kill(worker)
    assert complete_backups(drifted_desktop_db) == []
    if delay:
        # The kill landed inside the copy: what it left is named incomplete, not backup-*.db.
        assert list(drifted_desktop_db.parent.glob("*.backup-*.db.incomplete-*"))
    assert snapshot(drifted_desktop_db) == original
    result = manage(drifted_desktop_db, "migrate", "--no-input")
    assert result.returncode == 0, result.stderr
    backups = complete_backups(drifted_desktop_db)
    assert len(backups) == 1
    assert snapshot(backups[0]) == original
    assert_adopted(drifted_desktop_db)


def test_killed_after_the_first_migration_a_rerun_still_repairs_pair_count(drifted_desktop_db):
    worker = start_adoption(drifted_desktop_db, "first-migration")
    kill(worker)
    result = manage(drifted_desktop_db, "migrate", "--no-input")
    assert result.returncode == 0, result.stderr
    assert "pair_count repaired on 4 sessions" in result.stdout
    assert_adopted(drifted_desktop_db)


def test_killed_after_the_first_migration_init_db_finishes_the_adoption(drifted_desktop_db):
    worker = start_adoption(drifted_desktop_db, "first-migration")
    kill(worker)
    result = subprocess.run(
        [sys.executable, "-c", INIT_DB],
        cwd=PROJECT_ROOT,
        env=child_env(drifted_desktop_db),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert_adopted(drifted_desktop_db)
