"""Scrape sessions: browse, export (streamed), merge, dedupe and delete without ever listing every pair."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.core.exceptions import PermissionDenied
from django.db.models.functions import Substr
from django.http import Http404, StreamingHttpResponse
from django.template.defaultfilters import pluralize
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from storage.admin.base import FineFoundryModelAdmin
from storage.admin.display import PREVIEW_CHARS, PrettyJSONField, preview
from storage.admin.pairs import SESSION_PARAM
from storage.exceptions import StorageError
from storage.fields import SortableTimestamp
from storage.models import ScrapedPair, ScrapeSession
from storage.services import pair_edits
from storage.services import sessions as sessions_service
from storage.services.datasets import exporting
from storage.services.dedupe import remove_duplicates
from storage.services.merge import merge_sessions
from storage.services.runs import runs_using_sessions

FIRST_PAIRS = 10
# Formats offered as download actions, in menu order.
DOWNLOAD_FORMATS = ("json", "jsonl", "chatml", "alpaca", "sharegpt", "csv")
FORMAT_TITLES = {"json": "JSON", "jsonl": "JSONL", "chatml": "ChatML", "alpaca": "Alpaca", "sharegpt": "ShareGPT"}


def stream_export(session_ids: list[int], fmt: str) -> StreamingHttpResponse:
    """A download of the sessions' pairs, produced chunk by chunk as the browser reads it."""
    export_format = exporting.export_format(fmt)
    chunks = exporting.iter_export_chunks(session_ids=session_ids, fmt=fmt)
    response = StreamingHttpResponse(chunks, content_type=f"{export_format.content_type}; charset=utf-8")
    filename = exporting.default_filename(session_ids, fmt)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def download_action(fmt: str):
    title = FORMAT_TITLES.get(fmt, fmt.upper())

    @admin.action(description=f"Download as {title}", permissions=["view"])
    def download(modeladmin, request, queryset):
        try:
            return stream_export(sorted(queryset.values_list("pk", flat=True)), fmt)
        except StorageError as exc:
            modeladmin.message_user(request, f"Nothing exported: {exc}", messages.ERROR)
            return None

    download.__name__ = f"download_{fmt}"
    return download


class DedupeForm(forms.Form):
    normalize = forms.BooleanField(required=False, label="Ignore case and extra whitespace when comparing pairs")
    across_sessions = forms.BooleanField(
        required=False, label="Also remove a pair that an earlier selected session already has"
    )
    dry_run = forms.BooleanField(required=False, label="Only count the duplicates; delete nothing")


