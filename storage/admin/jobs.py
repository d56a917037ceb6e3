"""Background jobs: the list (state, progress, duration, result, error), a job's page, its download and a JSON status.

Everyone with admin access sees the jobs page, listing only the jobs they may see
(storage/services/jobs.py `visible_jobs`); a download also needs the view permission of the data.
The pages refresh themselves while a job runs (storage/static/storage/jobs.js polls `status/`).
"""

from __future__ import annotations

from contextvars import ContextVar

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404, JsonResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from storage.admin.base import ReadOnlyModelAdmin
from storage.models import Job
from storage.services import jobs as jobs_service

MAX_STATUS_IDS = 100
# The user a page is rendered for (a ModelAdmin is shared by every request's thread; display methods get no request).
_viewer: ContextVar = ContextVar("job_page_viewer")


def duration_text(job: Job) -> str:
    if job.started_at is None:
        return "—"
    seconds = int(((job.finished_at or timezone.now()) - job.started_at).total_seconds())
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"


def progress_html(job: Job):
    """A bar whose width the static JS sets from data attributes (no inline style under the CSP)."""
    total = job.progress_total or 0
    done = job.progress_done or 0
    if total:
        text = f"{done:,} / {total:,}"
    elif job.status == Job.Status.SUCCEEDED:
        text = "done"
    else:
        text = job.message or job.get_status_display()
    return format_html(
        '<div class="ff-progress" data-job-id="{}" data-job-status="{}" data-done="{}" data-total="{}">'
        '<span class="ff-progress-bar"></span></div> <span class="ff-progress-text">{}</span>',
        job.pk,
        job.status,
        done,
        total,
        text,
    )


# The counts the jobs list shows in one line; a job's own page shows the whole report.
SUMMARY_KEYS = ("pairs", "removed", "findings", "clusters")


def result_html(job: Job, user, *, compact: bool = False):
    """The report (a link to a session it made, counts), a download link for a file, or the error."""
    if job.status == Job.Status.FAILED:
        error = job.error or "failed"
        if compact and len(error) > 300:
            error = error[:300] + "…"
        return format_html('<pre class="ff-job-error">{}</pre>', error)
    if job.status != Job.Status.SUCCEEDED:
        return job.message or "—"
    parts = []
    report = job.result if isinstance(job.result, dict) else {}
    if report.get("session_url"):
        parts.append(
            format_html(
                '<a class="ff-job-session" href="{}">Open session {}</a>',
                report["session_url"],
                report.get("session_id"),
            )
        )
    if report.get("open_url") and str(report["open_url"]).startswith("/"):
        # A page of this admin showing the result (a scan's findings, near-duplicate clusters to review).
        # On the job's own page a button, so it stands apart from the download link beside it.
        css = "ff-job-open" if compact else "button ff-job-open"
        parts.append(format_html('<a class="{}" href="{}">{}</a>', css, report["open_url"], report.get("open_label")))
    if job.result_file and user is not None and jobs_service.may_download(user, job):
        parts.append(
            format_html(
                '<a class="ff-job-download" href="{}">Download {}</a>',
                reverse("admin:storage_job_download", args=[job.pk]),
                job.result_file.rsplit("/", 1)[-1],
            )
        )
    if compact:
        summary = ", ".join(
            f"{report[key]:,} {key if report[key] != 1 else key.removesuffix('s')}"
            for key in SUMMARY_KEYS
            if isinstance(report.get(key), int)
        )
        if summary:
            parts.append(format_html('<span class="ff-job-summary">{}</span>', summary))
        return format_html_join(" · ", "{}", ((part,) for part in parts))
    shown = {
        k: v
        for k, v in report.items()
        if k not in ("session_url", "open_url", "open_label") and not isinstance(v, dict | list)
    }
    if shown:
        parts.append(
            format_html(
                '<dl class="ff-job-report">{}</dl>',
                format_html_join(
                    "",
                    "<dt>{}</dt><dd>{}</dd>",
                    ((k, f"{v:,}" if isinstance(v, int) and not isinstance(v, bool) else v) for k, v in shown.items()),
                ),
            )
        )
    for key, value in report.items():
        if isinstance(value, dict) and value:
            parts.append(
                format_html(
                    '<dl class="ff-job-report"><dt>{}</dt><dd>{}</dd></dl>',
                    key,
                    ", ".join(f"{k}: {v:,}" if isinstance(v, int) else f"{k}: {v}" for k, v in value.items()),
                )
            )
        elif isinstance(value, list) and value:
            parts.append(
                format_html(
                    "<details><summary>{} ({})</summary><pre>{}</pre></details>",
                    key,
                    len(value),
                    "\n".join(map(str, value)),
                )
            )
    return format_html_join(" ", "{}", ((part,) for part in parts))


