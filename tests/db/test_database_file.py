"""The database file is only touched through SQLite, and a damaged one is refused, never written.

Real processes on real files: a Django process with live connections, `manage.py` commands, a
served admin, and plain sqlite3 in the test process as the other program.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.processes import PROJECT_ROOT, child_env, manage
from tests.helpers.served_admin import Browser, start_server

pytestmark = pytest.mark.reliability

HOLD_A_READ_AND_OPEN_MORE = """
import os, sys, threading
os.environ["DJANGO_SETTINGS_MODULE"] = "finefoundry.settings"
import django; django.setup()
from django.db import connections
from storage import api
from storage.services.dashboard import dashboard_stats
from storage.services.doctor import DoctorContext, run_checks

# A request in progress: its connection is inside a read transaction.
reader = connections["default"]
reader.ensure_connection()
reader.connection.execute("BEGIN")
reader.connection.execute("SELECT COUNT(*) FROM scrape_sessions").fetchall()

def another_request():
    # What else a served process does meanwhile: new connections, the dashboard's file sizes,
    # doctor's read-only integrity check, init_db (migrate), the database log writer.
    dashboard_stats()
    run_checks(DoctorContext(), only=["integrity"])
    api.init_db()
    api.setup_database_logging()
    import logging
    logging.getLogger("finefoundry.test").warning("written by the log writer")
    api.close_all_connections()

