"""Processes killed with SIGKILL half way through a write leave no partial data behind."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from tests.test_reliability_concurrency import start_worker

pytestmark = [
    pytest.mark.reliability,
    pytest.mark.sqlite_only("killing writers on an SQLite file, checked with PRAGMA integrity_check"),
]


def wait_for(process: subprocess.Popen, event: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            raise AssertionError(f"worker ended before {event!r}: {process.stderr.read()}")
        if line.startswith("{") and json.loads(line)["event"] == event:
            return json.loads(line)
    raise AssertionError(f"no {event!r} within {timeout} s")


def kill(process: subprocess.Popen) -> list[dict]:
    """SIGKILL the worker; return the events it printed. A worker that already finished is fine."""
    process.send_signal(signal.SIGKILL)
    out, err = process.communicate(timeout=30)
    assert process.returncode in (-signal.SIGKILL, 0), err
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def check_database(db: Path) -> sqlite3.Connection:
    connection = sqlite3.connect(db)
    assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    drift = connection.execute(
        "SELECT id FROM scrape_sessions s WHERE pair_count != (SELECT COUNT(*) FROM scraped_pairs WHERE session_id = s.id)"
    ).fetchall()
    assert drift == []
    return connection


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
def test_kill_during_session_delete_leaves_all_or_nothing(migrated_db, delay):
    worker = start_worker(migrated_db, "delete")
    ready = wait_for(worker, "ready", timeout=120)
    time.sleep(delay)
    kill(worker)
    connection = check_database(migrated_db)
    session = connection.execute(
        "SELECT pair_count FROM scrape_sessions WHERE id = ?", (ready["session_id"],)
    ).fetchone()
    (pairs,) = connection.execute(
        "SELECT COUNT(*) FROM scraped_pairs WHERE session_id = ?", (ready["session_id"],)
    ).fetchone()
    if session is None:
        assert pairs == 0
    else:
        assert session == (200_000,) and pairs == 200_000
