"""The database log handler: what lands in app_logs, and what never happens to the caller."""

from __future__ import annotations

import datetime as dt
import io
import logging
import re
import sqlite3
import sys
import threading
from pathlib import Path

import pytest
from django.db import connection, transaction

from storage import api
from storage.db.schema import DESKTOP_TABLES_SQLITE
from storage.dblog.handler import DatabaseLogHandler
from tests.helpers.logs import count_rows, stored_rows

LOGGER = "tests.log_handler"


@pytest.fixture
def attach():
    """Attach a fresh DatabaseLogHandler to a test logger (outside the `finefoundry` tree)."""
    attached: list[tuple[logging.Logger, DatabaseLogHandler]] = []

    def make(name: str = LOGGER, **options) -> tuple[logging.Logger, DatabaseLogHandler]:
        handler = DatabaseLogHandler(**options)
        logger = logging.getLogger(name)
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
        logger.propagate = False
        attached.append((logger, handler))
        return logger, handler

    yield make
    for logger, handler in attached:
        logger.removeHandler(handler)
        handler.close()
        logger.setLevel(logging.NOTSET)
        logger.propagate = True


def django_db_file() -> Path:
    return Path(connection.settings_dict["NAME"])


def make_log_db(path: Path) -> Path:
    """An SQLite file with the desktop app's app_logs and settings tables, in WAL mode."""
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(DESKTOP_TABLES_SQLITE["app_logs"])
    db.execute(DESKTOP_TABLES_SQLITE["settings"])
    db.commit()
    db.close()
    return path


@pytest.mark.sqlite_only("asserts the desktop's text timestamp format in the SQLite file")
@pytest.mark.django_db(transaction=True)
def test_row_holds_what_app_logs_holds(attach):
    logger, handler = attach()
    before = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    logger.warning("scraped %d pairs from %s", 25, "reddit")
    try:
        raise ValueError("bad page")
    except ValueError:
        logger.exception("scrape failed")
    assert handler.flush(timeout=30)

    warning, error = stored_rows(django_db_file(), logger=LOGGER)
    assert warning["level"] == "WARNING"
    assert warning["logger"] == LOGGER
    assert warning["message"] == "scraped 25 pairs from reddit"
    assert warning["module"] == "test_log_handler"
    assert warning["func_name"] == "test_row_holds_what_app_logs_holds"
    assert isinstance(warning["line_no"], int)
    assert warning["exc_info"] is None
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}", warning["timestamp"])
    stamp = dt.datetime.fromisoformat(warning["timestamp"])
    assert before - dt.timedelta(seconds=1) <= stamp <= dt.datetime.now(dt.UTC).replace(tzinfo=None)
    assert error["level"] == "ERROR"
    assert error["exc_info"].startswith("Traceback (most recent call last):")
    assert error["exc_info"].rstrip().endswith("ValueError: bad page")


@pytest.mark.django_db(transaction=True)
def test_bad_format_arguments_neither_raise_nor_lose_the_record(attach, capfd):
    logger, handler = attach()
    logger.info("%d pairs", "many")
    assert handler.flush(timeout=30)
    (row,) = stored_rows(django_db_file(), logger=LOGGER)
    assert "'%d pairs'" in row["message"]
    assert "could not be formatted" in row["message"]
    assert capfd.readouterr().err == ""


@pytest.mark.django_db(transaction=True)
def test_record_logged_in_a_transaction_that_rolls_back_is_kept(attach):
    logger, handler = attach()
    with pytest.raises(RuntimeError), transaction.atomic():
        api.set_setting("ui.theme", "dark")
        logger.error("about to fail")
        raise RuntimeError("rollback")
    assert handler.flush(timeout=30)
    assert api.get_setting("ui.theme") is None
    assert [row["message"] for row in stored_rows(django_db_file(), logger=LOGGER)] == ["about to fail"]


