"""Application logs: read-only, filterable by level (or "warning and above"), logger and date; old ones cleared."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Case, Q, Value, When
from django.db.models.functions import Substr
from django.shortcuts import redirect
from django.template.defaultfilters import pluralize
from django.template.response import TemplateResponse
from django.urls import path
from django.utils.formats import date_format
from django.utils.html import format_html
from django.utils.timezone import localtime

from storage.admin.base import OfferedFiltersChangeList, ReadOnlyModelAdmin, row_checkbox, search_terms
from storage.admin.display import badge, level_badge
from storage.exceptions import StorageError
from storage.fields import SortableTimestamp
from storage.models import AppLog
from storage.redaction import MASKING_TRIGGERS, redact
from storage.services import logs as logs_service
from storage.services.settings import secret_values

LEVELS = list(AppLog.Level.values)  # lowest first
FIRST_LINE_CHARS = 200
LOGGER_CHOICES = 50


class LevelFilter(admin.SimpleListFilter):
    title = "level"
    parameter_name = "level"

    def lookups(self, request, model_admin):
        exact = [(level, level.capitalize()) for level in LEVELS]
        return [*exact, ("WARNING+", "Warning and above"), ("ERROR+", "Error and above")]

    def queryset(self, request, queryset):
        value = self.value()
        if not value:
            return queryset
        if value.endswith("+") and value[:-1] in LEVELS:
            return queryset.filter(level__in=LEVELS[LEVELS.index(value[:-1]) :])
        return queryset.filter(level=value)


class LoggerFilter(admin.SimpleListFilter):
    title = "logger"
    parameter_name = "logger"

    def lookups(self, request, model_admin):
        loggers = AppLog.objects.order_by().exclude(logger=None).values_list("logger", flat=True).distinct()
        return [(name, name) for name in sorted(loggers[:LOGGER_CHOICES])]

    def queryset(self, request, queryset):
        return queryset.filter(logger=self.value()) if self.value() else queryset


def unmasked_messages(secrets: list[str]) -> Q:
    """Records whose message redaction leaves as it is: no stored secret, nothing token-shaped.

    Searching a message that holds a secret would answer guesses of it (a right prefix finds the
    record, a wrong one does not), although the page shows the secret masked. So the search reads
    messages only where what is stored is what is shown.
    """
    unsafe = Q()
    for needle in (*MASKING_TRIGGERS, *secrets):
        unsafe |= Q(message__icontains=needle)
    return ~unsafe


def log_search(search_term: str, secrets: list[str]) -> Q:
    """Every word in the logger name, or in a message that holds nothing masked."""
    safe = unmasked_messages(secrets)
    query = Q()
    for term in search_terms(search_term):
        query &= Q(logger__icontains=term) | (Q(message__icontains=term) & safe)
    return query


class LogChangeList(OfferedFiltersChangeList):
    """Loads only the start of each message, and masks secrets in what it shows."""

    def get_queryset(self, request, exclude_parameters=None):
        queryset = super().get_queryset(request, exclude_parameters)
        return queryset.annotate(
            message_start=Substr("message", 1, FIRST_LINE_CHARS + 1),
            has_traceback=Case(When(Q(exc_info=None) | Q(exc_info=""), then=Value(False)), default=Value(True)),
        ).defer("message", "exc_info")

    def get_results(self, request):
        super().get_results(request)
        secrets = secret_values()
        for record in self.result_list:
            record.shown_message = redact(record.message_start or "", secrets=secrets)


class ClearLogsForm(forms.Form):
    older_than_days = forms.IntegerField(min_value=0, initial=30, label="Delete records older than (days)")
    level = forms.ChoiceField(
        required=False, choices=[("", "any level"), *[(level, level) for level in LEVELS]], label="Only of level"
    )


@admin.register(AppLog)
class AppLogAdmin(ReadOnlyModelAdmin):
    list_display = ("when", "level_column", "logger_column", "first_line", "traceback_column")
    list_filter = (LevelFilter, LoggerFilter, ("timestamp", admin.DateFieldListFilter))
    # The message is searched too, but only where it holds nothing to mask (see log_search).
    search_fields = ("logger",)
    search_help_text = "Words in the logger name or the message (messages holding a masked secret are not searched)."
    list_per_page = 100
    show_full_result_count = False
    fields = ("timestamp", "level_column", "logger", "module", "func_name", "line_no", "message_text", "traceback")
    readonly_fields = fields
    change_list_template = "admin/storage/applog/change_list.html"

    def get_changelist(self, request, **kwargs):
        return LogChangeList

    def changelist_view(self, request, extra_context=None):
        # Django's changelist context has no delete permission; the clean-up button needs it.
        extra_context = {**(extra_context or {}), "can_clear_logs": self.has_delete_permission(request)}
        return super().changelist_view(request, extra_context)

    def get_search_results(self, request, queryset, search_term):
        search_term = self.limited_search_term(request, search_term)
        if not search_term.strip():
            return queryset, False
        return queryset.filter(log_search(search_term, secret_values())), False

    def action_checkbox(self, record: AppLog):
        # Django labels the box with str(record), which would load each deferred message again.
        return row_checkbox(record.pk, f"Select log record {record.pk} for an action")

    @admin.display(description="time", ordering=SortableTimestamp("timestamp"))
    def when(self, record: AppLog):
        if record.timestamp is None:
            return "—"
        # Compact and on one line, so the message gets the width.
        return format_html(
            '<span class="ff-nowrap">{}</span>', date_format(localtime(record.timestamp), "DATETIME_FORMAT")
        )

    @admin.display(description="logger", ordering="logger")
    def logger_column(self, record: AppLog):
        return format_html('<span class="ff-ellipsis" title="{}">{}</span>', record.logger or "", record.logger or "—")

    @admin.display(description="level", ordering="level")
    def level_column(self, record: AppLog):
        return level_badge(record.level)

    @admin.display(description="message")
    def first_line(self, record: AppLog) -> str:
        text = getattr(record, "shown_message", None)
        if text is None:
            text = redact(record.message or "", secrets=secret_values())
        line, _, rest = text.partition("\n")
        return line[:FIRST_LINE_CHARS] + ("…" if rest or len(line) > FIRST_LINE_CHARS else "")

    @admin.display(description="traceback")
    def traceback_column(self, record: AppLog):
        has_traceback = record.has_traceback if hasattr(record, "has_traceback") else bool(record.exc_info)
        # Marked only where there is one: a column of "no" icons would drown the few that matter.
        return badge("traceback", "red") if has_traceback else ""

    @admin.display(description="message")
    def message_text(self, record: AppLog):
        return format_html(
            '<pre class="ff-log ff-log-static">{}</pre>', redact(record.message or "", secrets=secret_values())
        )

    @admin.display(description="traceback")
    def traceback(self, record: AppLog):
        if not record.exc_info:
            return "—"
        return format_html(
            '<pre class="ff-log ff-log-static">{}</pre>', redact(record.exc_info, secrets=secret_values())
        )

    def get_urls(self):
        return [
            path("clear/", self.admin_site.admin_view(self.clear_view), name="storage_applog_clear"),
            *super().get_urls(),
        ]

    def clear_view(self, request):
        """Delete records older than a number of days, in short batches (see logs.clear_logs)."""
        if not self.has_delete_permission(request):
            raise PermissionDenied
        form = ClearLogsForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            days = form.cleaned_data["older_than_days"]
            level = form.cleaned_data["level"] or None
            try:
                deleted = logs_service.clear_logs(older_than_days=days, level=level)
            except StorageError as exc:
                self.message_user(request, f"Nothing deleted: {exc}", messages.ERROR)
            else:
                which = f"{level} " if level else ""
                records = f"{deleted:,} {which}log record{pluralize(deleted)}"
                self.message_user(
                    request,
                    f"Deleted {records} older than {days} day{pluralize(days)}.",
                    messages.SUCCESS,
                )
                return redirect("admin:storage_applog_changelist")
        context = {
            **self.admin_site.each_context(request),
            "title": "Delete old log records",
            "opts": self.model._meta,
            "form": form,
            "total": AppLog.objects.count(),
        }
        return TemplateResponse(request, "admin/storage/applog/clear_logs.html", context)
