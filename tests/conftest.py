"""Shared fixtures: every test gets its own storage root; factories make realistic rows.

Also the suite's two database guards: every process a test starts gets the test database (or a
scratch file of its own) through `child_env`, never the database the user's DATABASE_URL names;
and `@pytest.mark.sqlite_only("why")` skips a test of an SQLite-only feature on PostgreSQL.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.db import connection

from tests.helpers.desktop import DESKTOP_FIXTURES, load_desktop_fixture
from tests.helpers.processes import engine_is_postgresql, manage


def _child_database_url() -> str | None:
    """DATABASE_URL with the database name replaced by the test database pytest-django makes (test_<name>)."""
    from urllib.parse import urlsplit, urlunsplit

    url = os.environ.get("DATABASE_URL")
    if not url:
        return None
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + connection.creation._get_test_db_name()))


# The user's DATABASE_URL is replaced for the whole run, before any test starts a process: whatever
# inherits os.environ (manage.py, workers, multiprocessing, a live server) reaches the test database.
CHILD_DATABASE_URL = _child_database_url()
if CHILD_DATABASE_URL:
    os.environ["DATABASE_URL"] = CHILD_DATABASE_URL


def child_database_url() -> str | None:
    """The test database's URL on PostgreSQL (None on SQLite), for processes that must share it."""
    return CHILD_DATABASE_URL


def pytest_collection_modifyitems(config, items):
    """`sqlite_only` tests are skipped on PostgreSQL (with their reason), `postgresql_only` ones on SQLite."""
    postgresql = engine_is_postgresql()
    for item in items:
        marker = item.get_closest_marker("sqlite_only")
        if marker and postgresql:
            reason = marker.args[0] if marker.args else "an SQLite-only feature"
            item.add_marker(pytest.mark.skip(reason=f"SQLite only: {reason}"))
        if item.get_closest_marker("postgresql_only") and not postgresql:
            item.add_marker(pytest.mark.skip(reason="PostgreSQL only (run with DATABASE_URL=postgres://...)"))


@pytest.fixture(autouse=True)
def storage_root(settings, tmp_path) -> Path:
    """Point the managed storage root (and the data directory) at a fresh temp dir."""
    data_dir = tmp_path / "data"
    root = data_dir / "training_outputs"
    root.mkdir(parents=True)
    settings.FINEFOUNDRY_DATA_DIR = data_dir
    settings.FINEFOUNDRY_STORAGE_ROOT = root
    settings.FINEFOUNDRY_JOBS_DIR = data_dir / "jobs"
    return root


@pytest.fixture
def session_factory(db):
    from storage.services import sessions

    def make(*, source: str = "reddit", pairs: int = 0, **kwargs):
        session = sessions.create_scrape_session(source=source, **kwargs)
        if pairs:
            sessions.add_scraped_pairs(
                session_id=session.pk,
                pairs=[{"input": f"question {i}", "output": f"answer {i}"} for i in range(pairs)],
            )
            session.refresh_from_db()
        return session

    return make


@pytest.fixture
def run_factory(db):
    from storage.services import runs

    def make(*, name: str = "llama-run", **kwargs):
        kwargs.setdefault("base_model", "unsloth/Meta-Llama-3.1-8B-Instruct-bnb-4bit")
        kwargs.setdefault("dataset_source", "database")
        kwargs.setdefault("dataset_id", "1")
        return runs.create_training_run(name=name, **kwargs)

    return make


@pytest.fixture(params=sorted(DESKTOP_FIXTURES))
def desktop_db(request, tmp_path) -> Path:
    """A desktop finefoundry.db of each schema generation, in a temp dir."""
    return load_desktop_fixture(request.param, tmp_path / "finefoundry.db")


@pytest.fixture
def migrated_db(tmp_path) -> Path:
    """A fresh, migrated database file of its own (for tests that use several processes)."""
    db = tmp_path / "live" / "finefoundry.db"
    db.parent.mkdir()
    result = manage(db, "migrate", "--no-input", "-v", "0")
    assert result.returncode == 0, result.stderr
    return db


