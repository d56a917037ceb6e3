"""clear_logs: the right records across both desktop timestamp formats, short batches, honest reports."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.utils import timezone

from storage.db import write_batches
from storage.models import AppLog
from storage.services import logs

pytestmark = pytest.mark.django_db

# message: (timestamp as the desktop app or SQLite wrote it, level); newest last.
ROWS = {
    "a": ("2024-12-01T09:00:00.000001", "DEBUG"),  # desktop handler format
    "b": ("2024-12-01 09:30:00", "INFO"),  # SQLite default format
    "c": ("2024-12-01T10:00:00.500000", "WARNING"),
    "d": ("2024-12-01 10:15:00", "DEBUG"),
    "e": ("2024-12-01T11:00:00.000000", "ERROR"),
    "f": ("2024-12-02 08:00:00.250", "INFO"),
}


@pytest.fixture
def mixed_logs():
    # Inserted out of time order, so ids alone would give the wrong answer.
    order = ["e", "a", "f", "c", "b", "d"]
    with connection.cursor() as cursor:
        cursor.executemany(
            "INSERT INTO app_logs (timestamp, level, logger, message) VALUES (%s, %s, %s, %s)",
            [(ROWS[m][0], ROWS[m][1], "finefoundry.test", m) for m in order],
        )


def remaining() -> str:
    return "".join(sorted(AppLog.objects.values_list("message", flat=True)))


def clear(*args) -> str:
    out = io.StringIO()
    call_command("clear_logs", *args, stdout=out)
    return out.getvalue()


@pytest.mark.parametrize(
    ("args", "left"),
    [
        (["--before", "2024-12-01 10:00:00"], "cdef"),
        (["--before", "2024-12-01T10:00:00.6"], "def"),
        (["--before", "2024-12-01T09:30:00"], "bcdef"),
        (["--before", "2024-12-01"], "abcdef"),
        (["--level", "debug"], "bcef"),
        (["--below-level", "WARNING"], "ce"),
        (["--below-level", "ERROR", "--before", "2024-12-01 10:10"], "def"),
        (["--keep-last", "2"], "ef"),
        (["--keep-last", "3"], "def"),
        (["--keep-last", "0"], ""),
        (["--keep-last", "10"], "abcdef"),
        (["--below-level", "WARNING", "--keep-last", "1"], "cef"),
        (["--before", "2024-12-01T11:30", "--keep-last", "3"], "def"),
        (["--all"], ""),
    ],
)
def test_deletes_exactly_the_selected_records_across_formats(mixed_logs, args, left):
    out = clear(*args)
    assert remaining() == left
    assert f"Deleted {6 - len(left)} log records" in out


def test_older_than_days_is_relative_to_now_in_both_formats():
    now = timezone.now().replace(tzinfo=None)
    rows = [
        ((now - dt.timedelta(days=3)).isoformat(), "old-iso"),
        ((now - dt.timedelta(days=3)).strftime("%Y-%m-%d %H:%M:%S"), "old-sql"),
        ((now - dt.timedelta(hours=47)).isoformat(), "new-iso"),
        ((now - dt.timedelta(hours=47)).strftime("%Y-%m-%d %H:%M:%S"), "new-sql"),
    ]
    with connection.cursor() as cursor:
        cursor.executemany("INSERT INTO app_logs (timestamp, level, message) VALUES (%s, 'INFO', %s)", rows)
    clear("--older-than-days", "2")
    assert sorted(AppLog.objects.values_list("message", flat=True)) == ["new-iso", "new-sql"]


def test_dry_run_reports_by_level_and_deletes_nothing(mixed_logs):
    out = clear("--below-level", "ERROR", "--keep-last", "1", "--dry-run")
    assert out.strip() == "Would delete 4 log records (WARNING 1, INFO 1, DEBUG 2). Dry run: nothing deleted."
    assert remaining() == "abcdef"


def test_keep_last_never_leaves_fewer_than_asked_even_when_all_are_old(mixed_logs):
    clear("--older-than-days", "0", "--keep-last", "4")
    assert remaining() == "cdef"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "say which records to delete"),
        (["--all", "--level", "INFO"], "--all deletes every record; it cannot be combined with a filter"),
        (["--level", "INFO", "--below-level", "ERROR"], "not allowed with argument"),
        (["--level", "LOUD"], "invalid choice: 'LOUD'"),
        (["--before", "last tuesday"], "before must be an ISO-8601 date and time"),
        (["--older-than-days", "3", "--before", "2024-01-01"], "give either older_than_days or before, not both"),
        (["--older-than-days", "-1"], "older_than_days must be at least 0"),
        (["--keep-last", "-5"], "keep_last must be at least 0"),
    ],
)
def test_bad_options_change_nothing(mixed_logs, args, message):
    with pytest.raises(CommandError, match=message):
        clear(*args)
    assert remaining() == "abcdef"


def test_deletes_in_many_short_batches(mixed_logs):
    with connection.cursor() as cursor:
        cursor.executemany(
            "INSERT INTO app_logs (timestamp, level, message) VALUES (%s, 'DEBUG', 'bulk')",
            [(f"2024-11-{1 + i % 28:02d}T08:00:00.{i:06d}",) for i in range(1500)],
        )
    batches = []
    deleted = logs.clear_logs_matching(
        logs.logs_to_clear(level="DEBUG"), batch_size=200, on_batch=lambda n, s: batches.append(n)
    )
    assert deleted == 1502 == sum(batches)
    assert len(batches) >= 2
    assert remaining() == "bcef"


def test_batch_size_follows_the_time_a_batch_holds_the_lock():
    target = write_batches.TARGET_SECONDS
    assert write_batches.next_batch_size(1000, target / 2) == 2000
    assert write_batches.next_batch_size(1000, target) == 1000
    assert write_batches.next_batch_size(1000, target * 4) == 250
    assert write_batches.next_batch_size(1000, 0) == 4000  # at most fourfold a step
    assert write_batches.next_batch_size(1000, 0, maximum=logs.MAX_DELETE_BATCH_SIZE) == 4000
    assert write_batches.next_batch_size(10_000, 0, maximum=logs.MAX_DELETE_BATCH_SIZE) == logs.MAX_DELETE_BATCH_SIZE
    assert write_batches.next_batch_size(write_batches.MIN_BATCH, 10) == write_batches.MIN_BATCH


def test_api_signature_still_works(mixed_logs):
    from storage import api

    assert api.clear_logs(level="DEBUG") == 2
    assert remaining() == "bcef"


@pytest.mark.sqlite_only("observes the SQLite file through a second plain sqlite3 connection")
@pytest.mark.django_db(transaction=True)
def test_outside_a_transaction_every_batch_is_committed_on_its_own():
    import sqlite3

    with connection.cursor() as cursor:
        cursor.executemany(
            "INSERT INTO app_logs (timestamp, level, message) VALUES ('2024-01-01 00:00:00', 'DEBUG', %s)",
            [(f"m{i}",) for i in range(3000)],
        )
    observer = sqlite3.connect(connection.settings_dict["NAME"])
    seen = []

    def count_from_another_connection(deleted, seconds):
        seen.append(observer.execute("SELECT count(*) FROM app_logs").fetchone()[0])

    deleted = logs.clear_logs_matching(AppLog.objects.all(), batch_size=500, on_batch=count_from_another_connection)
    observer.close()
    assert deleted == 3000
    assert len(seen) >= 2 and seen == sorted(seen, reverse=True) and seen[-1] == 0
    assert seen[0] < 3000  # the first batch was visible to others before the rest ran
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA wal_autocheckpoint")
        assert cursor.fetchone()[0] == 1000


@pytest.mark.django_db(transaction=True)
def test_vacuum_after_clearing(mixed_logs):
    out = clear("--all", "--vacuum")
    assert "Deleted 6 log records" in out
    if connection.vendor == "sqlite":  # a database we created: incremental auto-vacuum, short steps
        assert "free pages to the filesystem in" in out
    else:
        assert "VACUUM ANALYZE app_logs" in out
    assert remaining() == ""
