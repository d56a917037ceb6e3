"""Deleting runs while another process swaps a parent directory for a symlink: nothing outside the root is touched."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from storage.exceptions import StorageError
from storage.models import TrainingRun
from storage.services import runs

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.reliability]

TRIES = 5000
SECONDS = 10

# Swaps <root>/a/b for a symlink to the victim's parent and back, as fast as it can, until killed.
SWAPPER = """
import os, sys
parent, hidden, outside = sys.argv[1:4]
while True:
    os.rename(parent, hidden)
    os.symlink(outside, parent)
    os.unlink(parent)
    os.rename(hidden, parent)
"""


def test_swapping_a_parent_for_a_symlink_never_deletes_outside_the_root(storage_root, tmp_path):
    outside = tmp_path / "outside"
    (outside / "run").mkdir(parents=True)
    (outside / "run" / "keep.txt").write_text("do not delete")
    parent = storage_root / "a" / "b"
    parent.mkdir(parents=True)
    # The test creates each run directory through a descriptor of the real parent, so its own
    # set-up never goes through the swapped-in symlink.
    parent_fd = os.open(parent, os.O_RDONLY | os.O_DIRECTORY)
    swapper = subprocess.Popen([sys.executable, "-c", SWAPPER, str(parent), str(parent) + ".hidden", str(outside)])
    refused = deleted = tries = 0
    raw: list[str] = []
    deadline = time.monotonic() + SECONDS
    try:
        while tries < TRIES and time.monotonic() < deadline and (outside / "run" / "keep.txt").exists():
            tries += 1
            os.mkdir("run", dir_fd=parent_fd)
            os.mkdir("run/outputs", dir_fd=parent_fd)
            run = TrainingRun.objects.create(name="race", storage_path=str(parent / "run"))
            try:
                runs.delete_training_run(run_id=run.pk)
            except StorageError:
                refused += 1
                run.delete()
            except OSError as exc:  # a raw error is a bug too, but first see what reached outside
                raw.append(repr(exc))
                run.delete()
            else:
                deleted += 1
            # Whatever the delete did not remove (refused, or the parent was away) is cleared for the next try.
            if os.path.lexists(f"/proc/self/fd/{parent_fd}/run"):
                os.rmdir("run/outputs", dir_fd=parent_fd)
                os.rmdir("run", dir_fd=parent_fd)
    finally:
        swapper.kill()
        swapper.wait()
        os.close(parent_fd)
    assert (outside / "run" / "keep.txt").read_text() == "do not delete", f"deleted outside after {tries} tries"
    assert sorted(p.name for p in outside.iterdir()) == ["run"]
    print(f"{tries} tries: {deleted} deleted, {refused} refused")
    assert raw == []
    assert tries > 200 and deleted and refused, (tries, deleted, refused)
    leftovers = [p.name for p in storage_root.iterdir() if p.name.startswith(".deleting-")]
    assert leftovers == []
