"""What bench scripts share: Django set up on a throwaway database, and migrated database files.

Scripts run as `python -m bench.NAME` from the project root, so `bench` and `storage` import as packages.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def setup_django(work: Path) -> None:
    """Set Django up in this process on a scratch database and storage root under `work`."""
    os.environ["FINEFOUNDRY_DB"] = str(work / "unused.db")
    os.environ["FINEFOUNDRY_STORAGE_ROOT"] = str(work / "outputs")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "finefoundry.settings")
    import django

    django.setup()


def migrated_template(directory: Path) -> Path:
    """A database file with the full schema, made by `manage.py migrate`, to copy for each round."""
    template = directory / "template.db"
    env = {**os.environ, "FINEFOUNDRY_DB": str(template), "FINEFOUNDRY_STORAGE_ROOT": str(directory / "outputs")}
    subprocess.run([sys.executable, "manage.py", "migrate", "--no-input", "-v", "0"], cwd=ROOT, env=env, check=True)
    return template
