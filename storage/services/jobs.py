"""Background jobs' rows (`storage_jobs`): their life cycle, who may see them, their files, and dead ones.

The task machinery (Django's Tasks API, the worker, the registry of job kinds) is storage/jobs/; this
module holds the rules about a job's row so that the admin, storage/jobs and doctor share them.

A job's files live under settings.FINEFOUNDRY_JOBS_DIR: `<job id>/<file name>` for a job's result,
`uploads/` for files waiting to be imported. A row stores only the relative path; `result_path`
resolves it and refuses anything that would leave the jobs folder.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
import traceback
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db import DatabaseError
from django.db.models import QuerySet
from django.utils import timezone

from storage.exceptions import StorageError
from storage.models import Job
from storage.redaction import redact
from storage.services import settings as settings_service
from storage.services.liveness import pid_gone, this_process

# A running job's worker writes a heartbeat this often; doctor calls it dead after STALE_AFTER without one.
HEARTBEAT_SECONDS = 30
STALE_AFTER = dt.timedelta(minutes=10)
UPLOADS = "uploads"
MAX_ERROR_CHARS = 4000


def jobs_dir() -> Path:
    return Path(settings.FINEFOUNDRY_JOBS_DIR)


# --- Life cycle ------------------------------------------------------------------------------


def create_job(*, kind: str, label: str, params: dict, user, view_permission: str) -> Job:
    return Job.objects.create(
        kind=kind,
        label=label[:500],
        params=params,
        requested_by=user if user is not None and user.is_authenticated else None,
        view_permission=view_permission,
    )


def set_task_id(*, job_id: int, task_id: str) -> None:
    Job.objects.filter(pk=job_id).update(task_id=task_id)


def mark_running(*, job_id: int) -> Job:
    host, pid = this_process()
    now = timezone.now()
    Job.objects.filter(pk=job_id).update(
        status=Job.Status.RUNNING, started_at=now, heartbeat_at=now, worker_host=host, worker_pid=pid
    )
    return Job.objects.get(pk=job_id)


def record_progress(*, job_id: int, done: int, total: int | None, message: str | None) -> None:
    fields = {"progress_done": done, "heartbeat_at": timezone.now()}
    if total is not None:
        fields["progress_total"] = total
    if message is not None:
        fields["message"] = redact(message)[:1000]
    Job.objects.filter(pk=job_id).update(**fields)


def heartbeat(*, job_id: int) -> None:
    """Say the worker is alive; a busy database only delays it (the next beat tries again)."""
    with contextlib.suppress(DatabaseError):
        Job.objects.filter(pk=job_id, status=Job.Status.RUNNING).update(heartbeat_at=timezone.now())


def mark_succeeded(*, job_id: int, result: dict, result_file: str = "") -> None:
    Job.objects.filter(pk=job_id).update(
        status=Job.Status.SUCCEEDED,
        result=result,
        result_file=result_file,
        finished_at=timezone.now(),
        message="",
    )


def describe_error(exc: BaseException) -> str:
    """What went wrong, for a person: our own errors are their message; anything else its type and message."""
    if isinstance(exc, StorageError | ValueError):
        text = str(exc)
    else:
        text = "".join(traceback.format_exception_only(exc)).strip()
    return redacted(text)[:MAX_ERROR_CHARS]


def redacted(text: str) -> str:
    """`text` with token-shaped strings and the stored secret settings (whatever their shape) masked."""
    try:
        stored = settings_service.secret_values()
    except DatabaseError:
        stored = []
    return redact(text, stored)


def mark_failed(*, job_id: int, error: str) -> None:
    Job.objects.filter(pk=job_id).update(
        status=Job.Status.FAILED, error=redacted(error)[:MAX_ERROR_CHARS], finished_at=timezone.now()
    )


# --- Who may see what ------------------------------------------------------------------------


def visible_jobs(user) -> QuerySet[Job]:
    """A superuser sees every job; anyone else the jobs they started."""
    jobs = Job.objects.all()
    return jobs if user.is_superuser else jobs.filter(requested_by_id=user.pk)


def may_download(user, job: Job) -> bool:
    """The job is theirs to see, and they may still view the data it was made from."""
    if not visible_jobs(user).filter(pk=job.pk).exists():
        return False
    return not job.view_permission or user.has_perm(job.view_permission)


# --- Files -----------------------------------------------------------------------------------

SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


def safe_filename(name: str, *, default: str = "file") -> str:
    cleaned = SAFE_NAME.sub("_", Path(name or "").name).strip("._")[:120]
    return cleaned or default


def result_file_for(*, job_id: int, filename: str) -> tuple[str, Path]:
    """(relative name, absolute path) for a job's result file; the folder is made."""
    relative = f"{job_id}/{safe_filename(filename)}"
    path = jobs_dir() / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    return relative, path


def result_path(job: Job) -> Path | None:
    """The job's file on disk, only if it is inside the jobs folder and exists."""
    if not job.result_file:
        return None
    root = jobs_dir().resolve()
    path = (root / job.result_file).resolve()
    if not path.is_relative_to(root) or path == root or not path.is_file():
        return None
    return path


def save_upload(*, chunks: Iterable[bytes], filename: str, max_bytes: int) -> Path:
    """Stream an uploaded file into the jobs folder's uploads/, refusing it whole past `max_bytes`."""
    folder = jobs_dir() / UPLOADS
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{uuid.uuid4().hex}-{safe_filename(filename, default='upload.jsonl')}"
    written = 0
    try:
        with path.open("xb") as out:
            for chunk in chunks:
                written += len(chunk)
                if written > max_bytes:
                    raise StorageError(f"the file is larger than the upload limit of {max_bytes:,} bytes")
                out.write(chunk)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path


def remove_upload(path: Path) -> None:
    """Delete an upload after its import: only a file this module put in uploads/."""
    root = (jobs_dir() / UPLOADS).resolve()
    resolved = Path(path).resolve()
    if resolved.parent == root:
        resolved.unlink(missing_ok=True)


# --- Dead jobs (doctor) ----------------------------------------------------------------------


@dataclass(frozen=True)
class DeadJob:
    job: Job
    reason: str


def dead_jobs(*, now: dt.datetime | None = None, stale_after: dt.timedelta = STALE_AFTER) -> list[DeadJob]:
    """Running jobs whose worker process is gone (same host) or has sent no heartbeat for `stale_after`."""
    now = now or timezone.now()
    host, _pid = this_process()
    found = []
    for job in Job.objects.filter(status=Job.Status.RUNNING).order_by("id"):
        last = job.heartbeat_at or job.started_at or job.created_at
        if job.worker_host == host and pid_gone(job.worker_pid):
            found.append(DeadJob(job, f"its worker (process {job.worker_pid} on {host}) is gone"))
        elif last < now - stale_after:
            minutes = int((now - last).total_seconds() // 60)
            found.append(DeadJob(job, f"its worker has sent no heartbeat for {minutes} minutes"))
    return found


def fail_dead_job(dead: DeadJob) -> None:
    """Mark the job failed with the reason, and the task backend's row with it (it would stay 'running')."""
    from django_tasks_db.models import DBTaskResult

    mark_failed(job_id=dead.job.pk, error=f"marked failed by doctor: {dead.reason}")
    if dead.job.task_id:
        DBTaskResult.objects.filter(pk=dead.job.task_id, status="RUNNING").update(
            status="FAILED", finished_at=timezone.now(), traceback=f"marked failed by doctor: {dead.reason}"
        )