@pytest.mark.sqlite_only("the desktop's two text timestamp formats exist only in SQLite files")
@pytest.mark.django_db(transaction=True)
def test_ordering_and_date_filters_mix_desktop_rows_with_ours(attach):
    logger, handler = attach()
    logger.info("ours")
    assert handler.flush(timeout=30)
    (ours,) = stored_rows(django_db_file(), logger=LOGGER)
    stamp = dt.datetime.fromisoformat(ours["timestamp"])
    later_same_day = (stamp + dt.timedelta(seconds=1)).isoformat()  # desktop handler: 'T' separator
    earlier = (stamp - dt.timedelta(seconds=1)).strftime("%Y-%m-%d %H:%M:%S")  # SQL default format
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO app_logs (timestamp, level, logger, message) VALUES (%s, 'INFO', %s, 'desktop later'),"
            " (%s, 'INFO', %s, 'desktop earlier')",
            [later_same_day, LOGGER, earlier, LOGGER],
        )
    assert [log["message"] for log in api.get_logs(logger=LOGGER)] == ["desktop later", "ours", "desktop earlier"]
    assert api.clear_logs(before=stamp - dt.timedelta(microseconds=1)) == 1
    assert [log["message"] for log in api.get_logs(logger=LOGGER)] == ["desktop later", "ours"]


@pytest.mark.parametrize(
    "store",
    [pytest.param("sqlite", marks=pytest.mark.sqlite_only("the SQLite log store writes the file itself")), "django"],
)
@pytest.mark.django_db(transaction=True)
def test_debug_with_root_logger_neither_recurses_nor_stores_query_logs(attach, settings, store):
    settings.DEBUG = True
    root = logging.getLogger()
    old_level = root.level
    handler = DatabaseLogHandler(store=store)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        for round_ in range(3):
            api.set_setting("ui.theme", f"theme {round_}")  # ORM queries: django.db.backends DEBUG records
            logging.getLogger(LOGGER).info("round %d", round_)
            assert handler.flush(timeout=30)
        first = count_rows(django_db_file())
        assert handler.flush(timeout=30)
        assert count_rows(django_db_file()) == first  # the writer's own work added nothing
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
        handler.close()
    rows = stored_rows(django_db_file())
    assert not [row for row in rows if row["logger"].startswith("django.db.backends")]
    assert [row["message"] for row in rows if row["logger"] == LOGGER] == ["round 0", "round 1", "round 2"]


@pytest.mark.parametrize("fresh", ["no database file", "no app_logs table"])
def test_before_the_table_exists_records_wait_quietly_then_are_written(attach, tmp_path, capfd, caplog, fresh):
    db = tmp_path / "fresh.sqlite3"
    if fresh == "no app_logs table":
        sqlite3.connect(db).close()
    logger, handler = attach(database=db)
    for i in range(30):
        logger.info("early %d", i)
    try:
        raise KeyError("x")
    except KeyError:
        logger.exception("early failure")
    assert handler.flush(timeout=0.5) is False  # nothing to write to yet

    captured = capfd.readouterr()
    assert captured.err == ""
    assert captured.out == ""
    assert not [r for r in caplog.records if r.name.startswith("finefoundry")]

    make_log_db(db)  # what migrate does
    assert handler.flush(timeout=30)
    messages = [row["message"] for row in stored_rows(db)]
    assert messages == [f"early {i}" for i in range(30)] + ["early failure"]
    assert capfd.readouterr().err == ""


@pytest.mark.parametrize("fresh", ["no database file", "no app_logs table"])
def test_records_beyond_the_queue_while_the_table_is_missing_are_counted(attach, tmp_path, capfd, fresh):
    db = tmp_path / "fresh.sqlite3"
    if fresh == "no app_logs table":
        sqlite3.connect(db).close()
    logger, handler = attach(database=db, queue_size=10, batch_size=50)
    for i in range(25):
        logger.info("early %d", i)
    assert handler.flush(timeout=0.2) is False
    make_log_db(db)
    assert handler.flush(timeout=30)

    rows = stored_rows(db)
    kept = [row for row in rows if row["logger"] == LOGGER]
    (report,) = [row for row in rows if row["logger"] == "finefoundry.logging"]
    dropped = int(re.match(r"dropped (\d+) log records", report["message"]).group(1))
    assert report["level"] == "WARNING"
    assert dropped >= 5  # at most a full queue plus the batch the writer holds are kept
    assert len(kept) + dropped == 25
    assert [row["message"] for row in kept] == [f"early {i}" for i in range(len(kept))]
    assert capfd.readouterr().err == ""


