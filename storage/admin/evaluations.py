"""Evaluation runs: benchmark results, read-only."""

from __future__ import annotations

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from storage.admin.base import ReadOnlyModelAdmin
from storage.admin.display import pretty_json
from storage.fields import SortableTimestamp
from storage.models import EvaluationRun

METRICS_SHOWN = 4


@admin.register(EvaluationRun)
class EvaluationRunAdmin(ReadOnlyModelAdmin):
    list_display = ("benchmark", "base_model", "run_link", "metrics_summary", "num_samples", "is_base_eval", "created")
    list_filter = ("benchmark", "is_base_eval")
    list_select_related = ("training_run",)
    search_fields = ("benchmark", "base_model", "adapter_path")
    fields = (
        "benchmark",
        "base_model",
        "adapter_path",
        "run_link",
        "num_samples",
        "batch_size",
        "is_base_eval",
        "metrics_pretty",
        "created_at",
    )
    readonly_fields = fields

    @admin.display(description="training run", ordering="training_run")
    def run_link(self, evaluation: EvaluationRun):
        if evaluation.training_run_id is None:
            return "—"
        url = reverse("admin:storage_trainingrun_change", args=[evaluation.training_run_id])
        return format_html('<a href="{}">{}</a>', url, evaluation.training_run)

    @admin.display(description="metrics")
    def metrics_summary(self, evaluation: EvaluationRun):
        metrics = evaluation.metrics if isinstance(evaluation.metrics, dict) else {}
        items = list(metrics.items())[:METRICS_SHOWN]
        return format_html_join(" ", '<span class="ff-metric">{} <strong>{}</strong></span>', items) or "—"

    @admin.display(description="metrics")
    def metrics_pretty(self, evaluation: EvaluationRun):
        return pretty_json(evaluation.metrics)

    @admin.display(description="created", ordering=SortableTimestamp("created_at"))
    def created(self, evaluation: EvaluationRun):
        return evaluation.created_at
