"""Django's SQLite backend with one addition: it vets the file before opening it."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from django.db.backends.sqlite3 import base

from storage.database_file import UnusableDatabase, database_file_problem


class DatabaseWrapper(base.DatabaseWrapper):
    def get_new_connection(self, conn_params):
        name = str(conn_params["database"])
        if name == ":memory:" or name.startswith("file:"):
            return super().get_new_connection(conn_params)
        path = Path(name)
        problem = database_file_problem(path)
        if problem is not None:
            raise UnusableDatabase(problem)
        try:
            return super().get_new_connection(conn_params)
        except sqlite3.DatabaseError as exc:
            raise UnusableDatabase(f"the database {path} is damaged or unreadable ({exc})") from exc
