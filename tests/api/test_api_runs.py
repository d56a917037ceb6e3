"""storage.api training runs: directories, status transitions, and the safe-delete rule."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from django.db import DatabaseError, connection

from storage import api
from storage.exceptions import InvalidInput, InvalidTransition, UnsafePath
from storage.models import EvaluationRun, TrainingRun
from tests.helpers.triggers import refuse

pytestmark = pytest.mark.django_db


def make_run(name="llama run/1", **kwargs) -> dict:
    return api.create_training_run(name, "unsloth/Qwen2.5-7B", "database", 3, **kwargs)


def test_create_training_run_makes_its_directory_tree(storage_root):
    run = make_run(hp={"epochs": 3, "lr": "2e-4"}, metadata={"target": "local"})
    path = Path(run["storage_path"])
    assert path.parent == storage_root
    assert path.name.startswith("llama_run_1_")
    assert sorted(p.name for p in path.iterdir()) == ["checkpoints", "logs", "outputs"]
    assert run["status"] == "pending"
    assert run["hp"] == {"epochs": 3, "lr": "2e-4"}
    assert run["metadata"] == {"target": "local"}
    assert run["logs"] == []
    assert run["dataset_id"] == "3"
    assert isinstance(run["id"], int)


def test_two_runs_with_the_same_name_get_different_directories():
    first, second = make_run(), make_run()
    assert first["storage_path"] != second["storage_path"]


def test_get_run_storage_paths():
    run = make_run()
    paths = api.get_run_storage_paths(run["id"])
    assert paths["root"] == run["storage_path"]
    assert paths["outputs"] == os.path.join(run["storage_path"], "outputs")
    assert paths["dataset"].endswith("dataset.json")
    assert api.get_run_storage_paths(999) is None


@pytest.mark.parametrize(
    "path",
    [
        ["running", "completed"],
        ["running", "failed"],
        ["running", "cancelled"],
        ["running", "running", "completed"],
    ],
)
def test_allowed_transitions(path):
    run = make_run()
    for status in path:
        run = api.update_training_run(run["id"], status=status)
    assert run["status"] == path[-1]
    assert run["started_at"] is not None
    assert run["completed_at"] is not None


@pytest.mark.parametrize(
    ("path", "refused"),
    [
        ([], "completed"),
        ([], "failed"),
        (["running", "completed"], "pending"),
        (["running", "failed"], "completed"),
        (["running", "cancelled"], "pending"),
    ],
)
def test_illegal_transitions_are_refused_and_change_nothing(path, refused):
    run = make_run()
    for status in path:
        api.update_training_run(run["id"], status=status)
    before = api.get_training_run(run["id"])
    with pytest.raises(InvalidTransition, match=f"cannot become {refused}"):
        api.update_training_run(run["id"], status=refused, adapter_path="/x")
    assert api.get_training_run(run["id"]) == before


def test_update_fields_and_explicit_timestamps():
    run = make_run()
    updated = api.update_training_run(
        run["id"],
        status="running",
        logs=["{'loss': 1.92, 'learning_rate': 0.0002, 'epoch': 0.05}"],
        started_at="2024-12-09T12:00:00",
        output_dir="/out",
        metadata={"pod": "abc"},
    )
    assert updated["logs"] == ["{'loss': 1.92, 'learning_rate': 0.0002, 'epoch': 0.05}"]
    assert updated["started_at"] == "2024-12-09 12:00:00"
    assert updated["output_dir"] == "/out"
    assert updated["metadata"] == {"pod": "abc"}


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"status": "exploded"}, "unknown status"),
        ({"logs": "not a list"}, "logs must be a list of strings"),
        ({"logs": [1, 2]}, "logs must be a list of strings"),
        ({"started_at": "yesterday"}, "started_at must be an ISO-8601"),
        ({"metadata": ["x"]}, "metadata must be a dict"),
        ({"adapter_path": 5}, "adapter_path must be a string"),
    ],
)
def test_update_rejects_bad_input(kwargs, error):
    run = make_run()
    with pytest.raises(InvalidInput, match=error):
        api.update_training_run(run["id"], **kwargs)
    assert api.get_training_run(run["id"])["status"] == "pending"


def test_update_unknown_run_returns_none_as_the_desktop_app():
    assert api.update_training_run(999, status="running") is None
    assert api.update_training_run(999) is None


def test_list_runs_newest_first_filter_and_latest():
    a, b, c = make_run("a"), make_run("b"), make_run("c")
    api.update_training_run(b["id"], status="running")
    with connection.cursor() as cursor:
        cursor.execute("UPDATE training_runs SET created_at = '2025-01-01 00:00:00'")
    assert [r["id"] for r in api.list_training_runs()] == [c["id"], b["id"], a["id"]]
    assert [r["id"] for r in api.list_training_runs(status="running")] == [b["id"]]
    assert [r["id"] for r in api.list_training_runs(limit=1, offset=1)] == [b["id"]]
    assert api.get_latest_run()["id"] == c["id"]
    assert [r["name"] for r in api.get_runs_by_model("unsloth/Qwen2.5-7B", limit=2)] == ["c", "b"]


def test_delete_training_run_removes_row_and_files():
    run = make_run()
    path = Path(run["storage_path"])
    (path / "outputs" / "adapter.bin").write_bytes(b"x" * 10)
    assert api.delete_training_run(run["id"]) is True
    assert not path.exists()
    assert api.get_training_run(run["id"]) is None
    assert api.delete_training_run(run["id"]) is False


def test_delete_training_run_keep_files():
    run = make_run()
    assert api.delete_training_run(run["id"], delete_files=False) is True
    assert Path(run["storage_path"]).is_dir()


def test_delete_sets_evaluations_training_run_to_null():
    run = make_run()
    eval_id = api.save_evaluation_run(
        base_model="m", benchmark="hellaswag", metrics={"acc": 0.5}, training_run_id=run["id"]
    )
    api.delete_training_run(run["id"])
    assert EvaluationRun.objects.get(pk=eval_id).training_run_id is None


def set_storage_path(run_id: int, value: str) -> None:
    TrainingRun.objects.filter(pk=run_id).update(storage_path=value)


@pytest.fixture
def victim(tmp_path) -> Path:
    """A directory outside the storage root that must survive every attempt."""
    path = tmp_path / "precious"
    path.mkdir()
    (path / "keep.txt").write_text("do not delete")
    return path


@pytest.mark.parametrize(
    ("make_path", "reason"),
    [
        (lambda root, victim: str(victim), "outside the storage root"),
        (lambda root, victim: str(root / ".." / ".." / "precious"), "outside the storage root"),
        (lambda root, victim: "../precious", "outside the storage root"),
        (lambda root, victim: str(root), "the storage root itself"),
        (lambda root, victim: str(root / "sub" / ".."), "the storage root itself"),
        (lambda root, victim: "/", "outside the storage root"),
    ],
)
def test_delete_refuses_paths_outside_the_root(storage_root, victim, make_path, reason):
    run = make_run()
    set_storage_path(run["id"], make_path(storage_root, victim))
    with pytest.raises(UnsafePath, match=reason):
        api.delete_training_run(run["id"])
    assert api.get_training_run(run["id"]) is not None
    assert (victim / "keep.txt").read_text() == "do not delete"
    assert storage_root.is_dir()


def test_delete_refuses_a_symlink_into_somewhere_else(storage_root, victim):
    run = make_run()
    link = storage_root / "innocent_20250101"
    link.symlink_to(victim, target_is_directory=True)
    set_storage_path(run["id"], str(link))
    with pytest.raises(UnsafePath, match="symbolic link"):
        api.delete_training_run(run["id"])
    assert (victim / "keep.txt").exists()
    assert link.is_symlink()
    assert api.get_training_run(run["id"]) is not None


def test_delete_refuses_a_path_through_a_symlinked_directory(storage_root, victim):
    run = make_run()
    (storage_root / "link").symlink_to(victim.parent, target_is_directory=True)
    set_storage_path(run["id"], str(storage_root / "link" / "precious"))
    with pytest.raises(UnsafePath, match="'link' in it is a symbolic link"):
        api.delete_training_run(run["id"])
    assert (victim / "keep.txt").exists()


def test_symlinks_inside_a_run_directory_are_unlinked_not_followed(victim):
    run = make_run()
    path = Path(run["storage_path"])
    (path / "outputs" / "escape").symlink_to(victim, target_is_directory=True)
    api.delete_training_run(run["id"])
    assert not path.exists()
    assert (victim / "keep.txt").exists()


def test_relative_storage_path_resolves_beside_the_database(storage_root):
    # Desktop rows store 'training_outputs/<run>' relative to the project root.
    run = make_run()
    relative = Path("training_outputs") / Path(run["storage_path"]).name
    set_storage_path(run["id"], str(relative))
    assert api.delete_training_run(run["id"]) is True
    assert not Path(run["storage_path"]).exists()


def test_delete_with_missing_directory_still_deletes_row():
    run = make_run()
    Path(run["storage_path"]).rename(Path(run["storage_path"]).with_name("moved"))
    assert api.delete_training_run(run["id"]) is True


def test_get_managed_storage_root(storage_root):
    assert api.get_managed_storage_root() == str(storage_root)


@pytest.mark.parametrize(
    ("args", "error"),
    [
        ((None, "m", "database", "1"), "name must be a string"),
        (("n", 5, "database", "1"), "base_model must be a string"),
        (("n", "m", "database", "1", ["hp"]), "hp must be a dict"),
    ],
)
def test_create_training_run_rejects_bad_input_and_leaves_no_directory(storage_root, args, error):
    with pytest.raises(InvalidInput, match=error):
        api.create_training_run(*args)
    assert list(storage_root.iterdir()) == []
    assert TrainingRun.objects.count() == 0


def test_a_row_delete_that_fails_puts_the_directory_back(storage_root):
    run = make_run()
    path = Path(run["storage_path"])
    (path / "outputs" / "adapter.safetensors").write_bytes(b"weights")
    refuse("training_runs", "DELETE", "refused")
    with pytest.raises(DatabaseError, match="refused"):
        api.delete_training_run(run["id"])
    assert (path / "outputs" / "adapter.safetensors").read_bytes() == b"weights"
    assert api.get_training_run(run["id"]) is not None
    assert [p.name for p in storage_root.iterdir() if p.name.startswith(".deleting-")] == []


def test_the_platform_removes_trees_through_descriptors():
    # storage_paths.delete_directory relies on it: rmtree(dir_fd=...) never follows a swapped-in symlink.
    assert shutil.rmtree.avoids_symlink_attacks
