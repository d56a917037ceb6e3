"""Django's SQLite backend with two additions: it vets the file before the process's first connection, and
gives a database it creates incremental auto-vacuum (storage.db.schema.start_new_database)."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from django.db.backends.sqlite3 import base

from storage.db.files import UnusableDatabase, vet_database_file
from storage.db.schema import start_new_database


class DatabaseWrapper(base.DatabaseWrapper):
    def get_new_connection(self, conn_params):
        name = str(conn_params["database"])
        if name == ":memory:" or name.startswith("file:"):
            return super().get_new_connection(conn_params)
        path = Path(name)
        # Through SQLite and os.stat only: this process may already hold connections to the file,
        # and closing a Python descriptor of it would drop their locks.
        vet_database_file(path)
        if not os.path.exists(path) or os.stat(path).st_size == 0:
            start_new_database(path)
        try:
            return super().get_new_connection(conn_params)
        except sqlite3.DatabaseError as exc:
            raise UnusableDatabase(f"the database {path} is damaged or unreadable ({exc})") from exc
