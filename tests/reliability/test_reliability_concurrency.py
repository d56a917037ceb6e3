"""Many threads and processes writing at once: nothing locked out, nothing lost, counts exact."""

from __future__ import annotations

import json
import sqlite3
from collections import defaultdict

import pytest

from tests.helpers.processes import events_of, start_worker

pytestmark = [
    pytest.mark.reliability,
    pytest.mark.sqlite_only("writers on one SQLite file, checked with plain sqlite3"),
]


def test_threads_and_processes_writing_at_once_lose_nothing(migrated_db):
    """8 writer threads in one process and 3 writer processes, while the admin is read and an export streams."""
    workers = [start_worker(migrated_db, "writer", "--threads", "8", "--seconds", "5", "--tag", "big")]
    workers += [
        start_worker(migrated_db, "writer", "--threads", "1", "--seconds", "5", "--tag", f"solo{i}") for i in range(3)
    ]
    readers = [
        start_worker(migrated_db, "admin", "--seconds", "5", "--tag", "admin"),
        start_worker(migrated_db, "export", "--seconds", "5", "--tag", "export"),
    ]
    events = [event for worker in workers for event in events_of(worker)]
    reads = [event for reader in readers for event in events_of(reader)]
    assert [event for event in reads if event["event"] == "error"] == []
    assert any(event["event"] == "page" for event in reads)
    assert any(event["event"] == "exported" for event in reads)

    errors = [event for event in events if event["event"] == "error"]
    assert errors == []
    acknowledged_pairs: dict[int, int] = defaultdict(int)
    for event in events:
        if event["event"] == "pairs":
            acknowledged_pairs[event["session_id"]] += event["added"]
    assert len(acknowledged_pairs) == 11  # 8 + 3 writer threads, each with its own session
    assert sum(1 for event in events if event["event"] == "flushed") == 4
    assert sum(acknowledged_pairs.values()) > 0

    connection = sqlite3.connect(migrated_db)
    assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    for session_id, added in acknowledged_pairs.items():
        stored, actual = connection.execute(
            "SELECT pair_count, (SELECT COUNT(*) FROM scraped_pairs WHERE session_id = s.id) FROM scrape_sessions s"
            " WHERE id = ?",
            (session_id,),
        ).fetchone()
        assert stored == actual == added
    completed = [event["run_id"] for event in events if event["event"] == "run"]
    statuses = dict(connection.execute("SELECT id, status FROM training_runs"))
    assert all(statuses[run_id] == "completed" for run_id in completed)
    last_setting = {event["key"]: event["value"] for event in events if event["event"] == "setting"}
    stored_settings = dict(connection.execute("SELECT key, value FROM settings"))
    assert {key: json.loads(stored_settings[key]) for key in last_setting} == last_setting
    logged = {event["message"] for event in events if event["event"] == "log"}
    stored_logs = {
        message
        for (message,) in connection.execute("SELECT message FROM app_logs WHERE logger = 'finefoundry.reliability'")
    }
    assert stored_logs == logged
    connection.close()
