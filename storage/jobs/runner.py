"""Start a job (a row of ours, then the task), and the one task the worker runs for every kind."""

from __future__ import annotations

import threading
from contextlib import contextmanager

from django.db import close_old_connections, connections

from storage.jobs.registry import JobContext, get_kind
from storage.jobs.tasks import task
from storage.models import Job
from storage.services import jobs as jobs_service


def start_job(*, kind: str, label: str, params: dict, user) -> Job:
    """Record the job and enqueue it; the worker (`manage.py db_worker`) picks it up."""
    job_kind = get_kind(kind)
    job = jobs_service.create_job(
        kind=kind, label=label, params=params, user=user, view_permission=job_kind.view_permission
    )
    result = run_job.enqueue(job.pk)
    jobs_service.set_task_id(job_id=job.pk, task_id=str(result.id))
    job.task_id = str(result.id)
    return job


@contextmanager
def heartbeats(job_id: int):
    """A thread that tells doctor the worker is alive while the job's code is busy in one long statement."""
    stop = threading.Event()

    def beat():
        while not stop.wait(jobs_service.HEARTBEAT_SECONDS):
            jobs_service.heartbeat(job_id=job_id)
        connections.close_all()

    thread = threading.Thread(target=beat, name=f"job-{job_id}-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


@task()
def run_job(job_id: int) -> dict:
    job = jobs_service.mark_running(job_id=job_id)
    context = JobContext(job_id)
    try:
        with heartbeats(job_id):
            report = get_kind(job.kind).run(context, **job.params)
    except BaseException as exc:
        close_old_connections()
        jobs_service.mark_failed(job_id=job_id, error=jobs_service.describe_error(exc))
        raise
    jobs_service.mark_succeeded(job_id=job_id, result=report, result_file=context.result_file)
    return {"job_id": job_id}
