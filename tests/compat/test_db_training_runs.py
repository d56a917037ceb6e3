"""db.training_runs as FineFoundry's training tab, helpers/training.py and main.py use it."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest
from django.urls import reverse

from storage.models import TrainingRun


def make_run(ff, name="test", **kwargs):
    return ff.training_runs.create_training_run(
        name=name, base_model="test-model", dataset_source="database", dataset_id="1", **kwargs
    )


def test_a_new_run_is_pending_with_its_managed_directories(ff, storage_root):
    run = make_run(ff)
    assert run["status"] == "pending"
    paths = ff.training_runs.get_run_storage_paths(run["id"])
    root = Path(paths["root"])
    assert root.parent == storage_root and root == Path(run["storage_path"])
    assert all(Path(paths[sub]).is_dir() for sub in ("outputs", "checkpoints", "logs"))
    assert paths["dataset"] == os.path.join(paths["root"], "dataset.json")
    assert run["hp_json"] is None and run["metadata_json"] is None  # no hp, empty hp: NULL, as upstream
    assert make_run(ff, hp={})["hp_json"] is None
    assert (run["hp"], run["logs"], run["metadata"]) == ({}, [], {})


def test_an_empty_name_is_stored_as_given_and_shown_as_unnamed(ff, admin_client):
    run = make_run(ff, name="")
    assert run["name"] == ""
    assert TrainingRun.objects.get(pk=run["id"]).name == ""
    page = admin_client.get(reverse("admin:storage_trainingrun_changelist")).content.decode()
    assert "(unnamed)" in page


def test_names_are_kept_whole_and_made_safe_only_in_the_directory(ff):
    odd = make_run(ff, name="test/run:with<special>chars")
    assert odd["name"] == "test/run:with<special>chars"
    assert not {"/", ":", "<"} & set(os.path.basename(odd["storage_path"]))
    long = make_run(ff, name="a" * 500)
    assert long["name"] == "a" * 500
    assert len(os.path.basename(long["storage_path"]).split("_")[0]) <= 100
    assert "训练运行" in make_run(ff, name="训练运行_🚀")["name"]
    assert make_run(ff)["storage_path"] != make_run(ff)["storage_path"]


@pytest.mark.parametrize("run_id", [99_999, -1, 0])
def test_unknown_runs_are_none_false_or_none(ff, run_id):
    assert ff.training_runs.get_training_run(run_id) is None
    assert ff.training_runs.update_training_run(run_id, status="completed") is None
    assert ff.training_runs.get_run_storage_paths(run_id) is None
    assert ff.training_runs.delete_training_run(run_id) is False


def test_listing_filters_pages_and_latest(ff):
    assert ff.training_runs.list_training_runs() == [] and ff.training_runs.get_latest_run() is None
    first, second = make_run(ff, "first"), make_run(ff, "second")
    ff.training_runs.update_training_run(first["id"], status="running")
    assert [r["id"] for r in ff.training_runs.list_training_runs()] == [second["id"], first["id"]]
    assert [r["id"] for r in ff.training_runs.list_training_runs(status="running")] == [first["id"]]
    assert ff.training_runs.list_training_runs(status="nonexistent_status") == []
    assert ff.training_runs.list_training_runs(offset=1000) == [] and ff.training_runs.list_training_runs(limit=0) == []
    assert ff.training_runs.get_latest_run()["id"] == second["id"]
    assert [r["name"] for r in ff.training_runs.get_runs_by_model("test-model", 1)] == ["second"]


def test_the_local_training_flow_of_helpers_training(ff):
    run = make_run(ff)
    assert ff.training_runs.update_training_run(run["id"], status="pending")["status"] == "pending"
    running = ff.training_runs.update_training_run(
        run["id"], status="running", started_at=dt.datetime.now().isoformat()
    )
    assert running["status"] == "running" and running["started_at"]
    done = ff.training_runs.update_training_run(
        run["id"],
        status="completed",
        output_dir="/out",
        adapter_path="/out/adapter",
        completed_at=dt.datetime.now().isoformat(),
        logs=["step 1 loss 2.0", "step 2 loss 1.5"],
    )
    assert (done["status"], done["output_dir"], done["adapter_path"]) == ("completed", "/out", "/out/adapter")
    assert done["logs"] == ["step 1 loss 2.0", "step 2 loss 1.5"] and done["completed_at"]


def test_a_failed_run_can_be_run_again_and_keeps_the_failed_attempt(ff):
    run = make_run(ff)
    ff.training_runs.update_training_run(run["id"], status="running", started_at="2025-01-01T10:00:00")
    failed = ff.training_runs.update_training_run(
        run["id"],
        status="failed",
        completed_at="2025-01-01T10:05:00",
        metadata={"exit_code": 137, "error": "OOM or killed"},
    )
    rerun = ff.training_runs.update_training_run(run["id"], status="running", started_at="2025-01-02T09:00:00")
    assert rerun["status"] == "running" and rerun["completed_at"] is None
    assert rerun["started_at"] == "2025-01-02 09:00:00"
    assert rerun["metadata"] == {
        "attempts": [
            {
                "status": "failed",
                "started_at": "2025-01-01 10:00:00",
                "completed_at": failed["completed_at"],
                "exit_code": 137,
                "error": "OOM or killed",
            }
        ]
    }
    done = ff.training_runs.update_training_run(run["id"], status="completed", adapter_path="/a", logs=["ok"])
    assert (done["status"], done["adapter_path"], done["logs"]) == ("completed", "/a", ["ok"])
    assert done["completed_at"] and len(done["metadata"]["attempts"]) == 1


@pytest.mark.parametrize("final", ["completed", "cancelled", "failed"])
def test_every_finished_status_may_be_rerun_and_attempts_accumulate(ff, final):
    run = make_run(ff)
    for _ in range(2):
        ff.training_runs.update_training_run(run["id"], status="running")
        ff.training_runs.update_training_run(run["id"], status=final)
    again = ff.training_runs.update_training_run(run["id"], status="running")
    assert [a["status"] for a in again["metadata"]["attempts"]] == [final, final]
    # A caller that replaces metadata wholesale (FineFoundry does on failure) keeps the attempts.
    failed = ff.training_runs.update_training_run(run["id"], status="failed", metadata={"exit_code": 1})
    assert failed["metadata"]["exit_code"] == 1 and len(failed["metadata"]["attempts"]) == 2


def test_other_transitions_are_still_refused(ff):
    run = make_run(ff)
    with pytest.raises(ValueError, match="cannot become completed"):
        ff.training_runs.update_training_run(run["id"], status="completed")
    ff.training_runs.update_training_run(run["id"], status="running")
    ff.training_runs.update_training_run(run["id"], status="failed")
    with pytest.raises(ValueError, match="cannot become completed"):
        ff.training_runs.update_training_run(run["id"], status="completed")


def test_the_run_page_shows_earlier_attempts(ff, admin_client):
    run = make_run(ff)
    ff.training_runs.update_training_run(run["id"], status="running")
    ff.training_runs.update_training_run(
        run["id"], status="failed", metadata={"exit_code": 137, "error": "OOM or killed"}
    )
    url = reverse("admin:storage_trainingrun_change", args=[run["id"]])
    assert 'id="run-attempts"' not in admin_client.get(url).content.decode()
    ff.training_runs.update_training_run(run["id"], status="running")
    page = admin_client.get(url).content.decode()
    assert 'id="run-attempts"' in page
    attempts = page.split('id="run-attempts"', 1)[1].split("</fieldset>", 1)[0]
    assert "<td>failed</td>" in attempts and "137" in attempts and "OOM or killed" in attempts


def test_delete_removes_the_row_and_its_directory(ff):
    run = make_run(ff)
    assert os.path.isdir(run["storage_path"])
    assert ff.training_runs.delete_training_run(run["id"]) is True
    assert not os.path.exists(run["storage_path"]) and ff.training_runs.get_training_run(run["id"]) is None
    kept = make_run(ff)
    assert ff.training_runs.delete_training_run(kept["id"], False) is True
    assert os.path.isdir(kept["storage_path"])


def test_managed_storage_root_exists(ff, storage_root):
    root = ff.training_runs.get_managed_storage_root()
    assert root == str(storage_root) and os.path.isdir(root)
