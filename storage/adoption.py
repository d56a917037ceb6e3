"""Take over a desktop `finefoundry.db` in place: back it up first, repair what drifted after."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from django.db import connections
from django.db.migrations.recorder import MigrationRecorder

from storage.schema import DESKTOP_TABLE_NAMES

# Databases (by alias) that this process is adopting in the current `migrate`.
_adopting: dict[str, Path | None] = {}


def needs_adoption(using: str = "default") -> bool:
    """Tell whether the database holds desktop tables that our migrations have never seen."""
    connection = connections[using]
    tables = set(connection.introspection.table_names())
    if not tables & DESKTOP_TABLE_NAMES:
        return False
    recorder = MigrationRecorder(connection)
    if not recorder.has_table():
        return True
    return not recorder.migration_qs.filter(app="storage").exists()


def backup_database(using: str = "default") -> Path | None:
    """Copy an SQLite database with VACUUM INTO beside the original; return the copy's path."""
    connection = connections[using]
    if connection.vendor != "sqlite":
        return None
    source = Path(connection.settings_dict["NAME"])
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
    target = source.with_name(f"{source.stem}.backup-{stamp}{source.suffix or '.db'}")
    counter = 1
    while target.exists():
        target = source.with_name(f"{source.stem}.backup-{stamp}-{counter}{source.suffix or '.db'}")
        counter += 1
    with connection.cursor() as cursor:
        cursor.execute("VACUUM INTO %s", [str(target)])
    return target


def backup_before_adoption(sender, using="default", stdout=None, verbosity=1, **kwargs) -> None:
    """pre_migrate: back up a desktop database before the first migration touches it."""
    if not needs_adoption(using):
        return
    backup = backup_database(using)
    _adopting[using] = backup
    if stdout is not None and verbosity and backup is not None:
        stdout.write(f"Adopting a FineFoundry desktop database; backup written to {backup}\n")


def finish_adoption(sender, using="default", stdout=None, verbosity=1, **kwargs) -> None:
    """post_migrate: after adopting, make pair counts exact and say what changed."""
    if using not in _adopting:
        return
    del _adopting[using]
    from storage.services.scraping import repair_pair_counts

    repaired = repair_pair_counts(using=using)
    if stdout is not None and verbosity:
        stdout.write(f"Adopted the desktop database; pair_count repaired on {repaired} session(s).\n")
