"""Benchmark evaluations of base models and of training runs' adapters."""

from __future__ import annotations

import math
from typing import Any

from django.db import connections
from django.db.models import QuerySet

from storage.exceptions import InvalidInput, NotFound
from storage.models import EvaluationRun, TrainingRun
from storage.validation import optional_int, optional_text, require_int, require_text, to_json


def _without_non_finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _without_non_finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_without_non_finite(item) for item in value]
    return value


def storable_metrics(metrics: Any) -> dict:
    """`metrics` as it will be stored: NaN and infinities kept on SQLite (JSON text, as Python's json
    writes them and the desktop app stores them), stored as null on PostgreSQL, whose jsonb cannot hold them.
    """
    if not isinstance(metrics, dict):
        raise InvalidInput(f"metrics must be a dict, not {type(metrics).__name__}")
    to_json(metrics, name="metrics", allow_nan=True)
    if connections["default"].vendor == "sqlite":
        return metrics
    return _without_non_finite(metrics)


def save_evaluation_run(
    *,
    base_model: str,
    benchmark: str,
    metrics: dict,
    training_run_id: int | None = None,
    adapter_path: str | None = None,
    num_samples: int | None = None,
    batch_size: int | None = None,
    is_base_eval: bool = False,
) -> EvaluationRun:
    require_text(base_model, name="base_model")
    require_text(benchmark, name="benchmark")
    metrics = storable_metrics(metrics)
    optional_int(training_run_id, name="training_run_id")
    optional_text(adapter_path, name="adapter_path")
    optional_int(num_samples, name="num_samples", minimum=0)
    optional_int(batch_size, name="batch_size", minimum=1)
    if training_run_id is not None and not TrainingRun.objects.filter(pk=training_run_id).exists():
        raise NotFound(f"training run {training_run_id} does not exist")
    return EvaluationRun.objects.create(
        training_run_id=training_run_id,
        base_model=base_model,
        adapter_path=adapter_path,
        benchmark=benchmark,
        num_samples=num_samples,
        batch_size=batch_size,
        metrics=metrics,
        is_base_eval=bool(is_base_eval),
    )


def get_evaluation_run(*, eval_id: int) -> EvaluationRun | None:
    require_int(eval_id, name="eval_id")
    return EvaluationRun.objects.filter(pk=eval_id).first()


def evaluations_for_training(*, training_run_id: int) -> QuerySet[EvaluationRun]:
    require_int(training_run_id, name="training_run_id")
    return EvaluationRun.objects.filter(training_run_id=training_run_id)


def recent_evaluations(*, limit: int = 20, benchmark: str | None = None) -> QuerySet[EvaluationRun]:
    require_int(limit, name="limit", minimum=0)
    evaluations = EvaluationRun.objects.all()
    if benchmark:
        evaluations = evaluations.filter(benchmark=benchmark)
    return evaluations[:limit]


def evaluation_history_for_model(*, base_model: str, adapter_path: str | None = None) -> QuerySet[EvaluationRun]:
    evaluations = EvaluationRun.objects.filter(base_model=base_model)
    if adapter_path:
        return evaluations.filter(adapter_path=adapter_path)
    return evaluations.filter(adapter_path__isnull=True)


def delete_evaluation_run(*, eval_id: int) -> bool:
    require_int(eval_id, name="eval_id")
    deleted, _ = EvaluationRun.objects.filter(pk=eval_id).delete()
    return deleted > 0