@pytest.fixture
def site_data(db, session_factory, run_factory):
    """A little of everything the admin shows, written through the services, with known secrets."""
    from types import SimpleNamespace

    from django.db import connection

    from storage.models import AppLog
    from storage.services import configs, evaluations, runs
    from storage.services import settings as settings_service

    hf_token = "hf_" + "KnownTokenForTests" * 2 + "Wx7q"
    runpod_key = "rpa_" + "RUNPODKEY0123456789" * 2 + "Zz42"
    reddit = session_factory(
        source="reddit",
        pairs=40,
        name="r/MachineLearning Q&A",
        source_details="url=https://www.reddit.com/r/MachineLearning",
        metadata={"max_pairs": 40, "subreddit": "MachineLearning"},
    )
    chan = session_factory(source="4chan", pairs=25, source_details="boards=g,sci")
    empty = session_factory(source="synthetic", dataset_format="chatml")

    hp = {"base_model": "unsloth/Qwen2.5-7B", "epochs": 3, "lr": "2e-4", "bsz": 2, "grad_accum": 4}
    by_status = {}
    for status, path in {
        "pending": [],
        "running": ["running"],
        "completed": ["running", "completed"],
        "failed": ["running", "failed"],
        "cancelled": ["running", "cancelled"],
    }.items():
        run = run_factory(name=f"qwen-{status}", dataset_id=str(reddit.pk), hp={**hp, "epochs": len(path) + 1})
        for step in path:
            runs.update_training_run(run_id=run.pk, status=step)
        logs = [f"{{'loss': {2.4 - i * 0.1:.2f}, 'learning_rate': 0.0002, 'epoch': {i * 0.25:.2f}}}" for i in range(8)]
        logs.insert(4, "{'eval_loss': 1.95, 'eval_runtime': 3.2, 'epoch': 1.0}")
        if path:
            runs.update_training_run(run_id=run.pk, logs=logs)
        run.refresh_from_db()
        by_status[status] = run
    completed = by_status["completed"]
    adapter = Path(completed.storage_path) / "outputs" / "adapter_model.safetensors"
    adapter.write_bytes(b"\0" * 4096)
    evaluation = evaluations.save_evaluation_run(
        base_model=hp["base_model"],
        benchmark="hellaswag",
        metrics={"acc": 0.61, "acc_norm": 0.72},
        training_run_id=completed.pk,
        num_samples=100,
    )

    full_hp = {**hp, "max_steps": 200, "output_dir": "/data/outputs", "hf_dataset_id": "user/ds"}
    config = configs.save_training_config(
        name="local_llama.json", config={"hp": full_hp, "meta": {"train_target": "Local"}}
    )
    configs.set_last_used_config(name=config.name)

    settings_service.set_setting(key="huggingface.token", value=hf_token)
    settings_service.set_setting(key="runpod.api_key", value=runpod_key)
    settings_service.set_setting(key="ollama", value={"enabled": True, "base_url": "http://127.0.0.1:11434"})
    settings_service.set_setting(key="proxy", value={"enabled": False, "tor": False, "url": ""})
    settings_service.set_setting(key="app.offline_mode", value=False)
    settings_service.set_setting(key="ui.theme", value="dark")

    info = AppLog.objects.create(level="INFO", logger="finefoundry.scrape", message="Scraped 40 pairs")
    AppLog.objects.create(level="WARNING", logger="finefoundry.train", message="GPU memory is low\nsecond line")
    error = AppLog.objects.create(
        level="ERROR",
        logger="finefoundry.train",
        message="Training failed: CUDA out of memory",
        exc_info='Traceback (most recent call last):\n  File "train.py", line 1\nRuntimeError: CUDA out of memory',
    )
    # The desktop log handler's ISO format, next to SQLite's default format above.
    with connection.cursor() as cursor:
        cursor.execute("UPDATE app_logs SET timestamp = '2024-12-01T10:00:00.000000' WHERE id = %s", [info.pk])
    # Background jobs in each state the jobs page shows (rows only: no worker runs them here).
    from storage.models import Job
    from storage.services import jobs as jobs_service

    done = Job.objects.create(kind="export", label="Export of session 1 as jsonl", params={"session_ids": [reddit.pk]})
    relative, path = jobs_service.result_file_for(job_id=done.pk, filename="session-1.jsonl")
    path.write_text('{"input": "question 0", "output": "answer 0"}\n')
    jobs_service.mark_succeeded(job_id=done.pk, result={"pairs": 1, "format": "jsonl"}, result_file=relative)
    failed = Job.objects.create(kind="import", label="Import of broken.jsonl", params={})
    jobs_service.mark_failed(job_id=failed.pk, error=f"broken.jsonl: record 2 (line 2): a token {hf_token} leaked")
    Job.objects.create(
        kind="dedupe", label="Remove duplicates", params={}, status="running", progress_done=3, progress_total=10
    )
    return SimpleNamespace(
        sessions=[reddit, chan, empty],
        reddit=reddit,
        chan=chan,
        empty=empty,
        runs=by_status,
        evaluation=evaluation,
        config=config,
        error_log=error,
        hf_token=hf_token,
        runpod_key=runpod_key,
    )


@pytest.fixture(scope="session")
def hf_datasets(tmp_path_factory):
    """Hugging Face `datasets`, offline, with a cache of its own (exports must load with it)."""
    home = tmp_path_factory.mktemp("hf")
    os.environ.update(HF_HOME=str(home), HF_DATASETS_OFFLINE="1", HF_HUB_OFFLINE="1", HF_HUB_DISABLE_TELEMETRY="1")
    datasets = pytest.importorskip("datasets")
    datasets.disable_progress_bars()
    return datasets
