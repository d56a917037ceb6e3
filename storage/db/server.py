"""When the database is a server (DATABASE_URL), a desktop SQLite file is never adopted: say so."""

from __future__ import annotations

import os
import sys

from django.conf import settings
from django.db import connections


def desktop_file_not_adopted(sender, using="default", stdout=None, verbosity=1, **kwargs) -> None:
    """pre_migrate: with DATABASE_URL and a FINEFOUNDRY_DB file, point at transfer_database instead."""
    if connections[using].vendor == "sqlite" or not os.environ.get("FINEFOUNDRY_DB"):
        return
    path = settings.FINEFOUNDRY_DB
    # Only its existence is checked: this process has no business opening another engine's file.
    if not path.is_file():
        return
    (stdout or sys.stdout).write(
        f"Note: FINEFOUNDRY_DB={path} is not adopted: DATABASE_URL points at a "
        f"{connections[using].vendor} database, and migrate only creates the schema there. To copy that "
        f'file\'s data across, run: python manage.py transfer_database --from {path} --to "$DATABASE_URL"\n'
    )
