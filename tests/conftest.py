"""Shared fixtures: every test gets its own storage root; factories make realistic rows."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

FIXTURES_DIR = Path(__file__).resolve().parent.parent.parent / "shared" / "fixtures"
DESKTOP_FIXTURES = {"v1": FIXTURES_DIR / "desktop-v1.sql", "current": FIXTURES_DIR / "desktop-current.sql"}


@pytest.fixture(autouse=True)
def storage_root(settings, tmp_path) -> Path:
    """Point the managed storage root (and the data directory) at a fresh temp dir."""
    data_dir = tmp_path / "data"
    root = data_dir / "training_outputs"
    root.mkdir(parents=True)
    settings.FINEFOUNDRY_DATA_DIR = data_dir
    settings.FINEFOUNDRY_STORAGE_ROOT = root
    return root


@pytest.fixture
def session_factory(db):
    from storage.services import scraping

    def make(*, source: str = "reddit", pairs: int = 0, **kwargs):
        session = scraping.create_scrape_session(source=source, **kwargs)
        if pairs:
            scraping.add_scraped_pairs(
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


def load_desktop_fixture(generation: str, path: Path) -> Path:
    """Write one of the desktop databases in ../shared/fixtures to `path`."""
    connection = sqlite3.connect(path)
    try:
        connection.executescript(DESKTOP_FIXTURES[generation].read_text(encoding="utf-8"))
        connection.commit()
    finally:
        connection.close()
    return path


@pytest.fixture(params=sorted(DESKTOP_FIXTURES))
def desktop_db(request, tmp_path) -> Path:
    """A desktop finefoundry.db of each schema generation, in a temp dir."""
    return load_desktop_fixture(request.param, tmp_path / "finefoundry.db")


PROJECT_ROOT = Path(__file__).resolve().parent.parent


def manage(db: Path, *args: str, timeout: float = 120, **kwargs):
    """Run `python manage.py ...` in a subprocess against the database file `db`."""
    import os
    import subprocess
    import sys

    env = {
        **os.environ,
        "FINEFOUNDRY_DB": str(db),
        "FINEFOUNDRY_STORAGE_ROOT": str(db.parent / "training_outputs"),
        **kwargs.pop("env", {}),
    }
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        **kwargs,
    )


@pytest.fixture
def migrated_db(tmp_path) -> Path:
    """A fresh, migrated database file of its own (for tests that use several processes)."""
    db = tmp_path / "live" / "finefoundry.db"
    db.parent.mkdir()
    result = manage(db, "migrate", "--no-input", "-v", "0")
    assert result.returncode == 0, result.stderr
    return db
