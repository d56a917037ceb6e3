"""Background jobs in tests: the real worker (`manage.py db_worker`) as a child process on the test database."""

from __future__ import annotations

import subprocess
import sys
import time

from django.conf import settings

from storage.models import Job
from tests.helpers.processes import PROJECT_ROOT, child_env

WORKER_ARGS = ("db_worker", "--no-reload", "--no-startup-delay", "--interval", "0.2")
# The test-only job kinds (a job that waits to be killed) for the worker child.
TEST_KINDS = "tests.helpers.job_kinds"


def worker_env() -> dict[str, str]:
    """The test database and this test's jobs folder, so files the worker writes are where the test looks."""
    return child_env(FINEFOUNDRY_JOBS_DIR=str(settings.FINEFOUNDRY_JOBS_DIR), FINEFOUNDRY_JOB_KIND_MODULES=TEST_KINDS)


def run_worker_batch(timeout: float = 120) -> subprocess.CompletedProcess:
    """Run every queued job in a worker process that exits when the queue is empty."""
    result = subprocess.run(
        [sys.executable, "manage.py", *WORKER_ARGS, "--batch"],
        cwd=PROJECT_ROOT,
        env=worker_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def start_worker() -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "manage.py", *WORKER_ARGS],
        cwd=PROJECT_ROOT,
        env=worker_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def stop_worker(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_for_job(job_id: int, *, statuses: tuple[str, ...] = ("succeeded", "failed"), timeout: float = 60) -> Job:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = Job.objects.get(pk=job_id)
        if job.status in statuses:
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} is still {Job.objects.get(pk=job_id).status} after {timeout} s")
