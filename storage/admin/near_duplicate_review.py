"""The near-duplicate review page and the answers-per-prompt cap, reached from the sessions list's actions.

Sessions of up to FINEFOUNDRY_INLINE_MAX_PAIRS pairs are clustered inside the request, as before
(signatures are stored, so only new or edited pairs are signed). Larger ones are clustered by a background
job ("near-duplicates", storage/jobs/curation.py) that writes the clusters to its file; the job's page links
to this page with `job=<id>`, which then reads the clusters from that file instead of computing them.
Removals go through `remove_pairs`, which keeps pair_count exact, and only pairs of the sessions under review
can be removed; a pair removed (or deleted elsewhere) since the job ran is simply left out of its cluster.
"""

from __future__ import annotations

import json

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse

from storage.admin.jobs import job_url
from storage.admin.word_diff import marked_words
from storage.exceptions import StorageError
from storage.jobs.curation import review_page_url
from storage.jobs.runner import start_job
from storage.models import Job, ScrapedPair, ScrapeSession
from storage.services import jobs as jobs_service
from storage.services.answer_cap import cap_answers_per_prompt
from storage.services.near_duplicates import NearDuplicates, find_near_duplicates, remove_pairs
from storage.services.scan import PairScanner

CLUSTERS_PER_PAGE = 20


class ReviewForm(forms.Form):
    sessions = forms.CharField(widget=forms.HiddenInput)
    threshold = forms.FloatField(min_value=0.5, max_value=1.0, initial=0.8, label="Jaccard threshold")
    job = forms.IntegerField(required=False, min_value=1, widget=forms.HiddenInput)

    def clean_sessions(self) -> list[int]:
        try:
            ids = [int(part) for part in self.cleaned_data["sessions"].split(",") if part]
        except ValueError as exc:
            raise forms.ValidationError("sessions must be ids separated by commas") from exc
        if not ids:
            raise forms.ValidationError("give at least one session")
        return ids


class AnswerCapForm(forms.Form):
    max_answers = forms.IntegerField(min_value=1, initial=3, label="Keep at most this many answers per prompt")


def _page_of_clusters(clusters: list[list[int]], given: set[int], page: str | None):
    """The page's clusters as lists of {pair, left, right, removable}, each member marked against the first."""
    current = Paginator(clusters, CLUSTERS_PER_PAGE).get_page(page)
    wanted = [pair_id for cluster in current.object_list for pair_id in cluster]
    pairs = ScrapedPair.objects.in_bulk(wanted)
    rows = []
    scanner = PairScanner()
    # Every text is shown, and compared, with what the scan finds in it masked: a pasted token or an
    # address never reaches the page (two copies of one token mask alike, so the marks stay right).
    shown = {pk: (scanner.redact(p.input_text)[0], scanner.redact(p.output_text)[0]) for pk, p in pairs.items()}
    for cluster in current.object_list:
        members = [pairs[pair_id] for pair_id in cluster if pair_id in pairs]
        if len(members) < 2:
            continue
        first_input, first_output = shown[members[0].pk]
        entries = []
        for position, pair in enumerate(members):
            input_text, output_text = shown[pair.pk]
            _, input_html = marked_words(first_input, input_text)
            _, output_html = marked_words(first_output, output_text)
            entries.append(
                {
                    "pair": pair,
                    "input": input_html if position else input_text,
                    "output": output_html if position else output_text,
                    "removable": pair.session_id in given,
                    "first": position == 0,
                }
            )
        rows.append(entries)
    return current, rows


