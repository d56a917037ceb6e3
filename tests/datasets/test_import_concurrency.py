"""import_pairs beside other writers, and killed half way: nobody waits long, nothing half-written shows."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers.processes import PROJECT_ROOT, child_env, manage

pytestmark = pytest.mark.reliability

# The desktop app: its own connection kept open, a 5 s busy timeout, one commit per call.
DESKTOP_WRITER = """
import json, sqlite3, sys, time
from pathlib import Path
db, stop = sys.argv[1], Path(sys.argv[2])
connection = sqlite3.connect(db, timeout=5)
session = connection.execute("INSERT INTO scrape_sessions (source) VALUES ('desktop')").lastrowid
connection.commit()
calls, errors, longest = 0, [], 0.0
while not stop.exists():
    started = time.perf_counter()
    try:
        connection.execute(
            "INSERT INTO scraped_pairs (session_id, input_text, output_text) VALUES (?, ?, ?)", (session, "q", "a")
        )
        connection.execute("UPDATE scrape_sessions SET pair_count = pair_count + 1 WHERE id = ?", (session,))
        connection.commit()
        calls += 1
    except sqlite3.OperationalError as exc:
        connection.rollback()
        errors.append(str(exc))
    longest = max(longest, time.perf_counter() - started)
    time.sleep(0.01)
print(json.dumps({"calls": calls, "errors": errors, "longest": longest}))
"""

# FineFoundry's scrapers through storage.api, in a process of their own.
API_WRITER = """
import json, sys, time
from pathlib import Path
from storage import api
stop = Path(sys.argv[1])
session = api.create_scrape_session("reddit", "r/x")
calls, errors, longest = 0, [], 0.0
while not stop.exists():
    started = time.perf_counter()
    try:
        api.add_scraped_pairs(session, [{"input": f"q{calls}", "output": "a"}])
        calls += 1
    except Exception as exc:
        errors.append(repr(exc))
    longest = max(longest, time.perf_counter() - started)
    time.sleep(0.01)
