"""The numbers on the admin's front page, each from a cheap query (no scan of scraped_pairs)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db import connection
from django.db.models import Count, Sum
from django.db.models.functions import Coalesce

from storage.models import AppLog, ScrapeSession, Setting, TrainingConfig, TrainingRun
from storage.services.run_files import directory_size

RECENT_ERRORS = 5
RECENT_RUNS = 5


@dataclass(frozen=True)
class DashboardStats:
    session_count: int
    # The sum of the sessions' pair_count: instant at a million pairs, and kept exact by the services.
    pair_count: int
    pairs_by_source: list[tuple[str, int]]
    runs_by_status: list[tuple[str, int]]
    run_count: int
    recent_runs: list[TrainingRun]
    config_count: int
    setting_count: int
    recent_errors: list[AppLog]
    database_path: str | None
    database_size: int | None
    wal_size: int | None
    storage_root: str
    storage_root_size: int


def size_on_disk(path: Path) -> int | None:
    # stat() by path opens no descriptor, so it cannot drop the POSIX locks this process's SQLite
    # connections hold on the database or its WAL (see storage.db.files); never open() them.
    try:
        return path.stat().st_size
    except OSError:
        return None


def database_files() -> tuple[str | None, int | None, int | None]:
    """The SQLite file, its size and its write-ahead log's size; all None on other databases."""
    if connection.vendor != "sqlite":
        return None, None, None
    path = Path(connection.settings_dict["NAME"])
    wal = path.with_name(path.name + "-wal")
    return str(path), size_on_disk(path), size_on_disk(wal) or 0


def dashboard_stats() -> DashboardStats:
    """Collect everything the dashboard shows."""
    per_source = (
        ScrapeSession.objects.order_by()
        .values("source")
        .annotate(pairs=Coalesce(Sum("pair_count"), 0), sessions=Count("id"))
        .order_by("-pairs", "source")
    )
    pairs_by_source = [(row["source"], row["pairs"]) for row in per_source]
    status_counts = dict(
        TrainingRun.objects.order_by().values_list("status").annotate(n=Count("id")).values_list("status", "n")
    )
    runs_by_status = [(status, status_counts.pop(status, 0)) for status in TrainingRun.Status.values]
    # Rows with a status the desktop app never wrote still count, under their own name.
    runs_by_status += sorted((status or "unknown", n) for status, n in status_counts.items())
    errors = AppLog.objects.filter(level__in=[AppLog.Level.ERROR, AppLog.Level.CRITICAL]).only(
        "id", "timestamp", "level", "logger", "message"
    )
    root = Path(settings.FINEFOUNDRY_STORAGE_ROOT)
    database_path, database_size, wal_size = database_files()
    return DashboardStats(
        session_count=ScrapeSession.objects.count(),
        pair_count=sum(pairs for _, pairs in pairs_by_source),
        pairs_by_source=pairs_by_source,
        runs_by_status=runs_by_status,
        run_count=sum(n for _, n in runs_by_status),
        recent_runs=list(TrainingRun.objects.only("id", "name", "status", "base_model", "created_at")[:RECENT_RUNS]),
        config_count=TrainingConfig.objects.count(),
        setting_count=Setting.objects.count(),
        recent_errors=list(errors[:RECENT_ERRORS]),
        database_path=database_path,
        database_size=database_size,
        wal_size=wal_size,
        storage_root=str(root),
        storage_root_size=directory_size(root) if root.is_dir() else 0,
    )