class NearDuplicateReviewMixin:
    """Adds the review page, its actions and the answer cap to ScrapeSessionAdmin."""

    def near_duplicate_urls(self):
        return [
            path(
                "near-duplicates/",
                self.admin_site.admin_view(self.near_duplicates_view),
                name="storage_scrapesession_near_duplicates",
            ),
        ]

    def review_url(self, session_ids: list[int], threshold: float = 0.8, job_id: int | None = None) -> str:
        return review_page_url(session_ids=session_ids, threshold=threshold, job_id=job_id)

    def find_near_duplicates_action(self, request, queryset):
        """Open the review page for the selected sessions; over the inline limit, cluster them in a job first."""
        sessions = list(queryset.order_by("id").only("id", "pair_count"))
        ids = [s.pk for s in sessions]
        if sum(s.pair_count or 0 for s in sessions) > settings.FINEFOUNDRY_INLINE_MAX_PAIRS:
            return self.start_near_duplicates_job(request, ids, 0.8)
        return HttpResponseRedirect(self.review_url(ids))

    def start_near_duplicates_job(self, request, session_ids: list[int], threshold: float):
        label = f"Near-duplicates in session{'s' if len(session_ids) > 1 else ''} {', '.join(map(str, session_ids))}"
        job = start_job(
            kind="near-duplicates",
            label=f"{label} (threshold {threshold})",
            params={"session_ids": session_ids, "threshold": threshold},
            user=request.user,
        )
        self.message_user(request, f"Started in the background: {job.label}. This page follows it.", messages.INFO)
        return HttpResponseRedirect(job_url(job))

    def clusters_of_job(self, request, job_id: int, session_ids: list[int], threshold: float) -> NearDuplicates:
        """The clusters a near-duplicates job of these sessions and threshold stored (a job the user may see)."""
        job = jobs_service.visible_jobs(request.user).filter(pk=job_id, kind="near-duplicates").first()
        if job is None or job.params.get("session_ids") != session_ids or job.params.get("threshold") != threshold:
            raise StorageError(f"no near-duplicates job {job_id} of these sessions and threshold is yours to see")
        if job.status != Job.Status.SUCCEEDED:
            raise StorageError(f"job {job_id} is {job.get_status_display().lower()}, not finished")
        path = jobs_service.result_path(job)
        if path is None:
            raise StorageError(f"the clusters of job {job_id} are gone (its file was removed): run it again")
        try:
            clusters = json.loads(path.read_text(encoding="utf-8"))["clusters"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise StorageError(f"the clusters file of job {job_id} cannot be read ({exc}): run it again") from None
        report = job.result or {}
        return NearDuplicates(
            clusters=clusters, pairs=report.get("pairs", 0), signed=report.get("signed", 0), candidates=0
        )

    def near_duplicates_view(self, request):
        if not self.has_change_permission(request) or not request.user.has_perm("storage.delete_scrapedpair"):
            raise PermissionDenied
        form = ReviewForm(request.POST if request.method == "POST" else request.GET or None)
        if not form.is_valid():
            self.message_user(request, f"Cannot review: {form.errors.as_text()}", messages.ERROR)
            return HttpResponseRedirect(reverse("admin:storage_scrapesession_changelist"))
        session_ids, threshold = form.cleaned_data["sessions"], form.cleaned_data["threshold"]
        job_id = form.cleaned_data.get("job")
        back = self.review_url(session_ids, threshold, job_id)
        sessions = ScrapeSession.objects.filter(pk__in=session_ids).order_by("id")
        large = sum(s.pair_count or 0 for s in sessions) > settings.FINEFOUNDRY_INLINE_MAX_PAIRS
        if request.method == "POST" and "start" in request.POST:
            return self.start_near_duplicates_job(request, session_ids, threshold)
        if job_id is None and large:
            # Too many pairs to cluster inside a request: offer the job (a POST), never start one on a GET.
            context = {
                **self.admin_site.each_context(request),
                "title": "Near-duplicate pairs",
                "opts": self.model._meta,
                "form": form,
                "sessions": sessions,
                "total": sum(s.pair_count or 0 for s in sessions),
                "session_param": ",".join(map(str, session_ids)),
            }
            return TemplateResponse(request, "admin/storage/scrapesession/near_duplicates_start.html", context)
        try:
            if job_id is not None:
                found = self.clusters_of_job(request, job_id, session_ids, threshold)
            else:
                found = find_near_duplicates(session_ids=session_ids, threshold=threshold)
        except StorageError as exc:
            self.message_user(request, f"Cannot review: {exc}", messages.ERROR)
            return HttpResponseRedirect(reverse("admin:storage_scrapesession_changelist"))
        given = set(session_ids)
        page, rows = _page_of_clusters(found.clusters, given, request.GET.get("page") or request.POST.get("page"))
        if request.method == "POST":
            if "keep_one" in request.POST:
                chosen = [e["pair"].pk for entries in rows for e in entries if e["removable"] and not e["first"]]
            else:
                chosen = [int(v) for v in request.POST.getlist("remove") if v.isdigit()]
            removable = set(
                ScrapedPair.objects.filter(pk__in=chosen, session_id__in=session_ids).values_list("pk", flat=True)
            )
            doomed = sorted(removable)
            if not doomed:
                self.message_user(request, "Nothing marked for removal.", messages.WARNING)
                return HttpResponseRedirect(back)
            if "confirm" in request.POST:
                per_session = remove_pairs(pair_ids=doomed)
                removed = sum(per_session.values())
                self.message_user(request, f"Removed {removed:,} near-duplicate pair(s).", messages.SUCCESS)
                return HttpResponseRedirect(back)
            context = {
                **self.admin_site.each_context(request),
                "title": "Remove near-duplicate pairs?",
                "opts": self.model._meta,
                "doomed": doomed,
                "form": form,
                "page": page.number,
                "back": back,
            }
            return TemplateResponse(request, "admin/storage/scrapesession/near_duplicates_confirm.html", context)
        context = {
            **self.admin_site.each_context(request),
            "title": "Near-duplicate pairs",
            "job": jobs_service.visible_jobs(request.user).filter(pk=job_id).first() if job_id else None,
            "large": large,
            "opts": self.model._meta,
            "form": form,
            "sessions": sessions,
            "found": found,
            "page": page,
            "rows": rows,
            "session_param": ",".join(map(str, session_ids)),
        }
        return TemplateResponse(request, "admin/storage/scrapesession/near_duplicates.html", context)

    def cap_answers(self, request, queryset):
        """Ask for N, preview what goes, then keep at most N answers per normalised prompt."""
        sessions = list(queryset.only("id", "name", "source", "pair_count"))
        ids = [s.pk for s in sessions]
        form = AnswerCapForm(request.POST if "max_answers" in request.POST else None)
        preview = None
        if form.is_valid():
            apply = "apply" in request.POST
            try:
                result = cap_answers_per_prompt(
                    session_ids=ids, max_answers=form.cleaned_data["max_answers"], dry_run=not apply
                )
            except StorageError as exc:
                self.message_user(request, f"Nothing removed: {exc}", messages.ERROR)
                return None
            if apply:
                self.message_user(
                    request,
                    f"Removed {len(result.removed):,} pair(s) over the cap from {result.prompts_over:,} prompt(s).",
                    messages.SUCCESS,
                )
                return None
            preview = result
        context = {
            **self.admin_site.each_context(request),
            "title": "Cap answers per prompt",
            "opts": self.model._meta,
            "sessions": sessions,
            "form": form,
            "preview": preview,
            "action_checkbox_name": ACTION_CHECKBOX_NAME,
            "select_across": request.POST.get("select_across", "0"),
        }
        return TemplateResponse(request, "admin/storage/scrapesession/cap_answers.html", context)
