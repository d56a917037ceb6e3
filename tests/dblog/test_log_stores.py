"""The log writer's SQLite store: both insert paths store the same rows; failures are told apart."""

from __future__ import annotations

import logging
import sqlite3
import time

import pytest

from storage.db.schema import DESKTOP_TABLES_SQLITE
from storage.dblog.handler import DatabaseLogHandler
from storage.dblog.stores import SQLiteLogStore, StoreNotReady, StoreUnavailable, utc_text
from tests.helpers.logs import stored_rows


def make_log_db(path):
    db = sqlite3.connect(path)
    db.execute(DESKTOP_TABLES_SQLITE["app_logs"])
    db.commit()
    db.close()
    return path


ROWS = [
    (1764151234.999999, "INFO", "finefoundry.scrape", 'ünïcödé 😀 "quoted" \\ back\nslash', "scrape", "run", 12, None),
    (1764151235.0, "ERROR", "finefoundry.train", "failed", None, None, None, "Traceback (most recent call last):\n"),
    (time.time(), "WARNING", "x", "", "m", "f", 0, None),
]


@pytest.mark.parametrize("whole_batch", [True, False], ids=["one JSON statement", "executemany"])
def test_both_insert_paths_store_rows_exactly(tmp_path, whole_batch):
    db = make_log_db(tmp_path / "logs.sqlite3")
    store = SQLiteLogStore(db, whole_batch=whole_batch)
    store.write(ROWS)
    store.close()
    columns = ("timestamp", "level", "logger", "message", "module", "func_name", "line_no", "exc_info")
    stored = [tuple(row[column] for column in columns) for row in stored_rows(db)]
    assert stored == [(utc_text(created), *rest) for created, *rest in ROWS]
    assert stored[0][0] == "2025-11-26 10:00:34.999999"


def test_a_missing_file_is_not_ready_and_is_not_created(tmp_path):
    store = SQLiteLogStore(tmp_path / "nope.sqlite3")
    with pytest.raises(StoreNotReady):
        store.write(ROWS)
    assert not (tmp_path / "nope.sqlite3").exists()


def test_a_missing_table_is_not_ready(tmp_path):
    sqlite3.connect(tmp_path / "empty.sqlite3").close()
    with pytest.raises(StoreNotReady, match="no such table"):
        SQLiteLogStore(tmp_path / "empty.sqlite3").write(ROWS)


def test_a_locked_database_is_unavailable_and_nothing_is_half_written(tmp_path):
    db = make_log_db(tmp_path / "locked.sqlite3")
    store = SQLiteLogStore(db, timeout=0.1)
    store.write(ROWS[:1])
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(StoreUnavailable, match="locked"):
            store.write(ROWS)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    store.write(ROWS)
    store.close()
    assert len(stored_rows(db)) == 1 + len(ROWS)


def test_undecodable_text_is_stored_escaped_without_losing_the_batch(tmp_path):
    db = make_log_db(tmp_path / "surrogates.sqlite3")
    handler = DatabaseLogHandler(database=db)
    logger = logging.getLogger("tests.log_stores.surrogates")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        logger.info("before")
        logger.info("file name %s", "caf\udce9.txt")  # os.fsdecode() of a Latin-1 name on a UTF-8 system
        logger.info("after")
        assert handler.flush(timeout=30)
    finally:
        logger.removeHandler(handler)
        handler.close()
    assert [row["message"] for row in stored_rows(db)] == ["before", "file name caf\\udce9.txt", "after"]