thread = threading.Thread(target=another_request)
thread.start()
thread.join()
print("ready", flush=True)
sys.stdin.readline()
reader.connection.execute("COMMIT")
"""


def test_opening_more_connections_keeps_the_locks_of_those_already_open(migrated_db):
    """A reader's lock keeps other programs from taking the file exclusively (here: leaving WAL mode).

    Closing any descriptor of the file drops every POSIX lock the process holds on it, so a
    process that opened the file with Python (to check its header, size or content) left its
    readers unprotected: another program could then rewrite the file under them.
    """
    worker = subprocess.Popen(
        [sys.executable, "-c", HOLD_A_READ_AND_OPEN_MORE],
        cwd=PROJECT_ROOT,
        env=child_env(migrated_db),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert worker.stdout.readline().strip() == "ready", worker.stderr.read()
        other = sqlite3.connect(migrated_db, timeout=0, isolation_level=None)
        with pytest.raises(sqlite3.OperationalError, match="database is locked"):
            other.execute("PRAGMA journal_mode=DELETE")
        other.close()
    finally:
        worker.communicate("go\n", timeout=60)
    assert worker.returncode == 0, worker.stderr
    connection = sqlite3.connect(migrated_db)
    assert connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)


# --- A database damaged past its header ---------------------------------------------------


def populate(db: Path, *, journal_mode: str) -> None:
    connection = sqlite3.connect(db)
    connection.execute("INSERT INTO scrape_sessions (source, pair_count) VALUES ('reddit', 3000)")
    connection.executemany(
        "INSERT INTO scraped_pairs (session_id, input_text, output_text) VALUES (1, ?, ?)",
        [(f"question {i} " * 20, f"answer {i} " * 20) for i in range(3000)],
    )
    connection.commit()
    connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    connection.execute(f"PRAGMA journal_mode={journal_mode}")
    connection.close()


def damage(db: Path) -> None:
    """Overwrite the middle of a b-tree page of scraped_pairs, as a bad disk or a lost lock would."""
    connection = sqlite3.connect(db)
    page_size = connection.execute("PRAGMA page_size").fetchone()[0]
    pages = [
        row[0]
        for row in connection.execute("SELECT pageno FROM dbstat WHERE name = 'scraped_pairs' AND pagetype = 'leaf'")
    ]
    connection.close()
    with db.open("r+b") as handle:
        for page in pages[len(pages) // 2 : len(pages) // 2 + 3]:
            handle.seek((page - 1) * page_size)
            handle.write(b"\x0d\x00\x00\xff\xff" + b"\xa5" * 200)


@pytest.fixture(params=["delete", "wal"])
def damaged_db(request, migrated_db) -> Path:
    """A populated database damaged past its header, as the desktop app leaves it (delete) or as we do (wal)."""
    populate(migrated_db, journal_mode=request.param)
    damage(migrated_db)
    return migrated_db


def one_sentence(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    return lines[0]


def test_migrate_refuses_a_damaged_database_and_leaves_it_as_it_was(damaged_db):
    before = damaged_db.read_bytes()
    result = manage(damaged_db, "migrate", "--no-input")
    assert result.returncode == 1
    assert "is damaged (quick_check:" in one_sentence(result.stderr)
    assert damaged_db.read_bytes() == before
    assert list(damaged_db.parent.glob("*.backup-*")) == []


def test_doctor_reports_a_damaged_database_without_writing_it(damaged_db):
    before = damaged_db.read_bytes()
    result = manage(damaged_db, "doctor")
    assert result.returncode == 1
    assert "quick_check:" in result.stdout
    assert "restore a backup" in result.stdout
    assert "the database is damaged, so it was not opened" in result.stdout
    assert "Traceback" not in result.stderr
    assert damaged_db.read_bytes() == before  # the header too: not switched to WAL


@pytest.mark.parametrize(
    "command",
    [
        ["import_pairs", "PAIRS", "--source", "t"],
        ["export_session", "1", "--format", "jsonl", "-o", "OUT"],
        ["clear_logs", "--all", "--vacuum"],
        ["dedupe_pairs", "1"],
    ],
)
def test_commands_refuse_a_desktop_database_damaged_past_its_header(migrated_db, tmp_path, command):
    populate(migrated_db, journal_mode="delete")
    damage(migrated_db)
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text('{"input": "q", "output": "a"}\n')
    command = [str(pairs) if a == "PAIRS" else str(tmp_path / "out.jsonl") if a == "OUT" else a for a in command]
    before = migrated_db.read_bytes()
    result = manage(migrated_db, *command)
    assert result.returncode == 1
    assert "is damaged (quick_check:" in one_sentence(result.stderr)
    assert migrated_db.read_bytes() == before


ADMIN = {"DJANGO_SUPERUSER_USERNAME": "staff", "DJANGO_SUPERUSER_PASSWORD": "a long pass phrase 42"}


def test_the_served_admin_answers_503_for_a_damaged_desktop_database(migrated_db, tmp_path):
    assert manage(migrated_db, "ensure_admin", env=ADMIN).returncode == 0
    populate(migrated_db, journal_mode="delete")
    damage(migrated_db)
    before = migrated_db.read_bytes()
    server, base = start_server(migrated_db, log=tmp_path / "server.log")
    try:
        browser = Browser(base)
        # Logging in is the first thing that reads the database.
        answers = [browser.login(ADMIN["DJANGO_SUPERUSER_USERNAME"], ADMIN["DJANGO_SUPERUSER_PASSWORD"], check=False)]
    finally:
        server.terminate()
        server.wait(timeout=30)
    for status, page in answers:
        assert status == 503
        assert "is damaged (quick_check:" in page
    assert migrated_db.read_bytes() == before


def test_the_served_admin_answers_503_when_a_page_meets_damage(migrated_db, tmp_path):
    """A database we already serve (WAL) is not re-checked per connection; damage met while reading is a 503."""
    assert manage(migrated_db, "ensure_admin", env=ADMIN).returncode == 0
    populate(migrated_db, journal_mode="wal")
    damage(migrated_db)
    server, base = start_server(migrated_db, log=tmp_path / "server.log")
    try:
        browser = Browser(base)
        browser.login(ADMIN["DJANGO_SUPERUSER_USERNAME"], ADMIN["DJANGO_SUPERUSER_PASSWORD"])
        status, page = browser.request("/admin/storage/scrapedpair/?q=question")
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert status == 503
    assert "is damaged (database disk image is malformed)" in page
