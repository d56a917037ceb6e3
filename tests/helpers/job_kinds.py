"""A job kind for tests only (FINEFOUNDRY_JOB_KIND_MODULES): it runs until its worker is killed."""

from __future__ import annotations

import time

from storage.jobs.registry import JobContext, job_kind


@job_kind("wait-forever")
def wait_forever(context: JobContext) -> dict:
    context.progress(1, 10, "waiting to be killed", force=True)
    while True:
        time.sleep(0.2)
