"""The `db` package as FineFoundry imports it: storage/compat on sys.path, then `import db`."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]
COMPAT_DIR = PROJECT_ROOT / "storage" / "compat"
DB_MODULES = ("core", "settings", "scraped_data", "training_runs", "logs", "training_configs", "evaluation_runs")


def import_db_package():
    """Import `db` from storage/compat exactly as FineFoundry would, with that folder first on sys.path."""
    sys.path.insert(0, str(COMPAT_DIR))
    try:
        package = importlib.import_module("db")
        for name in DB_MODULES:
            importlib.import_module(f"db.{name}")
    finally:
        sys.path.remove(str(COMPAT_DIR))
    assert Path(package.__file__).parent == COMPAT_DIR / "db", "another package named db was imported"
    return package


@pytest.fixture
def ff(db):
    """FineFoundry's `db` package (db.settings, db.scraped_data, ...) on this test's database."""
    return import_db_package()


def run_as_finefoundry(script: str, *, workdir: Path, database: Path, timeout: float = 180):
    """Run `script` in a new Python process set up like FineFoundry: only storage/compat on its path.

    The process starts in `workdir` (not the project), with FINEFOUNDRY_DB = `database`; the
    script's last line of output is JSON, which is returned.
    """
    env = {key: value for key, value in os.environ.items() if key not in ("DATABASE_URL", "DJANGO_SETTINGS_MODULE")}
    env.update(
        PYTHONPATH=str(COMPAT_DIR),
        FINEFOUNDRY_DB=str(database),
        FINEFOUNDRY_STORAGE_ROOT=str(database.parent / "training_outputs"),
    )
    path = workdir / "finefoundry_script.py"
    path.write_text(textwrap.dedent(script), encoding="utf-8")
    result = subprocess.run(
        [sys.executable, str(path)], cwd=workdir, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])
