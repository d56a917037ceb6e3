"""Read app_logs the way a second process would see it: straight from an SQLite file, or, when `db`
names this run's PostgreSQL test database, through a connection of its own."""

from __future__ import annotations

import sqlite3
from pathlib import Path


def _postgres_rows(sql: str, params: tuple) -> list[dict]:
    import psycopg
    from psycopg.rows import dict_row

    from tests.conftest import child_database_url

    with psycopg.connect(child_database_url().replace("postgres://", "postgresql://", 1), row_factory=dict_row) as pg:
        return pg.execute(sql.replace("?", "%s"), params).fetchall()


def stored_rows(db: Path, *, logger: str | None = None) -> list[dict]:
    from django.db import connection as django_connection

    if django_connection.vendor == "postgresql" and str(db) == str(django_connection.settings_dict["NAME"]):
        sql, params = "SELECT * FROM app_logs", ()
        if logger is not None:
            sql, params = f"{sql} WHERE logger = ?", (logger,)
        return _postgres_rows(f"{sql} ORDER BY id", params)
    connection = sqlite3.connect(db)
    connection.row_factory = sqlite3.Row
    try:
        sql, params = "SELECT * FROM app_logs", ()
        if logger is not None:
            sql, params = f"{sql} WHERE logger = ?", (logger,)
        return [dict(row) for row in connection.execute(f"{sql} ORDER BY id", params)]
    finally:
        connection.close()


def count_rows(db: Path, *, logger: str | None = None) -> int:
    return len(stored_rows(db, logger=logger))
