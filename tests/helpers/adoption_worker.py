"""`manage.py migrate` with a pause at one point of adoption, so a test can SIGKILL it there.

    python tests/helpers/adoption_worker.py POINT

POINT is where it prints {"event": POINT} and then goes on slowly or stops until killed:
  backup        VACUUM INTO the backup has started; it goes on, slowed down, so a kill lands inside it
  first-migration   storage's 0001 is recorded as applied; it waits there (nothing is repaired yet)

Everything else is the real command on the database FINEFOUNDRY_DB names.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "finefoundry.settings")

import django

django.setup()

from django.core.management import execute_from_command_line  # noqa: E402
from django.db import connections  # noqa: E402
from django.db.migrations.executor import MigrationExecutor  # noqa: E402

from storage.services import adoption  # noqa: E402


def report(event: str) -> None:
    # On a line of its own: migrate may have left "  Applying ..." without its newline.
    sys.stdout.write("\n" + json.dumps({"event": event}) + "\n")
    sys.stdout.flush()


def slow_backup(original):
    def backup(using: str = "default"):
        raw = connections[using].connection
        # One short sleep every few SQLite instructions: the copy takes seconds instead of milliseconds.
        raw.set_progress_handler(lambda: time.sleep(0.002), 2)
        report("backup")
        try:
            return original(using)
        finally:
            raw.set_progress_handler(None, 0)

    return backup


def pause_after_first_migration(original):
    def apply_migration(self, state, migration, *args, **kwargs):
        state = original(self, state, migration, *args, **kwargs)
        # Here storage's 0001 is applied, recorded and committed; pair_count is not repaired yet.
        if migration.app_label == "storage" and migration.name.startswith("0001"):
            report("first-migration")
            time.sleep(3600)
        return state

    return apply_migration


point = sys.argv[1]
if point == "backup":
    adoption.backup_database = slow_backup(adoption.backup_database)
elif point == "first-migration":
    MigrationExecutor.apply_migration = pause_after_first_migration(MigrationExecutor.apply_migration)
else:
    raise SystemExit(f"unknown point {point!r}")
execute_from_command_line(["manage.py", "migrate", "--no-input"])
