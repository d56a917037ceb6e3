"""Logging under pressure: huge bursts lose nothing, memory stays bounded, bad records never stop the writer."""

from __future__ import annotations

import logging
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from storage.db.schema import DESKTOP_TABLES_SQLITE
from storage.dblog.handler import DatabaseLogHandler
from tests.helpers.logs import stored_rows
from tests.helpers.processes import PROJECT_ROOT, child_env

# A process that logs like a tight loop in FineFoundry would: setup_database_logging, then records.
CHILD_PRELUDE = """
import logging, os, sys
from storage import api

handler = api.setup_database_logging(logging.INFO, logger_name="tests.burst")
log = logging.getLogger("tests.burst")
log.propagate = False
"""


def run_child(db: Path, body: str, *, timeout: float = 300) -> str:
    env = child_env(db, DJANGO_SETTINGS_MODULE="finefoundry.settings")
    child = subprocess.run(
        [sys.executable, "-c", CHILD_PRELUDE + body],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert child.returncode == 0, child.stderr
    return child.stdout


def count(db: Path, sql: str = "SELECT COUNT(*) FROM app_logs WHERE logger = 'tests.burst'") -> int:
    connection = sqlite3.connect(db)
    try:
        return connection.execute(sql).fetchone()[0]
    finally:
        connection.close()


@pytest.mark.reliability
def test_a_burst_of_a_million_records_from_a_tight_loop_is_stored_completely(migrated_db):
    run_child(
        migrated_db,
        """
for i in range(1_000_000):
    log.info("record %d", i)
# No flush: what is still queued is written at interpreter exit.
""",
    )
    assert count(migrated_db) == 1_000_000
    distinct = "SELECT COUNT(DISTINCT message) FROM app_logs WHERE logger = 'tests.burst'"
    assert count(migrated_db, distinct) == 1_000_000
    assert count(migrated_db, "SELECT COUNT(*) FROM app_logs WHERE logger = 'finefoundry.logging'") == 0


@pytest.mark.reliability
def test_a_burst_of_large_records_keeps_memory_bounded_in_bytes(migrated_db):
    records, size = 400, 1_000_000
    out = run_child(
        migrated_db,
        f"""
def kilobytes(field):
    status = open("/proc/self/status").read()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith(field + ":")))

before = kilobytes("VmRSS")
filler = "x" * {size}
for i in range({records}):
    log.info("record %d %s", i, filler)  # a new {size:,}-character message each time
assert handler.flush(timeout=300)
print(before, kilobytes("VmHWM"))
""",
    )
    before, peak = (int(kb) * 1024 for kb in out.split())
    assert count(migrated_db) == records
    # 400 MB logged; the queue holds 32 MB of it at most, the writer's batch 4 MB (~60 MB measured).
    assert peak - before < records * size / 4, f"peak RSS grew by {(peak - before) / 1e6:.0f} MB"


@pytest.mark.reliability
def test_a_record_over_sqlites_length_limit_is_stored_truncated_and_later_records_follow(migrated_db):
    run_child(
        migrated_db,
        """
log.info("before")
log.error("huge: %s", "y" * 1_100_000_000)  # SQLite refuses values over 1,000,000,000 bytes
for i in range(2_000):
    log.info("after %d", i)
assert handler.flush(timeout=120), "records after the huge one were not stored"
""",
    )
    rows = stored_rows(migrated_db, logger="tests.burst")
    assert [row["message"] for row in rows[:1]] == ["before"]
    huge = rows[1]["message"]
    assert huge.startswith("huge: yyy")
    assert "[... truncated 1,099,000,006 characters ...]" in huge
    assert len(huge) < 1_100_000
    assert [row["message"] for row in rows[2:]] == [f"after {i}" for i in range(2_000)]


def make_log_db(path: Path, trigger_condition: str) -> Path:
    """app_logs and settings, with a trigger that refuses some records (as a stricter database would)."""
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(DESKTOP_TABLES_SQLITE["app_logs"])
    db.execute(DESKTOP_TABLES_SQLITE["settings"])
    db.execute(
        f"CREATE TRIGGER refuse BEFORE INSERT ON app_logs WHEN {trigger_condition} "
        "BEGIN SELECT RAISE(ABORT, 'refused by trigger'); END"
    )
    db.commit()
    db.close()
    return path


@pytest.fixture
def logger_into():
    attached: list[tuple[logging.Logger, DatabaseLogHandler]] = []

    def make(db: Path, **options) -> tuple[logging.Logger, DatabaseLogHandler]:
        handler = DatabaseLogHandler(database=db, **options)
        logger = logging.getLogger("tests.log_bursts")
        logger.handlers[:] = [handler]
        logger.setLevel(logging.INFO)
        logger.propagate = False
        attached.append((logger, handler))
        return logger, handler

    yield make
    for logger, handler in attached:
        logger.removeHandler(handler)
        handler.close()
        logger.propagate = True


@pytest.mark.parametrize(
    ("condition", "stored_as"),
    [
        ("length(NEW.message) > 50000", "truncated"),  # too long for this database: stored shortened
        ("NEW.message LIKE 'poison%'", "note"),  # refused whatever its length: a note takes its place
    ],
)
def test_a_record_the_database_refuses_never_stops_the_writer(tmp_path, logger_into, capfd, condition, stored_as):
    db = make_log_db(tmp_path / "strict.sqlite3", condition)
    logger, handler = logger_into(db)
    for i in range(3_000):
        if i == 1_234:
            logger.warning("poison %s", "z" * 60_000)
        logger.info("record %d", i)
    assert handler.flush(timeout=60), "the writer stopped at the refused record"
    logger.info("much later")
    assert handler.flush(timeout=60)

    messages = [row["message"] for row in stored_rows(db)]
    assert len(messages) == 3_002
    others = [m for m in messages if not m.startswith(("poison", "a log record could not be stored"))]
    assert others == [f"record {i}" for i in range(3_000)] + ["much later"]
    (refused,) = [m for m in messages if m not in others]
    if stored_as == "truncated":
        assert refused.startswith("poison zzz") and "[... truncated 50,007 characters ...]" in refused
    else:
        assert refused.startswith("a log record could not be stored (StoreRejected('refused by trigger'))")
    assert "refused" in capfd.readouterr().err  # said once on stderr, not per record
