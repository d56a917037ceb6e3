"""Reading and clearing app_logs; rows of both desktop timestamp formats sort and filter alike."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from storage.exceptions import InvalidInput
from storage.models import AppLog
from storage.services.inputs import optional_int, parse_timestamp, require_int

DELETE_BATCH_SIZE = 2000


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
    days = optional_int(older_than_days, name="older_than_days", minimum=0)
    moment = parse_timestamp(before, name="before")
    if days is not None and moment is not None:
        raise InvalidInput("give either older_than_days or before, not both")
    if days is not None:
        return timezone.now() - dt.timedelta(days=days)
    return moment


def clear_logs_matching(logs: QuerySet[AppLog], *, batch_size: int = DELETE_BATCH_SIZE) -> int:
    """Delete the given records in short transactions, so log writers are never held up for long."""
    deleted = 0
    while True:
        with transaction.atomic():
            ids = list(logs.order_by().values_list("id", flat=True)[:batch_size])
            if not ids:
                return deleted
            count, _ = AppLog.objects.filter(id__in=ids).delete()
        deleted += count


def clear_logs(*, older_than_days: int | None = None, before: Any = None, level: str | None = None) -> int:
    """Delete records older than a cutoff and/or of one level (all records when given nothing)."""
    cutoff = cutoff_from(older_than_days=older_than_days, before=before)
    logs = filter_logs(level=level)
    if cutoff is not None:
        logs = logs.filter(timestamp__lt=cutoff)
    return clear_logs_matching(logs)
