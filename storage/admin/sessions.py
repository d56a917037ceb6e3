"""Scrape sessions: browse, export (streamed), merge, dedupe and delete without ever listing every pair."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.core.exceptions import PermissionDenied
from django.db.models.functions import Substr
from django.http import Http404, HttpResponseRedirect, StreamingHttpResponse
from django.template.defaultfilters import pluralize
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from storage.admin import curation
from storage.admin.base import FineFoundryModelAdmin
from storage.admin.display import PREVIEW_SCAN_CHARS, PrettyJSONField, preview
from storage.admin.jobs import job_url
from storage.admin.near_duplicate_review import NearDuplicateReviewMixin
from storage.admin.pair_findings import masked_head
from storage.admin.pairs import SESSION_PARAM
from storage.exceptions import StorageError
from storage.fields import SortableTimestamp
from storage.jobs.kinds import supports_skip_invalid
from storage.jobs.runner import start_job
from storage.models import ScrapedPair, ScrapeSession
from storage.services import jobs as jobs_service
from storage.services import pair_edits
from storage.services import sessions as sessions_service
from storage.services.datasets import conversations, exporting, importing
from storage.services.dedupe import remove_duplicates
from storage.services.merge import merge_sessions, unique_name
from storage.services.runs import runs_using_sessions
from storage.services.scan import PairScanner

FIRST_PAIRS = 10


def session_metadata_problem(metadata) -> str | None:
    return conversations.metadata_problem(metadata, of_session=True)


# Every export format is offered for download, in the order of FORMATS.
DOWNLOAD_FORMATS = tuple(exporting.FORMATS)


def stream_export(
    session_ids: list[int], fmt: str, *, redact: bool = False, drop_flagged: bool = False
) -> StreamingHttpResponse:
    """A download of the sessions' pairs, produced chunk by chunk as the browser reads it."""
    export_format = exporting.export_format(fmt)
    chunks = exporting.iter_export_chunks(session_ids=session_ids, fmt=fmt, redact=redact, drop_flagged=drop_flagged)
    response = StreamingHttpResponse(chunks, content_type=f"{export_format.content_type}; charset=utf-8")
    filename = exporting.default_filename(session_ids, fmt)
    if redact or drop_flagged:
        filename = filename.replace(".", ".redacted." if redact else ".unflagged.", 1)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def download_action(fmt: str):
    title = exporting.FORMATS[fmt].title

    @admin.action(description=f"Download as {title}", permissions=["view"])
    def download(modeladmin, request, queryset):
        try:
            return stream_export(sorted(queryset.values_list("pk", flat=True)), fmt)
        except StorageError as exc:
            modeladmin.message_user(request, f"Nothing exported: {exc}", messages.ERROR)
            return None

    download.__name__ = f"download_{fmt}"
    return download


EXAMPLE_CHARS = 120


class DedupeForm(forms.Form):
    normalize = forms.BooleanField(required=False, label="Ignore case and extra whitespace when comparing pairs")
    across_sessions = forms.BooleanField(
        required=False, label="Also remove a pair that another selected session already has (the lower pair id is kept)"
    )


class MergeForm(forms.Form):
    name = forms.CharField(
        max_length=200, label="Name of the new session", widget=forms.TextInput(attrs={"class": "vTextField"})
    )
    mode = forms.ChoiceField(
        choices=[
            ("concatenate", "Concatenate: every pair of the first session, then the second, …"),
            ("interleave", "Interleave: the first pair of each session, then the second of each, …"),
        ],
        widget=forms.RadioSelect,
        initial="concatenate",
    )


class ExportForm(forms.Form):
    fmt = forms.ChoiceField(label="Format", choices=[(fmt, exporting.FORMATS[fmt].title) for fmt in DOWNLOAD_FORMATS])


