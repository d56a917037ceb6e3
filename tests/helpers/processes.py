"""Child processes for tests: `manage.py` against a database file, and the reliability worker."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from django.db import connection


def engine_is_postgresql() -> bool:
    return connection.vendor == "postgresql"


def child_env(db_file: Path | None = None, **extra: str) -> dict[str, str]:
    """The environment for a process a test starts.

    With `db_file`, the child works on that SQLite file of its own (DATABASE_URL removed, so even on
    a PostgreSQL run it is a scratch database); without, it shares this run's test database.
    """
    env = dict(os.environ)
    if db_file is not None:
        env.pop("DATABASE_URL", None)
        env["FINEFOUNDRY_DB"] = str(db_file)
        env["FINEFOUNDRY_STORAGE_ROOT"] = str(Path(db_file).parent / "training_outputs")
    elif not engine_is_postgresql():
        env["FINEFOUNDRY_DB"] = str(connection.settings_dict["NAME"])
    env.setdefault("DJANGO_SETTINGS_MODULE", "finefoundry.settings")
    env.update(extra)
    return env


PROJECT_ROOT = Path(__file__).resolve().parent.parent.parent


def manage(db: Path, *args: str, timeout: float = 120, text: bool = True, **kwargs):
    """Run `python manage.py ...` in a subprocess against the SQLite database file `db` (the one runner)."""
    import subprocess
    import sys

    env = child_env(db, **kwargs.pop("env", {}))
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=text,
        timeout=timeout,
        **kwargs,
    )


WORKER = PROJECT_ROOT / "tests" / "helpers" / "worker.py"


def start_worker(db: Path, role: str, *args: str) -> subprocess.Popen:
    env = child_env(db)
    return subprocess.Popen(
        [sys.executable, str(WORKER), role, *args],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def events_of(process: subprocess.Popen, timeout: float = 120) -> list[dict]:
    out, err = process.communicate(timeout=timeout)
    assert process.returncode == 0, err
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


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
