"""Processes killed with SIGKILL half way through a write leave no partial data behind."""

from __future__ import annotations

import time

import pytest

from tests.helpers.processes import check_database, kill, manage, start_worker, wait_for

pytestmark = [
    pytest.mark.reliability,
    pytest.mark.sqlite_only("killing writers on an SQLite file, checked with PRAGMA integrity_check"),
]


@pytest.mark.parametrize("delay", [0.0, 0.15, 0.4])
def test_kill_during_add_scraped_pairs_leaves_whole_batches_only(migrated_db, delay):
    worker = start_worker(migrated_db, "ingest")
    first = wait_for(worker, "pairs")
    time.sleep(delay)
    acknowledged = first["added"] + sum(e["added"] for e in kill(worker) if e["event"] == "pairs")
    connection = check_database(migrated_db)
    (stored,) = connection.execute(
        "SELECT COUNT(*) FROM scraped_pairs WHERE session_id = ?", (first["session_id"],)
    ).fetchone()
    assert stored % 20_000 == 0  # whole batches only: each call is one transaction
    assert stored >= acknowledged  # nothing acknowledged was lost


@pytest.mark.parametrize("delay", [0.0, 0.05, 0.15])
def test_kill_during_session_delete_leaves_it_whole_gone_or_hidden_until_doctor_finishes_it(migrated_db, delay):
    worker = start_worker(migrated_db, "delete")
    ready = wait_for(worker, "ready", timeout=120)
    time.sleep(delay)
    kill(worker)
    connection = check_database(migrated_db)  # pair_count exact, also half-way through the batches
    session = connection.execute(
        "SELECT pair_count FROM scrape_sessions WHERE id = ?", (ready["session_id"],)
    ).fetchone()
    (pairs,) = connection.execute(
        "SELECT COUNT(*) FROM scraped_pairs WHERE session_id = ?", (ready["session_id"],)
    ).fetchone()
    hidden = connection.execute("SELECT state FROM storage_imports_in_progress").fetchall()
    if session is None:
        assert pairs == 0 and hidden == []
    elif not hidden:
        assert session == (200_000,) and pairs == 200_000
    else:
        # Killed between batches: hidden from this app (never visible half-deleted) until finished.
        assert hidden == [("deleting",)]
        assert manage(migrated_db, "doctor", "--fix", "--check", "imports").returncode == 0
        assert check_database(migrated_db).execute(
            "SELECT COUNT(*) FROM scraped_pairs WHERE session_id = ?", (ready["session_id"],)
        ).fetchone() == (0,)
