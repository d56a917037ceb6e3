"""Scan pages of pairs in worker processes: the scan is pure-Python CPU work, one core per process.

A million pairs take ~80 s of CPU in one process; two workers on two cores bring the wall time
near half that while the caller reads the next pages. Workers are spawned, not forked: the caller
may hold database connections and threads (the log writer's, the search index's) that a forked
child would inherit mid-use. They import only this package, never Django, and get the stored
secret values once, at start; each page of (id, input, output) rows comes back as the findings of
its flagged pairs only, so little crosses back.
"""

from __future__ import annotations

import multiprocessing
import os
import re
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor

from storage.sensitive_text import Finding, find_sensitive, stored_secrets_pattern

Page = list[tuple[int, str, str]]
Flagged = list[tuple[int, list[Finding], list[Finding]]]  # (pair id, input findings, output findings)

PAGES_IN_FLIGHT_PER_WORKER = 2  # enough to keep every worker busy; bounds the texts held in memory

_secrets_re: re.Pattern[str] | None = None


def usable_workers() -> int:
    """The cores this process may run on (its CPU affinity, which containers and taskset narrow)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def scan_page(page: Page, secrets_re: re.Pattern[str] | None) -> Flagged:
    """The findings of a page's flagged pairs, in page order."""
    flagged = []
    for pair_id, input_text, output_text in page:
        found_input, found_output = find_sensitive(input_text, secrets_re), find_sensitive(output_text, secrets_re)
        if found_input or found_output:
            flagged.append((pair_id, found_input, found_output))
    return flagged


def scan_pages(pages: Iterable[Page], secret_values: list[str], workers: int) -> Iterator[tuple[Page, Flagged]]:
    """Each page with its findings, in the order given, scanned by `workers` processes."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_start, initargs=(secret_values,)) as pool:
        pending: deque = deque()
        for page in pages:
            pending.append((page, pool.submit(_scan_in_worker, page)))
            if len(pending) >= workers * PAGES_IN_FLIGHT_PER_WORKER:
                done, future = pending.popleft()
                yield done, future.result()
        while pending:
            done, future = pending.popleft()
            yield done, future.result()


def _start(secret_values: list[str]) -> None:
    global _secrets_re
    _secrets_re = stored_secrets_pattern(secret_values)


def _scan_in_worker(page: Page) -> Flagged:
    return scan_page(page, _secrets_re)
