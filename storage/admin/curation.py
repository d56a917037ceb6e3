"""A session's curation pages: the safe-to-publish scan and the length profile (wired in by ScrapeSessionAdmin)."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect
from django.template.defaultfilters import pluralize
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html
from django.utils.http import urlencode

from storage.admin.charts import bar_chart
from storage.admin.jobs import job_url
from storage.admin.pair_filters import ScanFlagFilter
from storage.admin.pairs import SESSION_PARAM
from storage.exceptions import StorageError
from storage.jobs.curation import scan_page_url
from storage.jobs.runner import start_job
from storage.models import Job, TrainingConfig
from storage.sensitive_text import KINDS, PLACEHOLDERS
from storage.services import jobs as jobs_service
from storage.services.datasets.formats import FORMATS
from storage.services.length_profile import profile_session, sessions_without_long_pairs
from storage.services.scan_findings import scan_and_store, session_findings

KIND_TITLES = {
    "email": "E-mail addresses",
    "phone": "Phone numbers",
    "ip": "IP addresses",
    "credit_card": "Card numbers",
    "secret": "Secrets (tokens, keys, stored secret settings)",
}


def session_or_404(model_admin, request, object_id: str):
    session = model_admin.get_object(request, object_id)
    if session is None:
        raise Http404("no such session")
    if not model_admin.has_view_permission(request, session):
        raise PermissionDenied
    return session


def page_context(model_admin, request, session, title: str) -> dict:
    return {
        **model_admin.admin_site.each_context(request),
        "title": title,
        "opts": model_admin.model._meta,
        "session": session,
        "session_url": reverse("admin:storage_scrapesession_change", args=[session.pk]),
    }


def download_links(session_id: int, formats: tuple[str, ...], query: str) -> list[tuple]:
    return [
        (reverse("admin:storage_scrapesession_export", args=[session_id, fmt]) + query, FORMATS[fmt].title)
        for fmt in formats
    ]


def may_see_findings(request) -> bool:
    """Findings point into pairs' texts: only staff who may view pairs see them."""
    return request.user.has_perm("storage.view_scrapedpair")


def may_start_scan(model_admin, request) -> bool:
    """A scan writes its findings (and replaces the session's earlier ones): change permission, as a dedupe."""
    return model_admin.has_change_permission(request) and may_see_findings(request)


def start_scan(model_admin, request, session_ids: list[int], pairs: int):
    """Scan inline (small) or as a background job (over FINEFOUNDRY_INLINE_MAX_PAIRS); return where to go next."""
    if pairs > settings.FINEFOUNDRY_INLINE_MAX_PAIRS:
        label = f"Scan of session{'s' if len(session_ids) > 1 else ''} {', '.join(map(str, session_ids))}"
        job = start_job(kind="scan", label=label, params={"session_ids": session_ids}, user=request.user)
        model_admin.message_user(request, f"Started in the background: {job.label}. This page follows it.")
        return HttpResponseRedirect(job_url(job))
    try:
        results = scan_and_store(session_ids=session_ids)
    except StorageError as exc:
        model_admin.message_user(request, f"Nothing scanned: {exc}", messages.ERROR)
        return HttpResponseRedirect(reverse("admin:storage_scrapesession_changelist"))
    found = sum(result.findings for result in results)
    scanned = sum(result.pairs_scanned for result in results)
    model_admin.message_user(
        request,
        f"Scanned {scanned:,} pair{pluralize(scanned)}: {found:,} finding{pluralize(found)} stored.",
        messages.SUCCESS,
    )
    return HttpResponseRedirect(scan_page_url(session_ids[0]))


def scan_view(model_admin, request, object_id: str, *, formats: tuple[str, ...]):
    """The session's stored findings (counts per kind, masked examples); a button scans it (again); downloads."""
    session = session_or_404(model_admin, request, object_id)
    if not may_see_findings(request):
        raise PermissionDenied
    if request.method == "POST":
        if not may_start_scan(model_admin, request):
            raise PermissionDenied
        return start_scan(model_admin, request, [session.pk], session.pair_count or 0)
    stored = session_findings(session_id=session.pk)
    kinds = [
        {
            "kind": kind,
            "title": KIND_TITLES[kind],
            "placeholder": PLACEHOLDERS[kind],
            "count": stored.counts[kind] if stored else 0,
            "filter_url": flagged_list_url(session.pk, kind),
            "examples": [
                (reverse("admin:storage_scrapedpair_change", args=[example.pair_id]), example)
                for example in (stored.examples[kind] if stored else [])
            ],
        }
        for kind in KINDS
    ]
    context = {
        **page_context(model_admin, request, session, f"Safe to publish? Session {session.pk}: {session.label}"),
        "stored": stored,
        "scan_job_url": scan_job_url(request, stored.scan.job_id) if stored and stored.scan.job_id else None,
        "kinds": kinds,
        "flagged_url": flagged_list_url(session.pk),
        "can_scan": may_start_scan(model_admin, request),
        "in_background": (session.pair_count or 0) > settings.FINEFOUNDRY_INLINE_MAX_PAIRS,
        "redacted_downloads": download_links(session.pk, formats, "?redact=1"),
        "dropped_downloads": download_links(session.pk, formats, "?drop_flagged=1"),
    }
    return TemplateResponse(request, "admin/storage/scrapesession/scan.html", context)


