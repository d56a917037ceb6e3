"""Disk trouble: a read-only database, an unwritable storage root, a full or read-only export target.

Read-only and full locations are real tmpfs mounts (this needs root, as in CI), because root
ignores permission bits and a chmod would prove nothing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from storage import api
from storage.exceptions import StorageError
from storage.models import TrainingRun
from tests.helpers.processes import PROJECT_ROOT, child_env, manage

pytestmark = [pytest.mark.reliability, pytest.mark.sqlite_only("full and read-only disks under an SQLite file")]


def mount_tmpfs(path: Path, *options: str) -> None:
    path.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", ",".join(options), "tmpfs", str(path)], capture_output=True)
    if result.returncode != 0:
        if os.environ.get("CI"):
            pytest.fail(f"cannot mount tmpfs in CI: {result.stderr.decode()}")
        pytest.skip("mounting a tmpfs needs root")


@pytest.fixture
def mount_point(tmp_path):
    path = tmp_path / "mnt"
    yield path
    subprocess.run(["umount", "-l", str(path)], capture_output=True)


def make_read_only(path: Path) -> None:
    subprocess.run(["mount", "-o", "remount,ro", str(path)], check=True)


def test_database_on_a_read_only_disk_is_refused_clearly_and_untouched(migrated_db, mount_point):
    mount_tmpfs(mount_point, "size=16m")
    db = mount_point / "finefoundry.db"
    shutil.copy(migrated_db, db)
    before = db.read_bytes()
    make_read_only(mount_point)
    result = manage(db, "migrate", "--no-input")
    assert result.returncode == 1
    assert "read-only" in result.stderr
    assert "Traceback" not in result.stderr
    assert db.read_bytes() == before


@pytest.mark.django_db
def test_unwritable_storage_root_fails_create_training_run_cleanly(settings, mount_point):
    mount_tmpfs(mount_point, "size=1m", "ro")
    settings.FINEFOUNDRY_STORAGE_ROOT = mount_point
    with pytest.raises(StorageError, match=r"cannot create a run directory .* Read-only file system"):
        api.create_training_run("run", "m", "database", "1")
    assert TrainingRun.objects.count() == 0


@pytest.mark.django_db
def test_missing_storage_root_that_cannot_be_created(settings, mount_point):
    mount_tmpfs(mount_point, "size=1m", "ro")
    settings.FINEFOUNDRY_STORAGE_ROOT = mount_point / "training_outputs"
    with pytest.raises(StorageError, match="cannot create the storage root"):
        api.create_training_run("run", "m", "database", "1")
    assert TrainingRun.objects.count() == 0


@pytest.mark.django_db
def test_export_to_a_read_only_location_fails_cleanly(session_factory, mount_point):
    session = session_factory(pairs=10)
    mount_tmpfs(mount_point, "size=1m")
    (mount_point / "out.json").write_text("previous export")
    make_read_only(mount_point)
    with pytest.raises(StorageError, match="Read-only file system"):
        api.export_session_to_json(session.pk, str(mount_point / "out.json"))
    assert (mount_point / "out.json").read_text() == "previous export"
    assert sorted(p.name for p in mount_point.iterdir()) == ["out.json"]


@pytest.mark.django_db
def test_export_to_a_full_disk_leaves_no_partial_file(session_factory, mount_point):
    session = session_factory()
    api.add_scraped_pairs(session.pk, [{"input": "q" * 2000, "output": f"a{i}" * 500} for i in range(200)])
    mount_tmpfs(mount_point, "size=64k")
    target = mount_point / "out.json"
    with pytest.raises(StorageError, match="No space left on device"):
        api.export_session_to_json(session.pk, str(target))
    assert list(mount_point.iterdir()) == []


def test_the_web_server_names_a_database_it_will_not_open(tmp_path):
    db = tmp_path / "finefoundry.db"
    db.write_bytes(b"not a database" * 300)
    before = db.read_bytes()
    code = (
        "import django, os; os.environ['DJANGO_SETTINGS_MODULE'] = 'finefoundry.settings'; django.setup(); "
        "from django.test import Client; "
        "r = Client(HTTP_HOST='localhost', raise_request_exception=False).post('/admin/login/', {'username': 'a', 'password': 'b'}); "
        "print(r.status_code); print(r.content.decode())"
    )
    env = child_env(db)
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    status, _, body = result.stdout.partition("\n")
    assert status == "503", result.stdout + result.stderr
    assert "is not an SQLite database" in body
    assert "Traceback" not in body
    assert db.read_bytes() == before
