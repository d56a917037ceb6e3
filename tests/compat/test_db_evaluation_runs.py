"""db.evaluation_runs as FineFoundry's evaluate tab uses it."""

from __future__ import annotations

import math

import pytest

from storage.models import EvaluationRun


def save(ff, **kwargs):
    values = {
        "training_run_id": None,
        "base_model": "llama",
        "adapter_path": None,
        "benchmark": "hellaswag",
        "num_samples": 100,
        "batch_size": 8,
        "metrics": {"acc": 0.5},
        "is_base_eval": False,
        **kwargs,
    }
    return ff.evaluation_runs.save_evaluation_run(**values)


@pytest.fixture
def run_id(ff):
    return ff.training_runs.create_training_run("r", "llama", "database", "1")["id"]


def test_save_and_get_as_the_evaluate_tab_does(ff, run_id):
    eval_id = save(ff, training_run_id=run_id, adapter_path="/a", is_base_eval=False)
    stored = ff.evaluation_runs.get_evaluation_run(eval_id)
    assert stored["metrics"] == {"acc": 0.5} and stored["is_base_eval"] is False
    assert (stored["training_run_id"], stored["adapter_path"], stored["num_samples"]) == (run_id, "/a", 100)
    assert ff.evaluation_runs.get_evaluation_run(99_999) is None
    with pytest.raises(TypeError):  # keyword-only, as upstream
        ff.evaluation_runs.save_evaluation_run("llama", "hellaswag", {})


@pytest.mark.sqlite_only("SQLite keeps NaN and infinities in JSON text; PostgreSQL's jsonb cannot hold them")
def test_nan_metrics_are_stored_and_read_back_on_sqlite(ff):
    eval_id = save(ff, metrics={"acc": float("nan"), "acc_norm": 0.25, "stderr": float("inf")})
    metrics = ff.evaluation_runs.get_evaluation_run(eval_id)["metrics"]
    assert math.isnan(metrics["acc"]) and metrics["acc_norm"] == 0.25 and metrics["stderr"] == math.inf
    assert math.isnan(EvaluationRun.objects.get(pk=eval_id).metrics["acc"])


@pytest.mark.postgresql_only("jsonb has no NaN or infinity")
def test_nan_metrics_are_stored_as_null_on_postgresql_and_finite_ones_kept(ff):
    eval_id = save(ff, metrics={"acc": float("nan"), "acc_norm": 0.25, "nested": {"stderr": float("-inf")}})
    assert ff.evaluation_runs.get_evaluation_run(eval_id)["metrics"] == {
        "acc": None,
        "acc_norm": 0.25,
        "nested": {"stderr": None},
    }


def test_lists_newest_first_by_run_benchmark_and_model(ff, run_id):
    base = save(ff, is_base_eval=True)
    tuned = save(ff, training_run_id=run_id, adapter_path="/a", benchmark="truthfulqa_mc2")
    again = save(ff, training_run_id=run_id, adapter_path="/a")
    assert [e["id"] for e in ff.evaluation_runs.get_evaluation_runs_for_training(run_id)] == [again, tuned]
    assert [e["id"] for e in ff.evaluation_runs.get_recent_evaluation_runs(limit=2)] == [again, tuned]
    assert [e["id"] for e in ff.evaluation_runs.get_recent_evaluation_runs(20, "hellaswag")] == [again, base]
    assert [e["id"] for e in ff.evaluation_runs.get_evaluation_history_for_model("llama")] == [base]
    assert [e["id"] for e in ff.evaluation_runs.get_evaluation_history_for_model("llama", "/a")] == [again, tuned]
    assert ff.evaluation_runs.get_evaluation_run(base)["is_base_eval"] is True


def test_delete(ff):
    eval_id = save(ff)
    assert ff.evaluation_runs.delete_evaluation_run(eval_id) is True
    assert ff.evaluation_runs.delete_evaluation_run(eval_id) is False


def test_deleting_the_training_run_keeps_its_evaluations(ff, run_id):
    eval_id = save(ff, training_run_id=run_id)
    ff.training_runs.delete_training_run(run_id)
    assert ff.evaluation_runs.get_evaluation_run(eval_id)["training_run_id"] is None
