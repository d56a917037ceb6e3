"""Read app_logs straight from an SQLite file, the way a second process would see it."""

from __future__ import annotations

import sqlite3
from pathlib import Path


def stored_rows(db: Path, *, logger: str | None = None) -> list[dict]:
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
