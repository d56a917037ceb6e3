"""The kinds of background job, and what a job's code gets to report progress and write its file.

A kind is a function `run(context: JobContext, **params) -> dict` registered with `@job_kind(...)`;
the dict is the job's report (JSON), shown on the jobs page. The modules defining kinds are listed
in KIND_MODULES and imported when a kind is looked up (in the web process and in the worker).
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings

from storage.services import jobs as jobs_service

# Modules whose @job_kind functions are the jobs there are; add yours here. Settings may name more
# (FINEFOUNDRY_JOB_KIND_MODULES, from the environment variable of that name: comma-separated).
KIND_MODULES = ("storage.jobs.kinds", "storage.jobs.curation")
# Progress is written at most this often (a job may report every row).
PROGRESS_EVERY_SECONDS = 1.0


@dataclass(frozen=True)
class JobKind:
    name: str
    run: Callable[..., dict]
    # The permission a user needs to download the job's file (and the data it was made from).
    view_permission: str


_KINDS: dict[str, JobKind] = {}


def job_kind(name: str, *, view_permission: str = "storage.view_scrapesession"):
    """Register the decorated function as the job kind `name`."""

    def register(function: Callable[..., dict]) -> Callable[..., dict]:
        _KINDS[name] = JobKind(name, function, view_permission)
        return function

    return register


def kinds() -> dict[str, JobKind]:
    for module in (*KIND_MODULES, *getattr(settings, "FINEFOUNDRY_JOB_KIND_MODULES", ())):
        importlib.import_module(module)
    return _KINDS


def get_kind(name: str) -> JobKind:
    try:
        return kinds()[name]
    except KeyError:
        raise LookupError(f"no job kind {name!r}; known: {', '.join(sorted(kinds()))}") from None


@dataclass
class JobContext:
    """Handed to a job's function: report progress, make the job's result file."""

    job_id: int
    result_file: str = ""
    _last_write: float = field(default=0.0, repr=False)

    def progress(self, done: int, total: int | None = None, message: str | None = None, *, force=False) -> None:
        now = time.monotonic()
        if force or now - self._last_write >= PROGRESS_EVERY_SECONDS:
            self._last_write = now
            jobs_service.record_progress(job_id=self.job_id, done=done, total=total, message=message)

    def output_path(self, filename: str) -> Path:
        """Where to write the job's downloadable file (inside the jobs folder); one file per job."""
        self.result_file, path = jobs_service.result_file_for(job_id=self.job_id, filename=filename)
        return path