class ImportForm(forms.Form):
    file = forms.FileField(label="File", help_text="JSON, JSONL or CSV: what manage.py import_pairs takes.")
    fmt = forms.ChoiceField(label="Format", choices=[(fmt, fmt) for fmt in importing.IMPORT_FORMATS], initial="auto")
    source = forms.CharField(required=False, label="Source of the new session", help_text="Default: import")
    name = forms.CharField(required=False, label="Name of the new session")
    session_id = forms.IntegerField(
        required=False, min_value=1, label="Or add to session (id)", help_text="Leave empty to make a new session."
    )
    skip_invalid = forms.BooleanField(
        required=False, label="Skip invalid records (import the rest and list each skipped one)"
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not supports_skip_invalid():
            del self.fields["skip_invalid"]

    def clean(self):
        data = super().clean()
        if data.get("session_id") and (data.get("source") or data.get("name")):
            raise forms.ValidationError(
                "Give either a session to add to, or a source/name for a new session, not both."
            )
        return data


def session_pairs_total(sessions) -> int:
    return sum(session.pair_count or 0 for session in sessions)


@admin.register(ScrapeSession)
class ScrapeSessionAdmin(NearDuplicateReviewMixin, FineFoundryModelAdmin):
    # The id first: every command takes a SESSION_ID.
    list_display = ("id", "label_column", "source", "dataset_format", "pair_count_column", "created_column")
    list_display_links = ("id", "label_column")
    list_filter = ("source", "dataset_format", ("created_at", admin.DateFieldListFilter))
    search_fields = ("name", "source", "source_details")
    search_help_text = "Search names, sources and source details."
    readonly_fields = ("pair_count", "created_at", "pairs_link", "curation_links", "download_links", "first_pairs")
    fieldsets = (
        (None, {"fields": ("name", "source", "source_details", "dataset_format")}),
        ("Pairs", {"fields": ("pair_count", "pairs_link", "curation_links", "download_links", "first_pairs")}),
        ("Metadata", {"fields": ("metadata", "created_at")}),
    )
    actions = [
        *(download_action(fmt) for fmt in DOWNLOAD_FORMATS),
        "export_to_file",
        "merge",
        "remove_duplicates",
        "find_near_duplicates",
        "scan_for_findings",
        "cap_answers_per_prompt",
    ]
    change_list_template = "admin/storage/scrapesession/change_list.html"

    def change_view(self, request, object_id, form_url="", extra_context=None):
        session = self.get_object(request, object_id)
        if session is not None:
            # "Session 12: name" instead of the name alone: commands take the id.
            extra_context = {**(extra_context or {}), "subtitle": f"Session {session.pk}: {session.label}"}
        return super().change_view(request, object_id, form_url, extra_context)

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        if db_field.name == "metadata":
            return PrettyJSONField(
                required=False, rows=8, label="Metadata", object_only=True, problem=session_metadata_problem
            )
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

    @admin.display(description="curate")
    def curation_links(self, session: ScrapeSession):
        if session.pk is None:
            return "—"
        return format_html(
            '<a class="button" href="{}">Safe to publish? Scan for personal data and secrets</a> '
            '<a class="button" href="{}">Length profile</a>',
            reverse("admin:storage_scrapesession_scan", args=[session.pk]),
            reverse("admin:storage_scrapesession_profile", args=[session.pk]),
        )

    @admin.display(description="download")
    def download_links(self, session: ScrapeSession):
        if session.pk is None:
            return "—"
        links = (
            (reverse("admin:storage_scrapesession_export", args=[session.pk, fmt]), exporting.FORMATS[fmt].title)
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
            .annotate(i=Substr("input_text", 1, PREVIEW_SCAN_CHARS), o=Substr("output_text", 1, PREVIEW_SCAN_CHARS))
            .values_list("id", "i", "o")[:FIRST_PAIRS]
        )
        scanner = PairScanner()  # what the previews show is scanned and masked, as in the pairs list

        def shown(head: str) -> str:
            return preview(masked_head(head, scanner.find(head or "")))

        rows = [(reverse("admin:storage_scrapedpair_change", args=[pk]), pk, shown(i), shown(o)) for pk, i, o in rows]
        return render_to_string("admin/storage/scrapesession/first_pairs.html", {"rows": rows})

    def get_urls(self):
        return [
            path("import/", self.admin_site.admin_view(self.import_view), name="storage_scrapesession_import"),
            path(
                "<path:object_id>/export/<str:fmt>/",
                self.admin_site.admin_view(self.export_view),
                name="storage_scrapesession_export",
            ),
            path(
                "<path:object_id>/scan/",
                self.admin_site.admin_view(self.scan_view),
                name="storage_scrapesession_scan",
            ),
            path(
                "<path:object_id>/profile/",
                self.admin_site.admin_view(self.profile_view),
                name="storage_scrapesession_profile",
            ),
            *self.near_duplicate_urls(),
            *super().get_urls(),
        ]

    def scan_view(self, request, object_id: str):
        return curation.scan_view(self, request, object_id, formats=DOWNLOAD_FORMATS)

    def profile_view(self, request, object_id: str):
        return curation.profile_view(self, request, object_id)

    def export_view(self, request, object_id: str, fmt: str):
        session = self.get_object(request, object_id)
        if session is None:
            raise Http404("no such session")
        if not self.has_view_permission(request, session):
            raise PermissionDenied
        try:
            return stream_export(
                [session.pk], fmt, redact="redact" in request.GET, drop_flagged="drop_flagged" in request.GET
            )
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

    def action_page(self, request, template: str, title: str, sessions, **context):
        context = {
            **self.admin_site.each_context(request),
            "title": title,
            "opts": self.model._meta,
            "sessions": sessions,
            "action_checkbox_name": ACTION_CHECKBOX_NAME,
            "select_across": request.POST.get("select_across", "0"),
            **context,
        }
        return TemplateResponse(request, f"admin/storage/scrapesession/{template}", context)

    def started(self, request, job) -> HttpResponseRedirect:
        self.message_user(request, f"Started in the background: {job.label}. This page follows it.", messages.INFO)
        return HttpResponseRedirect(job_url(job))

    @admin.action(description="Export to file… (a background job, then a download)", permissions=["view"])
    def export_to_file(self, request, queryset):
        sessions = list(queryset.order_by("id").only("id", "name", "source", "pair_count"))
        form = ExportForm(request.POST if "apply" in request.POST else None)
        if form.is_valid():
            ids = [s.pk for s in sessions]
            fmt = form.cleaned_data["fmt"]
            label = f"Export of session{'s' if len(ids) > 1 else ''} {', '.join(map(str, ids))} as {fmt}"
            return self.started(
                request,
                start_job(kind="export", label=label, params={"session_ids": ids, "fmt": fmt}, user=request.user),
            )
        return self.action_page(
            request, "export_to_file.html", "Export to a file", sessions, form=form, action="export_to_file"
        )

    @admin.action(description="Merge selected sessions into a new one…", permissions=["add"])
    def merge(self, request, queryset):
        """Confirm the sessions (in id order), the new session's name and the mode; then merge (or start a job)."""
        sessions = list(queryset.order_by("id").only("id", "name", "source", "pair_count"))
        ids = [s.pk for s in sessions]
        if len(ids) < 2:
            self.message_user(request, "Select at least two sessions to merge.", messages.WARNING)
            return None
        if "apply" in request.POST:
            form = MergeForm(request.POST)
        else:
            form = MergeForm(initial={"name": unique_name(session_ids=ids), "mode": "concatenate"})
        if form.is_valid():
            name, mode = form.cleaned_data["name"], form.cleaned_data["mode"]
            if session_pairs_total(sessions) > settings.FINEFOUNDRY_INLINE_MAX_PAIRS:
                params = {"session_ids": ids, "mode": mode, "name": name}
                return self.started(
                    request, start_job(kind="merge", label=f"Merge into “{name}”", params=params, user=request.user)
                )
            try:
                merged = merge_sessions(session_ids=ids, mode=mode, name=name)
            except StorageError as exc:
                self.message_user(request, f"Nothing merged: {exc}", messages.ERROR)
                return None
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
            return None
        return self.action_page(
            request,
            "merge.html",
            "Merge sessions",
            sessions,
            form=form,
            action="merge",
            total=session_pairs_total(sessions),
            inline_max=settings.FINEFOUNDRY_INLINE_MAX_PAIRS,
        )

    @admin.action(description="Find near-duplicates…", permissions=["change"])
    def find_near_duplicates(self, request, queryset):
        return self.find_near_duplicates_action(request, queryset)

    @admin.action(description="Scan for personal data and secrets (findings stored)", permissions=["change"])
    def scan_for_findings(self, request, queryset):
        """Scan the selected sessions and store their findings: inline when small, else a background job."""
        if not curation.may_start_scan(self, request):
            raise PermissionDenied
        sessions = list(queryset.order_by("id").only("id", "pair_count"))
        return curation.start_scan(self, request, [s.pk for s in sessions], session_pairs_total(sessions))

    @admin.action(description="Cap answers per prompt…", permissions=["change"])
    def cap_answers_per_prompt(self, request, queryset):
        return self.cap_answers(request, queryset)

    @admin.action(description="Remove duplicate pairs (keep the earliest)…", permissions=["change"])
    def remove_duplicates(self, request, queryset):
        """A dry run first (counts and example pairs), then a button that removes them (in a job when large)."""
        sessions = list(queryset.order_by("id").only("id", "name", "source", "pair_count"))
        ids = [s.pk for s in sessions]
        form = DedupeForm(request.POST if "options" in request.POST else None)
        options = form.cleaned_data if form.is_valid() else {"normalize": False, "across_sessions": False}
        labels = {s.pk: s.label for s in sessions}
        try:
            if "apply" in request.POST:
                if session_pairs_total(sessions) > settings.FINEFOUNDRY_INLINE_MAX_PAIRS:
                    params = {"session_ids": ids, **options}
                    label = f"Remove duplicates from session{'s' if len(ids) > 1 else ''} {', '.join(map(str, ids))}"
                    return self.started(
                        request, start_job(kind="dedupe", label=label, params=params, user=request.user)
                    )
                result = remove_duplicates(session_ids=ids, **options)
                detail = "; ".join(
                    f"{labels.get(sid, sid)}: {n:,}" for sid, n in sorted(result.per_session.items()) if n
                )
                message = f"Removed {result.removed:,} duplicate pair{pluralize(result.removed)}" + (
                    f" ({detail})." if detail else "."
                )
                self.message_user(request, message, messages.SUCCESS)
                return None
            preview = remove_duplicates(session_ids=ids, dry_run=True, **options)
        except StorageError as exc:
            self.message_user(request, f"Nothing removed: {exc}", messages.ERROR)
            return None
        return self.action_page(
            request,
            "remove_duplicates.html",
            "Remove duplicate pairs",
            sessions,
            form=form if form.is_bound else DedupeForm(initial=options),
            action="remove_duplicates",
            preview=preview,
            per_session=[(labels.get(sid, sid), n) for sid, n in preview.per_session.items()],
            examples=self.duplicate_examples(preview.examples),
            in_background=session_pairs_total(sessions) > settings.FINEFOUNDRY_INLINE_MAX_PAIRS,
        )

    def duplicate_examples(self, examples: list[tuple[int, int]]) -> list[dict]:
        ids = {pk for pair in examples for pk in pair}
        rows = {
            pk: (session_id, i, o)
            for pk, session_id, i, o in ScrapedPair.objects.filter(pk__in=ids)
            .annotate(i=Substr("input_text", 1, EXAMPLE_CHARS + 1), o=Substr("output_text", 1, EXAMPLE_CHARS + 1))
            .values_list("id", "session_id", "i", "o")
        }
        shown = []
        for kept, duplicate in examples:
            if kept in rows and duplicate in rows:
                shown.append(
                    {
                        "kept": kept,
                        "kept_session": rows[kept][0],
                        "duplicate": duplicate,
                        "duplicate_session": rows[duplicate][0],
                        "input": preview(rows[duplicate][1], limit=EXAMPLE_CHARS),
                        "output": preview(rows[duplicate][2], limit=EXAMPLE_CHARS),
                    }
                )
        return shown

    def import_view(self, request):
        """Upload a file and import it as a background job; the job's page reports the new session or the error."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = ImportForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            upload = form.cleaned_data["file"]
            limit = settings.FINEFOUNDRY_MAX_UPLOAD_BYTES
            if upload.size > limit:
                form.add_error("file", f"The file is {upload.size:,} bytes; the limit is {limit:,} bytes.")
            else:
                try:
                    saved = jobs_service.save_upload(chunks=upload.chunks(), filename=upload.name, max_bytes=limit)
                except StorageError as exc:
                    form.add_error("file", str(exc))
                else:
                    params = {
                        "upload": str(saved),
                        "filename": upload.name,
                        "fmt": form.cleaned_data["fmt"],
                        "source": form.cleaned_data["source"] or None,
                        "name": form.cleaned_data["name"] or None,
                        "session_id": form.cleaned_data["session_id"],
                        "skip_invalid": bool(form.cleaned_data.get("skip_invalid")),
                    }
                    job = start_job(kind="import", label=f"Import of {upload.name}", params=params, user=request.user)
                    return self.started(request, job)
        context = {
            **self.admin_site.each_context(request),
            "title": "Import pairs from a file",
            "opts": self.model._meta,
            "form": form,
            "limit_mb": settings.FINEFOUNDRY_MAX_UPLOAD_BYTES // (1024 * 1024),
        }
        return TemplateResponse(request, "admin/storage/scrapesession/import.html", context)