print(json.dumps({"calls": calls, "errors": errors, "longest": longest}))
"""


def env_for(db: Path) -> dict:
    # child_env(db): this SQLite file, never a DATABASE_URL (also on a PostgreSQL run).
    return child_env(db, DJANGO_SETTINGS_MODULE="finefoundry.settings")


def write_jsonl(path: Path, count: int, *, bad_at: int | None = None) -> Path:
    filler = "lorem ipsum dolor sit amet " * 8
    with path.open("w", encoding="utf-8") as handle:
        for i in range(count):
            record = {"input": f"question {i} {filler}", "output": f"answer {i} {filler}"}
            if i == bad_at:
                record = {"input": f"question {i}", "output": ""}
            handle.write(json.dumps(record) + "\n")
    return path


def start(db: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, *args],
        cwd=PROJECT_ROOT,
        env=env_for(db),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def visible(db: Path) -> dict:
    """What this app shows: sessions and pairs through storage.api, in a process of its own."""
    code = (
        "import json; from storage import api;"
        "print(json.dumps({'sessions': [s['id'] for s in api.list_scrape_sessions()],"
        " 'pairs': api.get_total_pair_count()}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=PROJECT_ROOT, env=env_for(db), capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def consistent(db: Path) -> list[tuple[int, int, int]]:
    """integrity_check ok and every pair_count exact; return (session id, pair_count, pairs) per session."""
    connection = sqlite3.connect(db)
    try:
        assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        rows = connection.execute(
            "SELECT s.id, s.pair_count, COUNT(p.id) FROM scrape_sessions s"
            " LEFT JOIN scraped_pairs p ON p.session_id = s.id GROUP BY s.id ORDER BY s.id"
        ).fetchall()
    finally:
        connection.close()
    assert [row for row in rows if row[1] != row[2]] == []
    return rows


def query(db: Path, sql: str, params=()) -> list[tuple]:
    connection = sqlite3.connect(db, timeout=30)
    try:
        return connection.execute(sql, params).fetchall()
    finally:
        connection.close()


def test_writers_beside_a_large_import_never_see_database_is_locked(migrated_db, tmp_path):
    source = write_jsonl(tmp_path / "large.jsonl", 300_000)  # ~150 MB: one transaction held the lock > 5 s
    stop = tmp_path / "stop"
    desktop = start(migrated_db, "-c", DESKTOP_WRITER, str(migrated_db), str(stop))
    scraper = start(migrated_db, "-c", API_WRITER, str(stop))
    time.sleep(3)  # both writing before the import starts
    result = manage(migrated_db, "import_pairs", str(source), timeout=600)
    stop.touch()
    reports = [json.loads(process.communicate(timeout=60)[0]) for process in (desktop, scraper)]
    assert result.returncode == 0, result.stderr
    print(f"longest waits: desktop {reports[0]['longest']:.3f} s, storage.api {reports[1]['longest']:.3f} s")
    assert reports[0]["errors"] == [], "the desktop app's writer (5 s busy timeout) got lock errors"
    assert reports[1]["errors"] == []
    assert all(report["calls"] > 0 for report in reports)
    rows = consistent(migrated_db)
    assert sorted(count for _, count, _ in rows)[-1] == 300_000


def wait_until(predicate, *, timeout: float = 300, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def hidden_pairs(db: Path) -> int:
    rows = query(
        db,
        "SELECT coalesce(sum(s.pair_count), 0) FROM storage_imports_in_progress i"
        " JOIN scrape_sessions s ON s.id = i.session_id",
    )
    return rows[0][0]


@pytest.mark.parametrize("written", [1, 50_000, 150_000])
def test_import_killed_while_writing_shows_nothing_and_is_rolled_back(migrated_db, tmp_path, written):
    source = write_jsonl(tmp_path / "big.jsonl", 200_000)
    importer = start(migrated_db, "manage.py", "import_pairs", str(source))
    wait_until(lambda: hidden_pairs(migrated_db) >= written, what=f"{written} pairs written")
    importer.send_signal(signal.SIGKILL)
    importer.communicate(timeout=30)

    assert visible(migrated_db) == {"sessions": [], "pairs": 0}  # the half-written session is hidden
    consistent(migrated_db)  # and exact at the commit it was killed after
    report = manage(migrated_db, "doctor", "--check", "imports")
    assert report.returncode == 1
    assert f"an import of {source}" in report.stdout and "stopped" in report.stdout
    fixed = manage(migrated_db, "doctor", "--fix", "--check", "imports")
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert "rolled back" in fixed.stdout
    assert consistent(migrated_db) == []
    assert query(migrated_db, "SELECT count(*) FROM storage_imports_in_progress") == [(0,)]
    assert manage(migrated_db, "doctor", "--check", "imports", "--check", "pair-counts").returncode == 0


def test_the_next_import_cleans_up_a_killed_one(migrated_db, tmp_path):
    source = write_jsonl(tmp_path / "big.jsonl", 100_000)
    importer = start(migrated_db, "manage.py", "import_pairs", str(source))
    wait_until(lambda: hidden_pairs(migrated_db) > 0, what="pairs written")
    importer.send_signal(signal.SIGKILL)
    importer.communicate(timeout=30)

    small = write_jsonl(tmp_path / "small.jsonl", 10)
    result = manage(migrated_db, "import_pairs", str(small))
    assert result.returncode == 0, result.stderr
    assert [count for _, count, _ in consistent(migrated_db)] == [10]
    assert manage(migrated_db, "doctor", "--check", "imports").returncode == 0


def append_state(db: Path) -> str | None:
    rows = query(db, "SELECT state FROM storage_imports_in_progress")
    return rows[0][0] if rows else None


@pytest.mark.parametrize("kill_when", ["staging", "moving"])
def test_append_killed_half_way_is_rolled_back_or_completed_never_left_half(migrated_db, tmp_path, kill_when):
    target = write_jsonl(tmp_path / "first.jsonl", 1_000)
    assert manage(migrated_db, "import_pairs", str(target)).returncode == 0
    ((target_id,),) = query(migrated_db, "SELECT id FROM scrape_sessions")
    source = write_jsonl(tmp_path / "more.jsonl", 200_000)
    importer = start(migrated_db, "manage.py", "import_pairs", str(source), "--session", str(target_id))
    if kill_when == "staging":
        wait_until(lambda: hidden_pairs(migrated_db) > 10_000, what="pairs staged")
    else:
        wait_until(lambda: append_state(migrated_db) == "moving", what="the move")
    importer.send_signal(signal.SIGKILL)
    importer.communicate(timeout=30)
    consistent(migrated_db)
    assert visible(migrated_db)["sessions"] == [target_id]  # the staging session never shows

    fixed = manage(migrated_db, "doctor", "--fix", "--check", "imports")
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    expected = 1_000 if kill_when == "staging" else 201_000  # rolled back before the move, completed once in it
    assert consistent(migrated_db) == [(target_id, expected, expected)]
    assert visible(migrated_db) == {"sessions": [target_id], "pairs": expected}


def test_a_bad_record_late_in_a_large_file_writes_nothing(migrated_db, tmp_path):
    source = write_jsonl(tmp_path / "late.jsonl", 100_000, bad_at=99_990)
    result = manage(migrated_db, "import_pairs", str(source))
    assert result.returncode == 1
    assert f"{source}: record 99991 (line 99991)" in result.stderr
    assert query(migrated_db, "SELECT count(*) FROM scrape_sessions") == [(0,)]
    assert query(migrated_db, "SELECT count(*) FROM scraped_pairs") == [(0,)]
    assert query(migrated_db, "SELECT count(*) FROM storage_imports_in_progress") == [(0,)]
