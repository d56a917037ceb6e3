"""Django's `migrate`, serialised per database file and refusing a damaged database before it writes.

Everything else is Django's command (same options). See storage.db.migrate_lock and
storage.db.files.
"""

from __future__ import annotations

from pathlib import Path

from django.core.management.commands import migrate
from django.db import connections

from storage.db.files import UnusableDatabase, database_file_problem, vet_database_file
from storage.db.migrate_lock import migrate_lock


class Command(migrate.Command):
    def handle(self, *args, **options):
        connection = connections[options["database"]]
        name = str(connection.settings_dict["NAME"])
        if connection.vendor != "sqlite" or name == ":memory:" or name.startswith("file:"):
            return super().handle(*args, **options)
        database = Path(name)
        # The path checks first: a read-only directory must not get a lock file either.
        problem = database_file_problem(database)
        if problem is not None:
            raise UnusableDatabase(problem)

        def say_waiting() -> None:
            if options["verbosity"]:
                self.stdout.write("Another process is migrating this database; waiting for it to finish.\n")

        with migrate_lock(database, on_wait=say_waiting):
            # Under the lock: quick_check before this process's first write (adoption, migrations).
            vet_database_file(database, thorough=True)
            return super().handle(*args, **options)
