"""seed_demo: a believable, deterministic dataset for an empty database, and never over real data."""

from __future__ import annotations

import datetime as dt
import io
import re

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from storage.demo import seed
from storage.models import AppLog, EvaluationRun, ScrapedPair, ScrapeSession, Setting, TrainingConfig, TrainingRun
from storage.services import configs, settings
from storage.services.pair_counts import pair_count_drift

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 5, 1, 12, 0, tzinfo=dt.UTC)
LOSS = re.compile(r"^\{'loss': (\d+\.\d+), 'grad_norm': [\d.]+, 'learning_rate': [\d.e+-]+, 'epoch': [\d.]+\}$")


@pytest.fixture
def seeded():
    return seed.seed_demo(seed=1, now=NOW)


def test_command_fills_an_empty_database_and_says_what_it_added():
    out = io.StringIO()
    call_command("seed_demo", "--seed", "3", stdout=out)
    assert out.getvalue().startswith("Demo data added: 7 sessions with 261 pairs, 6 training runs, 12 evaluations")
    assert ScrapedPair.objects.count() == 261


def test_sessions_come_from_every_source_with_counts_that_add_up(seeded):
    assert set(ScrapeSession.objects.values_list("source", flat=True)) == {
        "4chan",
        "reddit",
        "stackexchange",
        "synthetic",
    }
    assert pair_count_drift() == []
    assert ScrapedPair.objects.filter(source_url__startswith="https://www.reddit.com/r/").exists()
    assert ScrapeSession.objects.filter(dataset_format="chatml").count() == 1
    assert seeded.pairs == ScrapedPair.objects.count() > 200


def test_runs_in_every_status_with_loss_lines_a_curve_can_be_drawn_from(seeded):
    by_status = {run.status: run for run in TrainingRun.objects.all()}
    assert set(by_status) == set(TrainingRun.Status.values)
    for status in ("running", "completed", "failed", "cancelled"):
        losses = [float(m[1]) for line in by_status[status].logs if (m := LOSS.match(line))]
        assert len(losses) >= 8, status
        assert losses[0] > losses[-1]
    assert by_status["pending"].logs is None
    completed = by_status["completed"]
    assert completed.adapter_path and (completed.completed_at > completed.started_at)
    assert "'train_loss'" in completed.logs[-2]
    assert by_status["failed"].metadata["failure_reason"] == "CUDA out of memory at step 40"
    assert by_status["failed"].logs[-1].startswith("torch.OutOfMemoryError")
    # Alive: updated minutes before `now`, so doctor does not call it stuck.
    assert NOW - by_status["running"].updated_at < dt.timedelta(minutes=5)


def test_configs_settings_evaluations_and_logs(seeded):
    assert TrainingConfig.objects.count() == 3
    assert configs.get_last_used_config() == "local_llama31_8b.json"
    token = settings.get_setting(key="huggingface.token")
    assert token.startswith("hf_DEMO") and "notARealToken" in token
    assert settings.get_setting(key="runpod.api_key").startswith("rpa_DEMO_NOT_A_REAL_KEY")
    assert EvaluationRun.objects.filter(is_base_eval=True).count() == 6
    assert EvaluationRun.objects.filter(training_run__status="completed").count() == 6
    errors = AppLog.objects.filter(level="ERROR")
    assert errors.exists() and all(e.exc_info.startswith("Traceback (most recent call last):") for e in errors)
    stamps = [s for (s,) in AppLog.objects.values_list("timestamp").order_by()]
    assert len(stamps) == 160 and all(NOW - dt.timedelta(days=8) < s <= NOW for s in stamps)


@pytest.mark.sqlite_only("the desktop's two text timestamp formats; PostgreSQL stores real timestamps")
def test_both_desktop_timestamp_formats_are_in_the_logs(seeded):
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT SUM(timestamp LIKE '%T%'), SUM(timestamp NOT LIKE '%T%') FROM app_logs")
        iso, sql = cursor.fetchone()
    assert iso > 0 and sql > 0


def snapshot() -> tuple:
    return (
        list(ScrapedPair.objects.order_by("id").values_list("input_text", "output_text", "source_url")),
        # Run directories are named after the moment they were made; everything else repeats.
        [
            (name, status, [line.replace(path, "<dir>") for line in logs or []], created)
            for name, status, logs, created, path in TrainingRun.objects.order_by("id").values_list(
                "name", "status", "logs", "created_at", "storage_path"
            )
        ],
        list(AppLog.objects.order_by("id").values_list("timestamp", "level", "message", "exc_info")),
    )


def test_the_same_seed_gives_the_same_data(storage_root):
    seed.seed_demo(seed=5, now=NOW)
    first = snapshot()
    for model in (ScrapedPair, ScrapeSession, EvaluationRun, TrainingRun, TrainingConfig, Setting, AppLog):
        model.objects.all().delete()
    seed.seed_demo(seed=5, now=NOW)
    assert snapshot() == first
    for model in (ScrapedPair, ScrapeSession, EvaluationRun, TrainingRun, TrainingConfig, Setting, AppLog):
        model.objects.all().delete()
    seed.seed_demo(seed=6, now=NOW)
    assert snapshot()[0] != first[0]


def test_refuses_a_database_with_data(session_factory):
    session_factory(pairs=2)
    with pytest.raises(CommandError, match="the database already has data; seed_demo only fills an empty one"):
        call_command("seed_demo", stdout=io.StringIO())
    assert ScrapeSession.objects.count() == 1
    assert not TrainingRun.objects.exists()


def test_force_adds_beside_real_data_and_never_replaces_a_real_secret():
    settings.set_setting(key="huggingface.token", value="hf_the_users_real_token")
    configs.save_training_config(name="local_llama31_8b.json", config={"hp": {"epochs": 9}})
    call_command("seed_demo", "--force", stdout=io.StringIO())
    assert settings.get_setting(key="huggingface.token") == "hf_the_users_real_token"
    assert configs.get_training_config(name="local_llama31_8b.json") == {"hp": {"epochs": 9}}
    assert TrainingConfig.objects.count() == 3


def test_the_demo_dated_now_passes_the_doctor():
    seed.seed_demo(seed=1)
    out = io.StringIO()
    call_command("doctor", stdout=out)
    assert "No problems found." in out.getvalue()
