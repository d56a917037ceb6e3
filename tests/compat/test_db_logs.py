"""db.logs as FineFoundry's helpers/logging_config.py and main.py's settings tab use it."""

from __future__ import annotations

import datetime as dt
import logging

import pytest
from django.utils import timezone

from storage.models import AppLog

from .conftest import import_db_package


def add_log(level, logger, message, when):
    return AppLog.objects.create(timestamp=when, level=level, logger=logger, message=message)


@pytest.fixture
def records(db):
    now = timezone.now()
    return [
        add_log("INFO", "finefoundry.helpers.scrape", "old", dt.datetime(2023, 12, 31, 23, 0, tzinfo=dt.UTC)),
        add_log("ERROR", "finefoundry.helpers.training", "older than 30 days", now - dt.timedelta(days=40)),
        add_log("INFO", "finefoundry.ui", "recent", now - dt.timedelta(minutes=1)),
    ]


def test_get_logs_filters_by_exact_level_and_logger_substring(ff, records):
    assert [r["message"] for r in ff.logs.get_logs()] == ["recent", "older than 30 days", "old"]
    assert [r["message"] for r in ff.logs.get_logs(level="ERROR")] == ["older than 30 days"]
    assert [r["message"] for r in ff.logs.get_logs(logger="helpers")] == ["older than 30 days", "old"]
    assert [r["message"] for r in ff.logs.get_logs(None, None, 1, 1)] == ["older than 30 days"]
    assert set(ff.logs.get_logs()[0]) == {
        "id", "timestamp", "level", "logger", "message", "module", "func_name", "line_no", "exc_info"
    }  # fmt: skip


def test_get_log_count(ff, records):
    assert ff.logs.get_log_count() == 3 and ff.get_log_count() == 3
    assert ff.logs.get_log_count("INFO") == 2 and ff.logs.get_log_count(level="ERROR") == 1


def test_clear_logs_with_the_desktop_apps_positional_date(ff, records):
    assert ff.logs.clear_logs("2024-01-01") == 1
    assert ff.logs.clear_logs(before_date="2024-01-01") == 0
    assert [r["message"] for r in ff.logs.get_logs()] == ["recent", "older than 30 days"]


def test_clear_logs_by_age_and_everything(ff, records):
    assert ff.logs.clear_logs(older_than_days=30) == 2
    assert ff.logs.clear_logs(30) == 0  # a number first is a number of days
    assert ff.clear_logs() == 1  # main.py's "Clear logs" button: everything
    assert ff.logs.get_log_count() == 0


def test_clear_logs_refuses_a_date_given_twice(ff, records):
    with pytest.raises(ValueError, match="not both"):
        ff.logs.clear_logs("2024-01-01", before="2024-01-01")
    assert ff.logs.get_log_count() == 3


@pytest.mark.django_db(transaction=True)
def test_the_handler_as_logging_config_builds_it_stores_records():
    db = import_db_package()
    # Outside the `finefoundry` tree, whose own handler (settings.LOGGING) would store the records too.
    logger = logging.getLogger("tests.compat_test")
    handler = db.logs.DatabaseHandler(logging.INFO)  # helpers/logging_config.py: DatabaseHandler(level)
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    try:
        logger.debug("below the handler's level")
        logger.info("scraped %d pairs", 25)
        assert handler.flush(timeout=30)
    finally:
        logger.removeHandler(handler)
        handler.close()
        logger.setLevel(logging.NOTSET)
        logger.propagate = True
    stored = db.logs.get_logs(logger="compat_test")
    assert [(r["level"], r["message"]) for r in stored] == [("INFO", "scraped 25 pairs")]


@pytest.mark.django_db(transaction=True)
def test_setup_database_logging_attaches_to_the_named_logger():
    db = import_db_package()
    handler = db.logs.setup_database_logging(logging.WARNING, "tests.compat_setup")
    logger = logging.getLogger("tests.compat_setup")
    logger.propagate = False
    try:
        assert isinstance(handler, db.logs.DatabaseHandler) and handler in logger.handlers
        logger.warning("disk nearly full")
        assert handler.flush(timeout=30)
    finally:
        logger.removeHandler(handler)
        handler.close()
        logger.propagate = True
    assert [r["message"] for r in db.logs.get_logs(logger="compat_setup")] == ["disk nearly full"]