def scan_job_url(request, job_id: int) -> str | None:
    """The page of the job that made the scan, when it is the user's to see."""
    return job_url(Job(pk=job_id)) if jobs_service.visible_jobs(request.user).filter(pk=job_id).exists() else None


def flagged_list_url(session_id: int, kind: str | None = None) -> str:
    """The pairs list of the session, only the pairs its scan flagged (as `kind`)."""
    query = urlencode({SESSION_PARAM: session_id, ScanFlagFilter.parameter_name: kind or ScanFlagFilter.FLAGGED})
    return f"{reverse('admin:storage_scrapedpair_changelist')}?{query}"


class ProfileForm(forms.Form):
    max_seq_length = forms.IntegerField(required=False, min_value=1, label="max_seq_length")
    config = forms.ChoiceField(required=False, label="or from the saved training config")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        names = TrainingConfig.objects.order_by("name").values_list("name", flat=True)
        self.fields["config"].choices = [("", "—"), *((name, name) for name in names)]

    def clean(self):
        data = super().clean()
        if data.get("max_seq_length") is not None and data.get("config"):
            raise forms.ValidationError("Give a max_seq_length or choose a config, not both.")
        return data


def profile_view(model_admin, request, object_id: str):
    """Length histograms in characters and tokens, the share over max_seq_length, and a session without them."""
    session = session_or_404(model_admin, request, object_id)
    tokenizer = settings.FINEFOUNDRY_TOKENIZER
    if request.method == "POST":
        return create_without_long_pairs(model_admin, request, session, tokenizer)
    form = ProfileForm(request.GET or None)
    profile = error = None
    if form.is_bound and not form.is_valid():
        error = "; ".join(message for errors in form.errors.values() for message in errors)
    else:
        data = form.cleaned_data if form.is_bound else {}
        try:
            profile = profile_session(
                session_id=session.pk,
                tokenizer_path=tokenizer,
                max_seq_length=data.get("max_seq_length"),
                config_name=data.get("config") or None,
            )
        except StorageError as exc:
            error = str(exc)
    charts = []
    if profile is not None:
        token_unit = "tokens" if profile.exact else "tokens (estimated)"
        for unit, summaries in (("characters", profile.chars), (token_unit, profile.tokens)):
            for side, summary in summaries.items():
                charts.append(
                    {
                        "title": f"{side} length, {unit}",
                        "summary": summary,
                        "svg": bar_chart(summary.histogram.labelled(), width=460),
                    }
                )
    context = {
        **page_context(model_admin, request, session, f"Length profile: {session.label}"),
        "form": form,
        "profile": profile,
        "error": error,
        "charts": charts,
        "can_add": model_admin.has_add_permission(request),
    }
    return TemplateResponse(request, "admin/storage/scrapesession/profile.html", context)


def create_without_long_pairs(model_admin, request, session, tokenizer):
    if not model_admin.has_add_permission(request):
        raise PermissionDenied
    back = reverse("admin:storage_scrapesession_profile", args=[session.pk])
    try:
        max_tokens = int(request.POST.get("max_tokens", ""))
        derived = sessions_without_long_pairs(session_id=session.pk, max_tokens=max_tokens, tokenizer_path=tokenizer)
    except ValueError as exc:  # StorageError is a ValueError too
        message = "max_tokens must be a whole number" if not isinstance(exc, StorageError) else str(exc)
        model_admin.message_user(request, f"No session created: {message}", messages.ERROR)
        return HttpResponseRedirect(back)
    model_admin.message_user(
        request,
        format_html(
            "Created {} with {} pairs of at most {} tokens ({} left out).",
            derived.label,
            f"{derived.pair_count or 0:,}",
            f"{max_tokens:,}",
            f"{derived.metadata['removed']:,}",
        ),
        messages.SUCCESS,
    )
    return HttpResponseRedirect(reverse("admin:storage_scrapesession_change", args=[derived.pk]))