def test_overload_never_blocks_the_caller_and_reports_drops_in_one_row(attach, tmp_path):
    db = make_log_db(tmp_path / "busy.sqlite3")
    logger, handler = attach(database=db, queue_size=20, batch_size=10, timeout=0.2)
    locker = sqlite3.connect(db, isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")  # the writer cannot write until we let go
    try:
        caller = threading.Thread(target=lambda: [logger.info("burst %d", i) for i in range(500)])
        caller.start()
        caller.join(timeout=120)
        assert not caller.is_alive(), "logging blocked while the database was locked"
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    assert handler.flush(timeout=30)

    rows = stored_rows(db)
    kept = [row for row in rows if row["logger"] == LOGGER]
    reports = [row for row in rows if row["logger"] == "finefoundry.logging"]
    assert len(reports) == 1
    dropped = int(re.match(r"dropped (\d+) log records", reports[0]["message"]).group(1))
    assert dropped > 0
    assert len(kept) + dropped == 500
    assert reports[0]["id"] > max(row["id"] for row in kept)


@pytest.mark.django_db(transaction=True)
def test_eight_threads_lose_nothing(attach):
    logger, handler = attach()

    def work(thread: int) -> None:
        for i in range(250):
            logger.info("thread %d record %d", thread, i)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert handler.flush(timeout=60)
    messages = {row["message"] for row in stored_rows(django_db_file(), logger=LOGGER)}
    assert len(messages) == 2000
    assert count_rows(django_db_file(), logger="finefoundry.logging") == 0


def test_close_writes_what_is_queued(tmp_path):
    db = make_log_db(tmp_path / "close.sqlite3")
    handler = DatabaseLogHandler(database=db)
    logger = logging.getLogger(f"{LOGGER}.close")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        for i in range(100):
            logger.info("record %d", i)
    finally:
        logger.removeHandler(handler)
        handler.close()
    assert count_rows(db) == 100


@pytest.mark.django_db(transaction=True)
def test_settings_store_finefoundry_records_and_server_errors_and_keep_the_console():
    finefoundry = logging.getLogger("finefoundry")
    console = next(h for h in finefoundry.handlers if type(h) is logging.StreamHandler)
    database = next(h for h in finefoundry.handlers if isinstance(h, DatabaseLogHandler))
    old_stream = console.setStream(io.StringIO())
    try:
        logging.getLogger("finefoundry.scraping").warning("rate limited by %s", "reddit")
        printed = console.stream.getvalue()
    finally:
        console.setStream(old_stream)
    request_logger = logging.getLogger("django.request")
    request_logger.warning("Not Found: /favicon.ico")
    try:
        raise ZeroDivisionError("in a view")
    except ZeroDivisionError:
        request_logger.error("Internal Server Error: /admin/", exc_info=True)
    assert database.flush(timeout=30)

    assert "WARNING finefoundry.scraping: rate limited by reddit" in printed
    rows = stored_rows(django_db_file())
    assert [(row["logger"], row["message"]) for row in rows] == [
        ("finefoundry.scraping", "rate limited by reddit"),
        ("django.request", "Internal Server Error: /admin/"),
    ]
    assert "ZeroDivisionError: in a view" in rows[1]["exc_info"]


@pytest.mark.django_db(transaction=True)
def test_setup_database_logging_attaches_once_and_is_the_desktop_api(tmp_path):
    logger_name = f"{LOGGER}.api"
    handler = api.setup_database_logging(logging.INFO, logger_name=logger_name)
    try:
        assert isinstance(handler, api.DatabaseHandler)
        assert api.setup_database_logging(logging.WARNING, logger_name=logger_name) is handler
        logger = logging.getLogger(logger_name)
        logger.propagate = False
        logger.warning("kept")
        logger.info("below the level")
        assert handler.flush(timeout=30)
    finally:
        logging.getLogger(logger_name).removeHandler(handler)
        handler.close()
    assert [log["message"] for log in api.get_logs(logger=logger_name)] == ["kept"]
    assert api.get_log_count() == 1


def test_bad_option_is_refused():
    with pytest.raises(ValueError, match="store must be one of"):
        DatabaseLogHandler(store="redis")


def test_unprintable_message_neither_raises_nor_prints(attach, tmp_path, capfd):
    logger, handler = attach(database=make_log_db(tmp_path / "odd.sqlite3"))

    class Unprintable:
        def __str__(self):
            raise RuntimeError("no str")

    logger.info(Unprintable())
    logger.info("after")
    assert handler.flush(timeout=30)
    assert [row["message"] for row in stored_rows(tmp_path / "odd.sqlite3")][-1] == "after"
    assert "Traceback" not in capfd.readouterr().err
    assert sys.exc_info() == (None, None, None)
