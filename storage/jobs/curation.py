"""Curation jobs: the safe-to-publish scan (findings stored) and near-duplicate clusters (a file the review page reads).

Thin calls into services; the report holds counts and ids only, never a text or what the scan found.
"""

from __future__ import annotations

import json

from django.urls import reverse
from django.utils.http import urlencode

from storage.jobs.registry import JobContext, job_kind
from storage.services.near_duplicates import find_near_duplicates
from storage.services.scan_findings import scan_and_store

CLUSTERS_FILE = "near-duplicates.json"


def scan_page_url(session_id: int) -> str:
    return reverse("admin:storage_scrapesession_scan", args=[session_id])


def review_page_url(*, session_ids: list[int], threshold: float, job_id: int | None = None) -> str:
    query = {"sessions": ",".join(map(str, session_ids)), "threshold": threshold}
    if job_id is not None:
        query["job"] = job_id
    return f"{reverse('admin:storage_scrapesession_near_duplicates')}?{urlencode(query)}"


@job_kind("scan", view_permission="storage.view_scrapedpair")
def scan(context: JobContext, *, session_ids: list[int]) -> dict:
    context.progress(0, None, "scanning", force=True)
    results = scan_and_store(
        session_ids=session_ids, job_id=context.job_id, progress=lambda done, total: context.progress(done, total)
    )
    per_kind: dict[str, int] = {}
    for result in results:
        for kind, count in result.counts.items():
            per_kind[kind] = per_kind.get(kind, 0) + count
    first = results[0].session_id
    scanned = sum(result.pairs_scanned for result in results)
    context.progress(scanned, scanned, force=True)  # the last call may have fallen within the throttle's second
    return {
        "pairs": scanned,
        "findings": sum(result.findings for result in results),
        "flagged_pairs": sum(result.flagged_pairs for result in results),
        "per_kind": per_kind,
        "open_url": scan_page_url(first),
        "open_label": f"Open the findings of session {first}"
        + (f" (and {len(results) - 1} more)" if len(results) > 1 else ""),
    }


@job_kind("near-duplicates", view_permission="storage.view_scrapedpair")
def near_duplicates(context: JobContext, *, session_ids: list[int], threshold: float) -> dict:
    context.progress(0, None, "signing and comparing pairs", force=True)
    found = find_near_duplicates(
        session_ids=session_ids, threshold=threshold, progress=lambda done, total: context.progress(done, total)
    )
    context.progress(found.pairs, found.pairs, force=True)
    context.output_path(CLUSTERS_FILE).write_text(json.dumps({"clusters": found.clusters}), encoding="utf-8")
    return {
        "clusters": len(found.clusters),
        "pairs": found.pairs,
        "signed": found.signed,
        "candidates": found.candidates,
        "threshold": threshold,
        "open_url": review_page_url(session_ids=session_ids, threshold=threshold, job_id=context.job_id),
        "open_label": f"Review {len(found.clusters):,} cluster{'s' if len(found.clusters) != 1 else ''}",
    }
