"""Shared by the export, import and bad-input tests: awkward pairs, snapshots, a committed database file."""

from __future__ import annotations

import sqlite3
import subprocess
from pathlib import Path

from storage.models import AppLog, ScrapedPair, ScrapeSession, TrainingRun
from tests.helpers import processes
from tests.helpers.processes import PROJECT_ROOT, child_env

ROOT = PROJECT_ROOT
# So a child process never writes a .django_secret_key into the project.
SECRET_KEY = "tests-only-secret-key"

# Texts that break naive writers: quotes, commas, every kind of line break, escapes, non-ASCII,
# emoji, U+2028, leading and trailing spaces, CSV and JSON syntax inside the text.
AWKWARD_PAIRS = [
    {"input": "What is 2+2?", "output": "4, of course."},
    {"input": 'She said "hi", then left', "output": 'Quotes "inside" and a trailing space '},
    {"input": "line one\nline two\r\nline three\rline four", "output": "tab\tseparated\tvalues"},
    {"input": "  leading spaces", "output": "backslash \\ and slash / and \\n literal"},
    {"input": "ünïcödé Ελληνικά 日本語 العربية", "output": "emoji 🚀🔥 and a line separator \u2028 here"},
    {"input": '[{"input": "json inside"}]', "output": 'input,output\r\n"csv",inside'},
    {"input": "# not a comment", "output": "ends with a newline\n"},
]


def awkward_session(session_factory, *, source: str) -> ScrapeSession:
    """A session holding AWKWARD_PAIRS, added the way scrapers add them."""
    from storage.services import sessions

    session = session_factory(source=source)
    sessions.add_scraped_pairs(session_id=session.pk, pairs=AWKWARD_PAIRS)
    return session


def pairs_of(session_id: int) -> list[tuple[str, str]]:
    return list(
        ScrapedPair.objects.filter(session_id=session_id).order_by("id").values_list("input_text", "output_text")
    )


def database_state() -> tuple:
    """Everything an import or export could change, to compare before and after."""
    return (
        list(ScrapeSession.objects.order_by("id").values_list("id", "source", "name", "pair_count", "metadata")),
        list(ScrapedPair.objects.order_by("id").values_list("id", "session_id", "input_text", "output_text")),
        TrainingRun.objects.count(),
        AppLog.objects.count(),
    )


def files_state(directory: Path) -> dict[str, bytes | None]:
    """Every file under `directory` with its bytes (None for a directory)."""
    return {
        str(path.relative_to(directory)): None if path.is_dir() else path.read_bytes()
        for path in sorted(directory.rglob("*"))
    }


def copy_test_database(target: Path) -> Path:
    """A migrated, empty database file other processes can use: a copy of the test database on SQLite."""
    from django.db import connection

    if connection.vendor != "sqlite":
        # On PostgreSQL the child processes get a migrated SQLite file of their own instead.
        result = manage(target, "migrate", "--no-input", "-v", "0", text=True)
        assert result.returncode == 0, result.stderr
        return target
    source = sqlite3.connect(connection.settings_dict["NAME"])
    try:
        source.execute("VACUUM INTO ?", (str(target),))
    finally:
        source.close()
    return target


def subprocess_env(db_file: Path) -> dict[str, str]:
    return child_env(db_file, DJANGO_SECRET_KEY=SECRET_KEY)


def manage(db_file: Path, *args: str, **kwargs) -> subprocess.CompletedProcess:
    """processes.manage with bytes out (these tests compare exact bytes) and the tests' secret key."""
    kwargs.setdefault("text", False)
    kwargs.setdefault("timeout", 600)  # a 300,000-pair export on a loaded machine
    env = {"DJANGO_SECRET_KEY": SECRET_KEY, **kwargs.pop("env", {})}
    return processes.manage(db_file, *args, env=env, **kwargs)


def add_pairs_directly(db_file: Path, pairs: list[tuple[str, str]], *, source: str = "bench") -> int:
    """Create a session with `pairs` in `db_file` through plain sqlite3 (fast, and committed)."""
    connection = sqlite3.connect(db_file)
    try:
        with connection:
            session_id = connection.execute(
                "INSERT INTO scrape_sessions (source, pair_count) VALUES (?, ?)", (source, len(pairs))
            ).lastrowid
            connection.executemany(
                "INSERT INTO scraped_pairs (session_id, input_text, output_text) VALUES (?, ?, ?)",
                ((session_id, i, o) for i, o in pairs),
            )
    finally:
        connection.close()
    return session_id
