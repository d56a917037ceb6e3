"""Training runs: status badges, loss curve, logs, artefacts, comparison, and deletes that respect the storage root."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.core.exceptions import ValidationError
from django.shortcuts import redirect
from django.template.defaultfilters import pluralize
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from storage.admin.base import FineFoundryModelAdmin
from storage.admin.charts import Series, line_chart
from storage.admin.display import PrettyJSONField, pretty_json, status_badge
from storage.exceptions import InvalidTransition, StorageError
from storage.fields import SortableTimestamp
from storage.models import TrainingRun
from storage.redaction import redact
from storage.services import run_files, run_reports, runs
from storage.services.settings import secret_values

LOG_LINES_SHOWN = 2000
SHORT_TEXT_FIELDS = frozenset(
    {"name", "base_model", "dataset_source", "dataset_id", "output_dir", "adapter_path", "checkpoint_path"}
)


class TrainingRunForm(forms.ModelForm):
    """Offers only the statuses the run may move to, and refuses any other transition."""

    class Meta:
        model = TrainingRun
        fields = (
            "name",
            "status",
            "base_model",
            "dataset_source",
            "dataset_id",
            "output_dir",
            "adapter_path",
            "checkpoint_path",
            "hyperparameters",
        )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        status = self.fields.get("status")
        if status is not None and self.instance.pk:
            current = self.instance.status or TrainingRun.Status.PENDING
            allowed = {current, *runs.ALLOWED_TRANSITIONS.get(current, ())}
            # The field still accepts every status, so a refused one gets the transition message below.
            status.widget.choices = [(value, label) for value, label in TrainingRun.Status.choices if value in allowed]
            status.help_text = (
                "Runs move pending → running → completed, failed or cancelled; a finished run may be run "
                "again (its earlier attempt is kept below); nothing else."
            )

    def clean_status(self):
        new_status = self.cleaned_data.get("status")
        if self.instance.pk and new_status:
            try:
                runs.check_transition(self.instance, new_status)
            except StorageError as exc:
                raise ValidationError(str(exc)) from exc
        return new_status


def loss_chart(curve: run_reports.LossCurve):
    return line_chart(
        [
            Series("training loss", curve.train, "ff-series-train"),
            Series("evaluation loss", curve.eval, "ff-series-eval"),
        ],
        x_label=curve.x_label,
        y_label="loss",
    )


@admin.register(TrainingRun)
class TrainingRunAdmin(FineFoundryModelAdmin):
    form = TrainingRunForm
    list_display = ("name_column", "status_column", "base_model", "dataset_column", "duration_column", "created_column")
    list_filter = ("status", "base_model")
    search_fields = ("name", "base_model", "dataset_id")
    actions = ["mark_cancelled", "compare_runs", "delete_with_artefacts"]
    change_form_template = "admin/storage/trainingrun/change_form.html"

    def get_fieldsets(self, request, obj=None):
        if obj is None:
            return (
                (None, {"fields": ("name", "base_model", "dataset_source", "dataset_id")}),
                ("Hyperparameters", {"fields": ("hyperparameters",)}),
            )
        return (
            (None, {"fields": ("name", "status", "base_model", "dataset_source", "dataset_id", "dataset_column")}),
            ("Artefacts", {"fields": ("storage_path", "output_dir", "adapter_path", "checkpoint_path")}),
            ("Timing", {"fields": ("started_at", "completed_at", "duration_column", "created_at", "updated_at")}),
            ("Hyperparameters and metadata", {"fields": ("hyperparameters_pretty", "metadata_pretty")}),
        )

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ()
        return (
            "dataset_column",
            "storage_path",
            "started_at",
            "completed_at",
            "duration_column",
            "created_at",
            "updated_at",
            "hyperparameters_pretty",
            "metadata_pretty",
        )

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        if db_field.name == "hyperparameters":
            return PrettyJSONField(required=False, rows=10, label="Hyperparameters")
        if db_field.name in SHORT_TEXT_FIELDS:
            # Model names and paths are long; a wide one-line input shows them whole.
            kwargs["widget"] = forms.TextInput(attrs={"class": "vTextField ff-wide"})
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    @admin.display(description="name", ordering="name")
    def name_column(self, run: TrainingRun) -> str:
        return str(run)

    @admin.display(description="status", ordering="status")
    def status_column(self, run: TrainingRun):
        return status_badge(run.status)

    def get_queryset(self, request):
        return runs.with_dataset_session_labels(super().get_queryset(request))

    @admin.display(description="dataset")
    def dataset_column(self, run: TrainingRun):
        if run.dataset_source == runs.DATABASE_DATASET and (run.dataset_id or "").isdigit():
            label = getattr(run, "dataset_session_label", None)
            if label is None:
                # Deleted: a link would land on the dashboard with "doesn't exist".
                return format_html('session {} <span class="ff-muted">(deleted)</span>', run.dataset_id)
            url = reverse("admin:storage_scrapesession_change", args=[run.dataset_id])
            return format_html('<a href="{}">session {}: {}</a>', url, run.dataset_id, label)
        return f"{run.dataset_source or '—'}: {run.dataset_id or '—'}"

    @admin.display(description="duration")
    def duration_column(self, run: TrainingRun) -> str:
        return run_reports.format_duration(run_reports.run_duration(run))

    @admin.display(description="created", ordering=SortableTimestamp("created_at"))
    def created_column(self, run: TrainingRun):
        return run.created_at

    @admin.display(description="hyperparameters")
    def hyperparameters_pretty(self, run: TrainingRun):
        return pretty_json(run.hyperparameters)

    @admin.display(description="metadata")
    def metadata_pretty(self, run: TrainingRun):
        return pretty_json(run.metadata)

    def insights(self, run: TrainingRun) -> dict:
        """What the change page shows below the fields: curve, logs, files, evaluations."""
        lines = run_reports.log_lines(run.logs)
        shown = lines[-LOG_LINES_SHOWN:]
        # Logs may quote a token; mask secrets and anything token-shaped before it reaches the page.
        log_text = redact("\n".join(shown), secrets=secret_values())
        curve = run_reports.loss_curve(run)
        return {
            "status_badge": status_badge(run.status),
            "duration": run_reports.format_duration(run_reports.run_duration(run)),
            "final_train_loss": None if curve.final_train_loss is None else f"{curve.final_train_loss:.4g}",
            "final_eval_loss": None if curve.final_eval_loss is None else f"{curve.final_eval_loss:.4g}",
            "loss_chart": loss_chart(curve),
            "log_text": log_text,
            "log_line_count": len(lines),
            "log_lines_hidden": len(lines) - len(shown),
            "artefacts": run_reports.list_artefacts(run.storage_path),
            "evaluations": list(run.evaluations.all()),
            # An attempt's error text may quote a token, like its logs.
            "attempts": [
                {**attempt, "error": redact(str(attempt["error"]), secrets=secret_values())}
                if attempt.get("error")
                else attempt
                for attempt in run.attempts
            ],
        }

    def change_view(self, request, object_id, form_url="", extra_context=None):
        run = self.get_object(request, object_id)
        context = {**(extra_context or {}), **(self.insights(run) if run is not None else {})}
        return super().change_view(request, object_id, form_url, extra_context=context)

    def save_model(self, request, obj, form, change):
        if not change:
            created = runs.create_training_run(
                name=obj.name,
                base_model=obj.base_model,
                dataset_source=obj.dataset_source,
                dataset_id=obj.dataset_id,
                hp=obj.hyperparameters or None,
            )
            obj.pk = created.pk
            obj.refresh_from_db()
            return
        fields = [name for name in form.changed_data if name != "status"]
        if fields:
            obj.updated_at = timezone.now()
            obj.save(update_fields=[*fields, "updated_at"])
        if "status" in form.changed_data:
            # Through the service, so started_at / completed_at are stamped as for any other caller.
            runs.update_training_run(run_id=obj.pk, status=obj.status)
            obj.refresh_from_db()

    def delete_model(self, request, obj):
        runs.delete_training_run(run_id=obj.pk, delete_files=True)

    def delete_view(self, request, object_id, extra_context=None):
        run = self.get_object(request, object_id)
        context = {**(extra_context or {})}
        if run is not None:
            context["artefacts"] = run_reports.list_artefacts(run.storage_path)
            if run.storage_path:
                try:
                    run_files.checked_run_path(run.storage_path)
                except StorageError as exc:
                    context["delete_refused"] = str(exc)
        try:
            return super().delete_view(request, object_id, extra_context=context)
        except StorageError as exc:
            self.message_user(request, f"Run kept, nothing deleted: {exc}", messages.ERROR)
            return redirect("admin:storage_trainingrun_change", object_id)

    def get_actions(self, request):
        actions = super().get_actions(request)
        # Replaced by delete_with_artefacts, which reports runs it must keep.
        actions.pop("delete_selected", None)
        return actions

    @admin.action(description="Mark selected runs cancelled", permissions=["change"])
    def mark_cancelled(self, request, queryset):
        cancelled = 0
        for run in queryset:
            try:
                runs.update_training_run(run_id=run.pk, status=TrainingRun.Status.CANCELLED)
            except InvalidTransition as exc:
                self.message_user(request, f"{run.name}: {exc}", messages.ERROR)
            else:
                cancelled += 1
        if cancelled:
            self.message_user(request, f"Cancelled {cancelled} run{pluralize(cancelled)}.", messages.SUCCESS)

    @admin.action(description="Compare selected runs", permissions=["view"])
    def compare_runs(self, request, queryset):
        selected = list(queryset.order_by("pk"))
        if len(selected) < 2:
            self.message_user(request, "Select at least two runs to compare.", messages.WARNING)
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": f"Compare {len(selected)} training runs",
            "opts": self.model._meta,
            "comparison": run_reports.compare_runs(selected),
        }
        return TemplateResponse(request, "admin/storage/trainingrun/compare.html", context)

    @admin.action(description="Delete selected runs and their artefacts…", permissions=["delete"])
    def delete_with_artefacts(self, request, queryset):
        selected = list(queryset.order_by("pk"))
        if request.POST.get("post") != "yes":
            context = {
                **self.admin_site.each_context(request),
                "title": "Delete training runs and their artefacts",
                "opts": self.model._meta,
                "rows": [(run, run_reports.list_artefacts(run.storage_path)) for run in selected],
                "action_checkbox_name": ACTION_CHECKBOX_NAME,
            }
            return TemplateResponse(request, "admin/storage/trainingrun/delete_with_artefacts.html", context)
        deleted = 0
        for run in selected:
            try:
                runs.delete_training_run(run_id=run.pk, delete_files=True)
            except StorageError as exc:
                self.message_user(request, f"{run.name} kept: {exc}", messages.ERROR)
            else:
                self.log_deletions(request, [run])
                deleted += 1
        if deleted:
            self.message_user(
                request,
                f"Deleted {deleted} run{pluralize(deleted)} and {'its' if deleted == 1 else 'their'} artefacts.",
                messages.SUCCESS,
            )
        return None
