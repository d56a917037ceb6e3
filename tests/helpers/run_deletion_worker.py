"""Create a training run with artefacts, delete it, and hang at one window of the delete until killed.

    python tests/helpers/run_deletion_worker.py WINDOW

FINEFOUNDRY_DB and FINEFOUNDRY_STORAGE_ROOT name the database and the root. Prints one JSON line
({"event": "paused", "run_id": ..., "storage_path": ...}) once it hangs, so the test can SIGKILL it
exactly there. WINDOW is `moved-aside` (directory moved aside, row not yet deleted) or
`row-deleted` (row deleted, moved directory not yet removed).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "finefoundry.settings")

import django

django.setup()

from storage import api  # noqa: E402
from storage.models import TrainingRun  # noqa: E402

window = sys.argv[1]
run = api.create_training_run("doomed", "base", "database", None)
(Path(run["storage_path"]) / "outputs" / "adapter.safetensors").write_bytes(b"weights")


def hang(*args, **kwargs):
    print(json.dumps({"event": "paused", "run_id": run["id"], "storage_path": run["storage_path"]}), flush=True)
    time.sleep(3600)


if window == "moved-aside":
    TrainingRun.delete = hang
elif window == "row-deleted":
    shutil.rmtree = hang
else:
    raise SystemExit(f"unknown window {window!r}")
api.delete_training_run(run["id"])
