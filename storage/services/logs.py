"""Reading and clearing app_logs; rows of both desktop timestamp formats sort and filter alike."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.db import connections, models, transaction
from django.db.models import Count, Q, QuerySet, Subquery
from django.utils import timezone

from storage.db.write_batches import FIRST_BATCH, next_batch_size, sqlite_batch_manners
from storage.exceptions import InvalidInput
from storage.fields import SortableTimestamp
from storage.models import AppLog
from storage.validation import optional_int, parse_timestamp, require_int

# A batch's ids are bound parameters: stay below SQLite's 32,766 per statement.
MAX_DELETE_BATCH_SIZE = 20_000
OLDEST_DATE = dt.datetime.min.replace(tzinfo=dt.UTC)


def level_name(level: Any, *, name: str = "level") -> str:
    if not isinstance(level, str) or level.upper() not in AppLog.Level.values:
        raise InvalidInput(f"{name} must be one of {', '.join(AppLog.Level.values)}, got {level!r}")
    return level.upper()


def filter_logs(*, level: str | None = None, logger: str | None = None) -> QuerySet[AppLog]:
    logs = AppLog.objects.all()
    if level:
        logs = logs.filter(level=level_name(level))
    if logger:
        # A substring match, as in the desktop app: "scrape" finds "finefoundry.helpers.scrape".
        logs = logs.filter(logger__contains=logger)
    return logs


def get_logs(*, level: str | None = None, logger: str | None = None, limit: int = 100, offset: int = 0) -> list[AppLog]:
    """Newest records first (ties broken by id)."""
    require_int(limit, name="limit", minimum=0)
    require_int(offset, name="offset", minimum=0)
    return list(filter_logs(level=level, logger=logger)[offset : offset + limit])


def get_log_count(*, level: str | None = None, logger: str | None = None) -> int:
    return filter_logs(level=level, logger=logger).count()


def cutoff_from(*, older_than_days: int | None, before: Any) -> dt.datetime | None:
    """The moment before which records go, from a number of days or an explicit time."""
    now = timezone.now()
    # More days than lie between year 1 and now cannot be a date (timedelta would overflow).
    days = optional_int(older_than_days, name="older_than_days", minimum=0, maximum=(now - OLDEST_DATE).days)
    moment = parse_timestamp(before, name="before")
    if days is not None and moment is not None:
        raise InvalidInput("give either older_than_days or before, not both")
    if days is not None:
        return now - dt.timedelta(days=days)
    return moment


def levels_below(level: str) -> list[str]:
    """The levels less severe than `level`: DEBUG and INFO below WARNING."""
    values = AppLog.Level.values
    return values[: values.index(level_name(level, name="below_level"))]


def keep_newest(logs: QuerySet[AppLog], *, keep: int) -> QuerySet[AppLog]:
    """Narrow `logs` to all but its `keep` newest records, newest as the admin and get_logs sort them."""
    if keep <= 0:
        return logs
    # Compared as text in SQL on both sides, so both desktop formats order alike and nothing is rounded.
    sort_key = SortableTimestamp("timestamp", output_field=models.TextField())
    newest_first = (sort_key.desc(nulls_last=True), "-id")
    boundary = list(
        logs.annotate(sort_key=sort_key).order_by(*newest_first).values_list("id", "sort_key")[keep - 1 : keep]
    )
    if not boundary:
        return logs.none()
    boundary_id, boundary_key = boundary[0]
    older = logs.annotate(sort_key=sort_key)
    if boundary_key is None:
        return older.filter(sort_key__isnull=True, id__lt=boundary_id)
    key = Subquery(AppLog.objects.filter(pk=boundary_id).order_by().annotate(k=sort_key).values("k"))
    return older.filter(Q(sort_key__lt=key) | Q(sort_key=key, id__lt=boundary_id) | Q(sort_key__isnull=True))


def logs_to_clear(
    *,
    older_than_days: int | None = None,
    before: Any = None,
    level: str | None = None,
    below_level: str | None = None,
    keep_last: int | None = None,
) -> QuerySet[AppLog]:
    """The records clear_logs deletes: older than a cutoff, of one level or below one, but never the newest keep_last.

    keep_last counts records of the chosen levels whatever their age, so `older_than_days=30, keep_last=1000`
    never leaves fewer than 1000 records.
    """
    cutoff = cutoff_from(older_than_days=older_than_days, before=before)
    if level and below_level:
        raise InvalidInput("give either level or below_level, not both")
    keep = optional_int(keep_last, name="keep_last", minimum=0)
    logs = filter_logs(level=level)
    if below_level:
        logs = logs.filter(level__in=levels_below(below_level))
    if keep:
        logs = keep_newest(logs, keep=keep)
    if cutoff is not None:
        logs = logs.filter(timestamp__lt=cutoff)
    return logs


def count_by_level(logs: QuerySet[AppLog]) -> dict[str, int]:
    """How many of `logs` there are of each level, most severe first."""
    counts = dict(
        AppLog.objects.filter(id__in=logs.values("id")).order_by().values_list("level").annotate(n=Count("id"))
    )
    return {level: counts[level] for level in reversed(AppLog.Level.values) if counts.get(level)}


def clear_logs_matching(
    logs: QuerySet[AppLog],
    *,
    batch_size: int = FIRST_BATCH,
    on_batch: Callable[[int, float], None] | None = None,
) -> int:
    """Delete the given records in short transactions, so log writers are never held up for long.

    Each batch of ids is read before its transaction (reading takes no lock), walking up the
    ids so no row is looked at twice. `on_batch(deleted, seconds)` hears about every transaction.
    """
    deleted = 0
    last_id = 0
    with sqlite_batch_manners() as between_batches:
        while True:
            ids = list(logs.filter(id__gt=last_id).order_by("id").values_list("id", flat=True)[:batch_size])
            if not ids:
                return deleted
            last_id = ids[-1]
            started = time.perf_counter()
            with transaction.atomic():
                count, _ = AppLog.objects.filter(id__in=ids).delete()
            seconds = time.perf_counter() - started
            deleted += count
            if on_batch is not None:
                on_batch(count, seconds)
            # A short batch was the last one: no one needs a turn before a batch that will not come.
            more = len(ids) == batch_size
            batch_size = next_batch_size(count, seconds, maximum=MAX_DELETE_BATCH_SIZE)
            between_batches(more=more)


def clear_logs(
    *,
    older_than_days: int | None = None,
    before: Any = None,
    level: str | None = None,
    below_level: str | None = None,
    keep_last: int | None = None,
    dry_run: bool = False,
    on_batch: Callable[[int, float], None] | None = None,
) -> int:
    """Delete the records logs_to_clear selects (all records when given nothing); return how many.

    With dry_run nothing is deleted and the number that would be is returned.
    """
    logs = logs_to_clear(
        older_than_days=older_than_days, before=before, level=level, below_level=below_level, keep_last=keep_last
    )
    if dry_run:
        return logs.count()
    return clear_logs_matching(logs, on_batch=on_batch)


# Pages an incremental_vacuum step starts with; the steps then follow what was measured.
VACUUM_FIRST_STEP_PAGES = 256
MIN_VACUUM_STEP_PAGES, MAX_VACUUM_STEP_PAGES = 16, 16_384
AUTO_VACUUM_NONE, AUTO_VACUUM_FULL, AUTO_VACUUM_INCREMENTAL = 0, 1, 2


@dataclass
class Reclaimed:
    """What reclaim_space did: how (`how`), how many pages went back, and in how many write transactions."""

    how: str  # "incremental", "full", "automatic", "needs-full" (nothing done), "analyze", "unsupported"
    pages: int = 0
    steps: list[float] = field(default_factory=list)  # seconds of each write transaction


def reclaim_space(*, full: bool = False) -> Reclaimed:
    """Give the space freed by deleted rows back to the filesystem, without holding other writers up.

    SQLite: a database this project created has auto_vacuum=INCREMENTAL (storage.db.schema), so the
    free pages go back in short `PRAGMA incremental_vacuum(N)` steps, each its own write transaction
    of about write_batches.TARGET_SECONDS, with the same pause between them as the delete batches. A file
    with auto_vacuum=NONE (a desktop database we adopted) can only shrink by a full VACUUM, which
    rewrites the whole file while every other writer waits (the desktop app may fail meanwhile);
    that happens only with `full`, which also switches the file to INCREMENTAL, so it is needed once.
    PostgreSQL: VACUUM ANALYZE of app_logs (it does not block writers).
    """
    connection = connections["default"]
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE app_logs")
        return Reclaimed("analyze")
    if connection.vendor != "sqlite":
        return Reclaimed("unsupported")
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA auto_vacuum")
        (mode,) = cursor.fetchone()
        cursor.execute("PRAGMA freelist_count")
        (free,) = cursor.fetchone()
    if mode == AUTO_VACUUM_FULL:
        return Reclaimed("automatic")
    if mode == AUTO_VACUUM_NONE:
        if not full:
            return Reclaimed("needs-full", pages=free)
        started = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA auto_vacuum=INCREMENTAL")
            cursor.execute("VACUUM")
        return Reclaimed("full", pages=free, steps=[time.perf_counter() - started])
    return _vacuum_incrementally(connection)


def _vacuum_incrementally(connection) -> Reclaimed:
    done = Reclaimed("incremental")
    pages = VACUUM_FIRST_STEP_PAGES
    connection.ensure_connection()
    with sqlite_batch_manners() as between_steps:
        while True:
            with connection.cursor() as cursor:
                cursor.execute("PRAGMA freelist_count")
                (free,) = cursor.fetchone()
            if not free:
                return done
            started = time.perf_counter()
            # executescript runs the pragma to its end; a cursor's execute() would move one page.
            connection.connection.executescript(f"PRAGMA incremental_vacuum({int(pages)});")
            seconds = time.perf_counter() - started
            done.steps.append(seconds)
            done.pages += min(pages, free)
            more = free > pages
            pages = next_batch_size(pages, seconds, minimum=MIN_VACUUM_STEP_PAGES, maximum=MAX_VACUUM_STEP_PAGES)
            between_steps(more=more)
