"""storage.api log reading/clearing across both timestamp formats, and evaluation runs."""

from __future__ import annotations

import pytest
from django.db import connection

from storage import api
from storage.exceptions import InvalidInput, NotFound

pytestmark = pytest.mark.django_db

ROWS = [
    # (timestamp, level, logger)
    ("2024-12-01T09:00:00.000001", "INFO", "finefoundry.scrape"),  # desktop handler format
    ("2024-12-01 10:00:00", "ERROR", "finefoundry.train"),  # SQLite default format
    ("2024-12-01T11:00:00.500000", "WARNING", "finefoundry.scrape"),
    ("2024-12-02 08:00:00.250", "INFO", "django.request"),  # ours
]


@pytest.fixture
def mixed_logs():
    with connection.cursor() as cursor:
        cursor.executemany(
            "INSERT INTO app_logs (timestamp, level, logger, message) VALUES (%s, %s, %s, %s)",
            [(ts, level, logger, f"m{i}") for i, (ts, level, logger) in enumerate(ROWS)],
        )


def test_get_logs_newest_first_across_formats(mixed_logs):
    assert [log["message"] for log in api.get_logs()] == ["m3", "m2", "m1", "m0"]
    assert api.get_logs(limit=1)[0]["timestamp"] == "2024-12-02 08:00:00.250000"


def test_get_logs_filters(mixed_logs):
    assert [log["message"] for log in api.get_logs(level="INFO")] == ["m3", "m0"]
    assert [log["message"] for log in api.get_logs(logger="scrape")] == ["m2", "m0"]
    assert [log["message"] for log in api.get_logs(limit=2, offset=1)] == ["m2", "m1"]
    assert api.get_log_count() == 4
    assert api.get_log_count(level="ERROR") == 1


@pytest.mark.parametrize(
    ("before", "remaining"),
    [
        ("2024-12-01 10:30:00", ["m3", "m2"]),
        ("2024-12-01T09:30:00", ["m3", "m2", "m1"]),
        ("2024-12-01 09:00:00", ["m3", "m2", "m1", "m0"]),
        ("2030-01-01", []),
    ],
)
def test_clear_logs_before_is_right_within_one_day(mixed_logs, before, remaining):
    deleted = api.clear_logs(before=before)
    assert deleted == 4 - len(remaining)
    assert [log["message"] for log in api.get_logs()] == remaining


def test_clear_logs_desktop_signature_and_level(mixed_logs):
    assert api.clear_logs(before_date="2024-12-01T10:30:00", level="INFO") == 1
    assert api.clear_logs(level="warning") == 1
    assert api.clear_logs() == 2
    assert api.get_log_count() == 0


def test_clear_logs_older_than_days(mixed_logs):
    api.clear_logs(older_than_days=0)
    assert api.get_log_count() == 0


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"older_than_days": -1}, "older_than_days must be at least 0"),
        ({"before": "last tuesday"}, "before must be an ISO-8601"),
        ({"level": "LOUD"}, "level must be one of"),
        ({"older_than_days": 3, "before": "2024-01-01"}, "either older_than_days or before"),
    ],
)
def test_clear_logs_rejects_bad_input_and_deletes_nothing(mixed_logs, kwargs, error):
    with pytest.raises(InvalidInput, match=error):
        api.clear_logs(**kwargs)
    assert api.get_log_count() == 4


def test_get_logs_rejects_negative_limit():
    with pytest.raises(InvalidInput):
        api.get_logs(limit=-1)


def test_evaluation_runs_round_trip(run_factory):
    run = run_factory()
    first = api.save_evaluation_run(
        base_model="m", benchmark="hellaswag", metrics={"acc": 0.61}, training_run_id=run.pk, num_samples=100
    )
    second = api.save_evaluation_run(base_model="m", benchmark="arc", metrics={"acc": 0.4}, is_base_eval=True)
    evaluation = api.get_evaluation_run(first)
    assert evaluation["metrics"] == {"acc": 0.61}
    assert evaluation["is_base_eval"] is False
    assert evaluation["training_run_id"] == run.pk
    assert [e["id"] for e in api.get_evaluation_runs_for_training(run.pk)] == [first]
    assert [e["id"] for e in api.get_recent_evaluation_runs()] == [second, first]
    assert [e["id"] for e in api.get_recent_evaluation_runs(benchmark="arc")] == [second]
    assert [e["id"] for e in api.get_evaluation_history_for_model("m")] == [second, first]
    assert api.delete_evaluation_run(second) is True
    assert api.delete_evaluation_run(second) is False
    assert api.get_evaluation_run(second) is None


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"base_model": "", "benchmark": "b", "metrics": {}}, InvalidInput),
        ({"base_model": "m", "benchmark": "b", "metrics": "0.5"}, InvalidInput),
        ({"base_model": "m", "benchmark": "b", "metrics": {}, "training_run_id": 999}, NotFound),
        ({"base_model": "m", "benchmark": "b", "metrics": {}, "batch_size": 0}, InvalidInput),
    ],
)
def test_save_evaluation_run_rejects_bad_input(kwargs, error):
    with pytest.raises(error):
        api.save_evaluation_run(**kwargs)
    assert api.get_recent_evaluation_runs() == []
