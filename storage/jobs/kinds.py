"""FineFoundry's own background jobs: export to a file, dedupe, merge, import an uploaded file.

Each is a thin call into a service: the rules stay in storage/services/.
"""

from __future__ import annotations

import inspect
from pathlib import Path

from django.template.defaultfilters import pluralize
from django.urls import reverse

from storage.exceptions import StorageError
from storage.jobs.registry import JobContext, job_kind
from storage.services import jobs as jobs_service
from storage.services.datasets import exporting, importing
from storage.services.dedupe import remove_duplicates
from storage.services.merge import merge_sessions


def _session_link(session_id: int) -> dict:
    return {"session_id": session_id, "session_url": reverse("admin:storage_scrapesession_change", args=[session_id])}


@job_kind("export")
def export_to_file(context: JobContext, *, session_ids: list[int], fmt: str) -> dict:
    path = context.output_path(exporting.default_filename(session_ids, fmt))
    result = exporting.export_sessions(
        session_ids=session_ids,
        fmt=fmt,
        output_path=path,
        overwrite=True,
        progress=lambda done, total: context.progress(done, total),
    )
    report = {"pairs": result.count, "format": fmt, "file": path.name}
    if result.metadata_ignored:
        # What export_session warns about on stderr; the job's page shows its report.
        report["unusable metadata"] = (
            f"ignored {result.metadata_ignored:,} time{pluralize(result.metadata_ignored)} "
            f"(first: {result.metadata_problem}); "
            "those pairs were exported without it"
        )
    return report


@job_kind("dedupe", view_permission="storage.change_scrapesession")
def dedupe(context: JobContext, *, session_ids: list[int], normalize: bool, across_sessions: bool) -> dict:
    context.progress(0, None, "finding duplicates", force=True)
    result = remove_duplicates(
        session_ids=session_ids,
        normalize=normalize,
        across_sessions=across_sessions,
        progress=lambda done, total: context.progress(done, total, "removing duplicates"),
    )
    return {
        "removed": result.removed,
        "per_session": {str(k): v for k, v in result.per_session.items()},
        "changed_meanwhile": result.changed,
    }


@job_kind("merge", view_permission="storage.add_scrapesession")
def merge(context: JobContext, *, session_ids: list[int], mode: str, name: str) -> dict:
    context.progress(0, None, f"merging {len(session_ids)} sessions", force=True)
    merged = merge_sessions(session_ids=session_ids, mode=mode, name=name)
    return {"pairs": merged.pair_count or 0, "name": merged.label, **_session_link(merged.pk)}


def supports_skip_invalid() -> bool:
    """Whether the import service can skip invalid records (--skip-invalid) on this version."""
    return "skip_invalid" in inspect.signature(importing.import_pairs).parameters


@job_kind("import", view_permission="storage.add_scrapesession")
def import_upload(
    context: JobContext,
    *,
    upload: str,
    filename: str,
    fmt: str = "auto",
    source: str | None = None,
    name: str | None = None,
    session_id: int | None = None,
    skip_invalid: bool = False,
) -> dict:
    path = Path(upload)
    options = {"skip_invalid": True} if skip_invalid and supports_skip_invalid() else {}
    context.progress(0, None, f"importing {filename}", force=True)
    try:
        result = importing.import_pairs(path=path, fmt=fmt, source=source, name=name, session_id=session_id, **options)
    except StorageError as exc:
        # The same message as the command's, naming the file the user uploaded rather than our copy of it.
        raise StorageError(str(exc).replace(str(path.resolve()), filename).replace(str(path), filename)) from None
    finally:
        jobs_service.remove_upload(path)
    report = {
        "pairs": result.count,
        "created": result.created,
        "file": filename,
        "container": result.container,
        "shape": result.shape,
        **_session_link(result.session_id),
    }
    skipped = getattr(result, "skipped", None)
    if skipped:
        report["skipped"] = [str(item) for item in skipped][:100]
    return report
