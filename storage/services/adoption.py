"""Take over a desktop `finefoundry.db` in place: back it up first, repair what drifted after.

Adoption survives being killed at any point. The backup is written under a temporary name and
renamed when complete, so a backup's name never holds a partial copy. Before the first migration
touches the file, a row in `storage_adoption` records that adoption is under way; whichever
`migrate` (or `api.init_db()`) runs next finishes it (pair_count repair) and removes the row, in
one transaction. storage.db.migrate_lock keeps two processes from adopting at once.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
from pathlib import Path

from django.db import connections, transaction
from django.db.migrations.recorder import MigrationRecorder
from django.template.defaultfilters import pluralize

from storage.db.schema import DESKTOP_TABLE_NAMES

ADOPTION_TABLE = "storage_adoption"
# Plain SQL valid on SQLite and PostgreSQL; also run by migration 0004 so every database has it.
CREATE_ADOPTION_TABLE = (
    f"CREATE TABLE IF NOT EXISTS {ADOPTION_TABLE} ("
    "id INTEGER PRIMARY KEY CHECK (id = 1), backup_path TEXT, started_at TEXT NOT NULL)"
)
DROP_ADOPTION_TABLE = f"DROP TABLE IF EXISTS {ADOPTION_TABLE}"


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


def adoption_pending(using: str = "default") -> bool:
    """Tell whether an adoption was started (by this process or one that was killed) and not finished."""
    connection = connections[using]
    if ADOPTION_TABLE not in connection.introspection.table_names():
        return False
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT 1 FROM {ADOPTION_TABLE}")
        return cursor.fetchone() is not None


def _sync(path: Path, flags: int = os.O_RDONLY) -> None:
    # The backup and its directory only, never the live database (see storage.db.files).
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def backup_database(using: str = "default") -> Path | None:
    """Copy an SQLite database with VACUUM INTO beside the original; return the copy's path.

    The copy is made under a temporary name (`*.incomplete-<pid>`) and renamed once it is complete
    and on disk, so a killed process leaves at most a file named incomplete, never a short backup.
    """
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
    temporary = target.with_name(f"{target.name}.incomplete-{os.getpid()}")
    with connection.cursor() as cursor:
        cursor.execute("VACUUM INTO %s", [str(temporary)])
    _sync(temporary)
    os.replace(temporary, target)
    with contextlib.suppress(OSError):  # not every platform can open a directory
        _sync(target.parent)
    return target


def backup_before_adoption(sender, using="default", stdout=None, verbosity=1, **kwargs) -> None:
    """pre_migrate: back up a desktop database and record the adoption before the first migration touches it."""
    if adoption_pending(using) or not needs_adoption(using):
        return
    backup = backup_database(using)
    connection = connections[using]
    with transaction.atomic(using=using), connection.cursor() as cursor:
        cursor.execute(CREATE_ADOPTION_TABLE)
        cursor.execute(
            f"INSERT INTO {ADOPTION_TABLE} (id, backup_path, started_at) VALUES (1, %s, %s)",
            [str(backup) if backup else None, dt.datetime.now(dt.UTC).isoformat()],
        )
    if stdout is not None and verbosity and backup is not None:
        stdout.write(f"Adopting a FineFoundry desktop database; backup written to {backup}\n")


def finish_adoption(sender, using="default", stdout=None, verbosity=1, **kwargs) -> None:
    """post_migrate: finish an adoption (this run's or a killed one's): make pair counts exact, say what changed."""
    if not adoption_pending(using):
        return
    from storage.services.pair_counts import repair_pair_counts

    with transaction.atomic(using=using):
        repaired = repair_pair_counts(using=using)
        with connections[using].cursor() as cursor:
            cursor.execute(f"DELETE FROM {ADOPTION_TABLE}")
    if stdout is not None and verbosity:
        stdout.write(f"Adopted the desktop database; pair_count repaired on {repaired} session{pluralize(repaired)}.\n")