@admin.register(ScrapeSession)
class ScrapeSessionAdmin(FineFoundryModelAdmin):
    # The id first: every command takes a SESSION_ID.
    list_display = ("id", "label_column", "source", "dataset_format", "pair_count_column", "created_column")
    list_display_links = ("id", "label_column")
    list_filter = ("source", "dataset_format", ("created_at", admin.DateFieldListFilter))
    search_fields = ("name", "source", "source_details")
    search_help_text = "Search names, sources and source details."
    readonly_fields = ("pair_count", "created_at", "pairs_link", "download_links", "first_pairs")
    fieldsets = (
        (None, {"fields": ("name", "source", "source_details", "dataset_format")}),
        ("Pairs", {"fields": ("pair_count", "pairs_link", "download_links", "first_pairs")}),
        ("Metadata", {"fields": ("metadata", "created_at")}),
    )
    actions = [
        *(download_action(fmt) for fmt in DOWNLOAD_FORMATS),
        "merge_concatenate",
        "merge_interleave",
        "remove_duplicates",
    ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        session = self.get_object(request, object_id)
        if session is not None:
            # "Session 12: name" instead of the name alone: commands take the id.
            extra_context = {**(extra_context or {}), "subtitle": f"Session {session.pk}: {session.label}"}
        return super().change_view(request, object_id, form_url, extra_context)

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        if db_field.name == "metadata":
            return PrettyJSONField(required=False, rows=8, label="Metadata", object_only=True)
        if db_field.name in ("name", "source", "source_details"):
            kwargs["widget"] = forms.TextInput(attrs={"class": "vTextField"})
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    @admin.display(description="session", ordering="name")
    def label_column(self, session: ScrapeSession) -> str:
        return session.label

    @admin.display(description="pairs", ordering="pair_count")
    def pair_count_column(self, session: ScrapeSession) -> str:
        return f"{session.pair_count or 0:,}"

    @admin.display(description="created", ordering=SortableTimestamp("created_at"))
    def created_column(self, session: ScrapeSession):
        return session.created_at

    @admin.display(description="all pairs")
    def pairs_link(self, session: ScrapeSession):
        if session.pk is None:
            return "—"
        url = reverse("admin:storage_scrapedpair_changelist") + f"?{SESSION_PARAM}={session.pk}"
        return format_html('<a class="button" href="{}">Browse this session\'s pairs →</a>', url)

    @admin.display(description="download")
    def download_links(self, session: ScrapeSession):
        if session.pk is None:
            return "—"
        links = (
            (reverse("admin:storage_scrapesession_export", args=[session.pk, fmt]), FORMAT_TITLES.get(fmt, fmt.upper()))
            for fmt in DOWNLOAD_FORMATS
        )
        return format_html_join(" ", '<a class="ff-download" href="{}" download>{}</a>', links)

    @admin.display(description=f"first {FIRST_PAIRS} pairs")
    def first_pairs(self, session: ScrapeSession):
        if session.pk is None:
            return "—"
        rows = (
            ScrapedPair.objects.filter(session_id=session.pk)
            .order_by("id")
            .annotate(i=Substr("input_text", 1, PREVIEW_CHARS + 1), o=Substr("output_text", 1, PREVIEW_CHARS + 1))
            .values_list("id", "i", "o")[:FIRST_PAIRS]
        )
        body = format_html_join(
            "",
            '<tr><td><a href="{}">{}</a></td><td>{}</td><td>{}</td></tr>',
            ((reverse("admin:storage_scrapedpair_change", args=[pk]), pk, preview(i), preview(o)) for pk, i, o in rows),
        )
        if not body:
            return "This session has no pairs."
        return format_html(
            '<table class="ff-table"><thead><tr><th>id</th><th>input</th><th>output</th></tr></thead>'
            "<tbody>{}</tbody></table>",
            body,
        )

    def get_urls(self):
        return [
            path(
                "<path:object_id>/export/<str:fmt>/",
                self.admin_site.admin_view(self.export_view),
                name="storage_scrapesession_export",
            ),
            *super().get_urls(),
        ]

    def export_view(self, request, object_id: str, fmt: str):
        session = self.get_object(request, object_id)
        if session is None:
            raise Http404("no such session")
        if not self.has_view_permission(request, session):
            raise PermissionDenied
        try:
            return stream_export([session.pk], fmt)
        except StorageError as exc:
            raise Http404(str(exc)) from exc

    def get_deleted_objects(self, objs, request):
        """Counts per model, never one line per pair: a session can hold a million."""
        sessions = list(objs)
        summary = pair_edits.deletion_summary([s.pk for s in sessions])
        pairs = summary[ScrapedPair._meta.verbose_name_plural]
        lines = [
            format_html(
                '<a href="{}">Session {}: {}</a>',
                reverse("admin:storage_scrapesession_change", args=[s.pk]),
                s.pk,
                s.label,
            )
            for s in sessions
        ]
        lines.append(
            f"{pairs:,} scraped pair{pluralize(pairs)} in {'this session' if len(sessions) == 1 else 'these sessions'}"
        )
        for run in runs_using_sessions(session_ids=[s.pk for s in sessions]):
            # Runs are kept; their dataset shows as "session N (deleted)" afterwards.
            lines.append(
                format_html(
                    'Training run <a href="{}">{}</a> was trained on session {}: it is kept, its dataset will show '
                    "as deleted",
                    reverse("admin:storage_trainingrun_change", args=[run.pk]),
                    str(run),
                    run.dataset_id,
                )
            )
        return lines, summary, set(), []

    def delete_model(self, request, obj):
        sessions_service.delete_scrape_session(session_id=obj.pk)

    def delete_queryset(self, request, queryset):
        for session_id in list(queryset.values_list("pk", flat=True)):
            sessions_service.delete_scrape_session(session_id=session_id)

    def merge(self, request, queryset, mode: str) -> None:
        ids = sorted(queryset.values_list("pk", flat=True))
        if len(ids) < 2:
            self.message_user(request, "Select at least two sessions to merge.", messages.WARNING)
            return
        try:
            merged = merge_sessions(session_ids=ids, mode=mode)
        except StorageError as exc:
            self.message_user(request, f"Nothing merged: {exc}", messages.ERROR)
            return
        url = reverse("admin:storage_scrapesession_change", args=[merged.pk])
        self.message_user(
            request,
            format_html(
                'Merged {} sessions ({}) into <a href="{}">{}</a> with {} pairs.',
                len(ids),
                mode,
                url,
                merged.label,
                f"{merged.pair_count or 0:,}",
            ),
            messages.SUCCESS,
        )

    @admin.action(description="Merge selected sessions into a new one (concatenate)", permissions=["add"])
    def merge_concatenate(self, request, queryset):
        self.merge(request, queryset, "concatenate")

    @admin.action(description="Merge selected sessions into a new one (interleave)", permissions=["add"])
    def merge_interleave(self, request, queryset):
        self.merge(request, queryset, "interleave")

    @admin.action(description="Remove duplicate pairs (keep the earliest)…", permissions=["change"])
    def remove_duplicates(self, request, queryset):
        """Ask how to compare pairs, then remove duplicates and say how many went from each session."""
        sessions = list(queryset.only("id", "name", "source", "pair_count"))
        if "apply" in request.POST:
            form = DedupeForm(request.POST)
            if form.is_valid():
                try:
                    result = remove_duplicates(session_ids=[s.pk for s in sessions], **form.cleaned_data)
                except StorageError as exc:
                    self.message_user(request, f"Nothing removed: {exc}", messages.ERROR)
                    return None
                labels = {s.pk: s.label for s in sessions}
                detail = "; ".join(
                    f"{labels.get(sid, sid)}: {n:,}" for sid, n in sorted(result.per_session.items()) if n
                )
                verb = "Would remove" if form.cleaned_data["dry_run"] else "Removed"
                message = f"{verb} {result.removed:,} duplicate pair{pluralize(result.removed)}" + (
                    f" ({detail})." if detail else "."
                )
                self.message_user(request, message, messages.SUCCESS)
                return None
        else:
            form = DedupeForm()
        context = {
            **self.admin_site.each_context(request),
            "title": "Remove duplicate pairs",
            "opts": self.model._meta,
            "sessions": sessions,
            "form": form,
            "action_checkbox_name": ACTION_CHECKBOX_NAME,
            "select_across": request.POST.get("select_across", "0"),
        }
        return TemplateResponse(request, "admin/storage/scrapesession/remove_duplicates.html", context)