@admin.register(Job)
class JobAdmin(ReadOnlyModelAdmin):
    list_display = (
        "id",
        "label_column",
        "status_column",
        "progress_column",
        "duration_column",
        "result_column",
        "requested_by",
        "created_at",
    )
    list_display_links = ("id", "label_column")
    list_filter = ("status", "kind")
    fields = (
        "label",
        "kind",
        "status_column",
        "progress_column",
        "duration_column",
        "report_column",
        "requested_by",
        "created_at",
        "started_at",
        "finished_at",
    )
    readonly_fields = fields
    list_per_page = 50

    class Media:
        css = {"all": ("storage/admin.css",)}
        js = ("storage/jobs.js",)

    def get_queryset(self, request):
        return jobs_service.visible_jobs(request.user).select_related("requested_by")

    # Every admin user has a jobs page: the queryset shows them only their own (all for a superuser).
    def has_module_permission(self, request) -> bool:
        return request.user.is_active and request.user.is_staff

    def has_view_permission(self, request, obj=None) -> bool:
        return request.user.is_active and request.user.is_staff

    def has_delete_permission(self, request, obj=None) -> bool:
        return request.user.is_superuser

    def changelist_view(self, request, extra_context=None):
        _viewer.set(request.user)
        return super().changelist_view(request, extra_context)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        _viewer.set(request.user)
        return super().change_view(request, object_id, form_url, extra_context)

    @admin.display(description="job")
    def label_column(self, job: Job) -> str:
        return job.label

    @admin.display(description="state", ordering="status")
    def status_column(self, job: Job):
        return format_html('<span class="ff-job-state ff-job-{}">{}</span>', job.status, job.get_status_display())

    @admin.display(description="progress")
    def progress_column(self, job: Job):
        return progress_html(job)

    @admin.display(description="duration")
    def duration_column(self, job: Job) -> str:
        return duration_text(job)

    @admin.display(description="result")
    def result_column(self, job: Job):
        return result_html(job, _viewer.get(None), compact=True)

    @admin.display(description="result")
    def report_column(self, job: Job):
        return result_html(job, _viewer.get(None))

    def get_urls(self):
        return [
            path("status/", self.admin_site.admin_view(self.status_view), name="storage_job_status"),
            path("<int:job_id>/download/", self.admin_site.admin_view(self.download_view), name="storage_job_download"),
            *super().get_urls(),
        ]

    def status_view(self, request):
        """{"jobs": [{"id", "status", "done", "total", "message", "finished"}]} for the ids asked, among the visible."""
        try:
            ids = [int(part) for part in request.GET.get("ids", "").split(",") if part][:MAX_STATUS_IDS]
        except ValueError:
            ids = []
        jobs = jobs_service.visible_jobs(request.user).filter(pk__in=ids)
        return JsonResponse(
            {
                "jobs": [
                    {
                        "id": job.pk,
                        "status": job.status,
                        "done": job.progress_done,
                        "total": job.progress_total,
                        "message": job.message,
                        "finished": job.finished,
                    }
                    for job in jobs
                ]
            }
        )

    def download_view(self, request, job_id: int):
        job = jobs_service.visible_jobs(request.user).filter(pk=job_id).first()
        if job is None:
            raise Http404("no such job")
        if not jobs_service.may_download(request.user, job):
            raise PermissionDenied
        file_path = jobs_service.result_path(job)
        if file_path is None:
            raise Http404("this job has no file (or it was removed)")
        return FileResponse(file_path.open("rb"), as_attachment=True, filename=file_path.name)


def job_url(job: Job) -> str:
    """Where an action that started a job sends the user: the job's page."""
    return reverse("admin:storage_job_change", args=[job.pk])
