"""The whole stack on one database file at once, as a user runs it, for a minute (or longer).

The admin served by gunicorn as `python3 tasks.py serve` runs it, on loopback (a logged-in staff user reading the dashboard, lists, searches and a
session's page), two processes looping `import_pairs` of a 20,000-pair file (each keeps its last
two sessions and deletes older ones through storage.api), one looping `export_session`,
`clear_logs --vacuum` and `doctor`, and the desktop app's plain sqlite3 writer
(tests/helpers/desktop_writer.py). Afterwards the file is intact, every acknowledged write is there,
every pair_count is exact, no page failed and nobody met "database is locked".

FINEFOUNDRY_TORTURE_SECONDS sets how long the load runs (default 60).
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.helpers.processes import PROJECT_ROOT, child_env, manage
from tests.helpers.served_admin import Browser
from tests.helpers.servers import free_port, start_gunicorn, stop_server

pytestmark = pytest.mark.reliability

SECONDS = float(os.environ.get("FINEFOUNDRY_TORTURE_SECONDS", "60"))
PAIRS_PER_IMPORT = 20_000
ADMIN = {"DJANGO_SUPERUSER_USERNAME": "staff", "DJANGO_SUPERUSER_PASSWORD": "a long pass phrase 42"}
# Every Django process the test starts records its longest write transaction here (see the summary).
TRACING = str(PROJECT_ROOT / "tests" / "helpers" / "write_tracing")
FORBIDDEN = ("database is locked", "malformed", "Traceback", "disk image", "not a database")


@dataclass
class Run:
    """One finished process: what it was, how it ended, what it said."""

    what: str
    returncode: int
    stdout: str
    stderr: str
    started: float
    ended: float


@dataclass
class Journal:
    runs: list[Run] = field(default_factory=list)
    pages: list[tuple[str, int, str]] = field(default_factory=list)
    imported: dict[int, int] = field(default_factory=dict)  # session id -> pairs, acknowledged
    deleted: set[int] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def run(self, db: Path, *args: str, what: str | None = None) -> Run:
        started = time.time()
        result = manage(db, *args, timeout=600, env=traced()) if args[0] != "-c" else python(db, args[1])
        run = Run(what or args[0], result.returncode, result.stdout, result.stderr, started, time.time())
        with self.lock:
            self.runs.append(run)
        return run


def traced() -> dict[str, str]:
    """The environment additions that make a child record its longest write transaction (tests/helpers/write_tracing)."""
    return {
        "PYTHONPATH": os.pathsep.join(filter(None, [TRACING, os.environ.get("PYTHONPATH")])),
        "FINEFOUNDRY_WRITE_TRACE_DIR": os.environ["FINEFOUNDRY_WRITE_TRACE_DIR"],
    }


def longest_write_transactions(trace_dir: Path) -> dict[str, list]:
    """Per kind of process, its longest write transaction in seconds and the statement it began with."""
    longest: dict[str, list] = {}
    for path in trace_dir.glob("*.json"):
        stats = json.loads(path.read_text())
        argv = stats["argv"]
        kind = argv[1] if len(argv) > 1 and argv[0].endswith("manage.py") else Path(argv[0]).name
        if stats["longest_seconds"] > longest.get(kind, [0])[0]:
            longest[kind] = [round(stats["longest_seconds"], 3), stats["longest_first_statement"][:80]]
    return longest


def python(db: Path, code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=PROJECT_ROOT,
        env=child_env(db, **traced()),
        capture_output=True,
        text=True,
        timeout=600,
    )


def imported_session(run: Run) -> int | None:
    match = re.search(r"into new session (\d+)\.", run.stdout)
    return int(match.group(1)) if run.returncode == 0 and match else None


def importer(db: Path, pairs: Path, tag: str, deadline: float, journal: Journal) -> None:
    kept: list[int] = []
    n = 0
    while time.monotonic() < deadline:
        n += 1
        run = journal.run(db, "import_pairs", str(pairs), "--source", "torture", "--name", f"{tag} {n}")
        session_id = imported_session(run)
        if session_id is None:
            continue
        with journal.lock:
            journal.imported[session_id] = PAIRS_PER_IMPORT
        kept.append(session_id)
        if len(kept) > 2:
            # Keep the file from growing without end (VACUUM rewrites all of it): delete the oldest.
            old = kept.pop(0)
            run = journal.run(
                db, "-c", f"from storage import api; print(api.delete_scrape_session({old}))", what="delete"
            )
            if run.returncode == 0 and run.stdout.strip() == "True":
                with journal.lock:
                    journal.deleted.add(old)


def housekeeper(db: Path, session_id: int, out: Path, deadline: float, journal: Journal) -> None:
    while time.monotonic() < deadline:
        journal.run(db, "export_session", str(session_id), "--format", "jsonl", "-o", str(out), "--force")
        journal.run(db, "clear_logs", "--level", "DEBUG", "--vacuum")
        journal.run(db, "doctor")


def reader(base: str, session_id: int, deadline: float, journal: Journal) -> None:
    browser = Browser(base)
    browser.login(ADMIN["DJANGO_SUPERUSER_USERNAME"], ADMIN["DJANGO_SUPERUSER_PASSWORD"])
    pages = [
        "/admin/",
        "/admin/storage/scrapesession/",
        f"/admin/storage/scrapesession/{session_id}/change/",
        "/admin/storage/scrapedpair/?q=torture+answer+1234",
        "/admin/storage/scrapedpair/?q=desktop",
        "/admin/storage/applog/",
        "/admin/storage/trainingrun/",
    ]
    n = 0
    while time.monotonic() < deadline:
        path = pages[n % len(pages)]
        n += 1
        status, body = browser.request(path)
        with journal.lock:
            journal.pages.append((path, status, body[:3000] if status != 200 else ""))


def write_pairs(path: Path) -> None:
    with path.open("w", encoding="utf-8") as out:
        for i in range(PAIRS_PER_IMPORT):
            out.write(json.dumps({"input": f"torture question {i}", "output": f"torture answer {i}"}) + "\n")


def test_the_real_stack_on_one_file_loses_and_corrupts_nothing(migrated_db, tmp_path, monkeypatch):
    db = migrated_db
    trace_dir = tmp_path / "write_trace"
    trace_dir.mkdir()
    monkeypatch.setenv("FINEFOUNDRY_WRITE_TRACE_DIR", str(trace_dir))
    assert manage(db, "ensure_admin", env=ADMIN).returncode == 0
    pairs = tmp_path / "pairs.jsonl"
    write_pairs(pairs)
    journal = Journal()
    first = imported_session(journal.run(db, "import_pairs", str(pairs), "--source", "torture", "--name", "kept"))
    assert first is not None, journal.runs[-1].stderr
    journal.imported[first] = PAIRS_PER_IMPORT

    port = free_port()
    server = start_gunicorn(child_env(db, **traced()), port, log=tmp_path / "server.log")
    base = f"http://127.0.0.1:{port}"
    desktop = subprocess.Popen(
        [sys.executable, str(PROJECT_ROOT / "tests" / "helpers" / "desktop_writer.py"), str(db), str(SECONDS)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + SECONDS
    threads = [
        threading.Thread(target=importer, args=(db, pairs, "import-a", deadline, journal)),
        threading.Thread(target=importer, args=(db, pairs, "import-b", deadline, journal)),
        threading.Thread(target=housekeeper, args=(db, first, tmp_path / "export.jsonl", deadline, journal)),
        threading.Thread(target=reader, args=(base, first, deadline, journal)),
    ]
    try:
        for thread in threads:
            thread.start()
        desktop_out, desktop_err = desktop.communicate(timeout=SECONDS + 300)
        for thread in threads:
            thread.join(timeout=SECONDS + 600)
    finally:
        stop_server(server)
    server_log = (tmp_path / "server.log").read_text()

    # Nobody met a lock, a damaged page or a crash, and every page answered.
    problems = [
        f"{run.what} (exit {run.returncode}): {run.stderr[-1500:]}"
        for run in journal.runs
        if any(sign in run.stderr + run.stdout for sign in FORBIDDEN)
        or (run.returncode != 0 and run.what not in ("doctor",))
    ]
    doctor_damage = [run.stdout for run in journal.runs if run.what == "doctor" and "quick_check" in run.stdout]
    failed_pages = [(path, status, body) for path, status, body in journal.pages if status != 200]
    desktop_events = [json.loads(line) for line in desktop_out.splitlines()]
    desktop_errors = [event for event in desktop_events if event["event"] == "error"]
    server_problems = [line for line in server_log.splitlines() if any(sign in line for sign in FORBIDDEN)]
    summary = {
        "seconds": SECONDS,
        "processes": len(journal.runs),
        "imports": len(journal.imported),
        "deleted": len(journal.deleted),
        "pages": len(journal.pages),
        "desktop_writes": len(desktop_events) - len(desktop_errors),
        "desktop_longest_call_seconds": round(max((event["seconds"] for event in desktop_events), default=0), 3),
        "longest_write_transaction_seconds": longest_write_transactions(trace_dir),
        "load_average": os.getloadavg(),
    }
    print(json.dumps(summary))
    # Every kind of failure is collected first, so one long run reports all of them at once.
    failures: dict[str, object] = {}
    if desktop.returncode != 0:
        failures["desktop writer crashed"] = desktop_err
    failures["processes that failed or met a lock, damage or a traceback"] = problems
    failures["doctor found damage"] = doctor_damage
    failures["pages that did not answer 200"] = failed_pages
    # A lock error names the processes running during the 5 s the desktop waited (the likely holders).
    failures["desktop writer errors, with the processes running while it waited"] = [
        (
            event,
            sorted(
                f"{run.what} ran {run.ended - run.started:.1f} s"
                for run in journal.runs
                if run.started <= event["at"] and run.ended >= event["at"] - 5
            ),
        )
        for event in desktop_errors
    ]
    failures["server log lines"] = server_problems
    if not (journal.pages and len(journal.imported) > 1 and desktop_events):
        failures["the load did not run"] = summary

    # The file is intact, every acknowledged write is in it, every count exact.
    connection = sqlite3.connect(db)
    failures["integrity_check"] = [row for row in connection.execute("PRAGMA integrity_check") if row != ("ok",)]
    counts = dict(
        connection.execute(
            "SELECT s.id, (SELECT COUNT(*) FROM scraped_pairs WHERE session_id = s.id) FROM scrape_sessions s"
        )
    )
    failures["pair_count drift"] = connection.execute(
        "SELECT id, pair_count FROM scrape_sessions s"
        " WHERE pair_count IS NOT (SELECT COUNT(*) FROM scraped_pairs WHERE session_id = s.id)"
    ).fetchall()
    failures["imports lost or deletes undone"] = [
        (session_id, counts.get(session_id))
        for session_id, expected in journal.imported.items()
        if counts.get(session_id) != (None if session_id in journal.deleted else expected)
    ]
    desktop_pairs: dict[int, int] = defaultdict(int)
    for event in desktop_events:
        if event["event"] == "session":
            desktop_pairs[event["id"]] += 0
        elif event["event"] == "pairs":
            desktop_pairs[event["session_id"]] += event["added"]
    failures["desktop sessions or pairs lost"] = [
        (session_id, added, counts.get(session_id))
        for session_id, added in desktop_pairs.items()
        if counts.get(session_id) != added
    ]
    logs = {row[0] for row in connection.execute("SELECT id FROM app_logs WHERE logger = 'desktop'")}
    failures["desktop log records lost"] = sorted(
        {event["id"] for event in desktop_events if event["event"] == "log"} - logs
    )
    runs = {row[0] for row in connection.execute("SELECT id FROM training_runs")}
    failures["desktop runs lost"] = sorted({event["id"] for event in desktop_events if event["event"] == "run"} - runs)
    connection.close()
    failed = {what: found for what, found in failures.items() if found}
    print(json.dumps(failed, indent=1, default=str))
    assert failed == {}
