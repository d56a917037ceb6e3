"""Manners for a job that writes SQLite in many short transactions: let every waiting writer have a turn.

Short transactions alone are not enough. SQLite's busy handler is not a queue: a waiting writer
sleeps and retries (every 100 ms once it has waited a while), and a job that starts its next
transaction at once takes the lock again first, time after time; two such jobs side by side can
keep a third writer out for longer than its busy timeout (the desktop app's 5 s). So the jobs
(clear_logs' deletes and vacuum steps, imports, session deletes, merges, dedupe, search-index
catch-up) pause between transactions.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TypeVar

from django.db import connections, transaction

from storage.db.pragmas import pragma_set

# Each write transaction of a batched job aims at this long; the batch size follows what was measured.
TARGET_SECONDS = 0.1
FIRST_BATCH = 2_000
MIN_BATCH, MAX_BATCH = 100, 100_000
# Longer than the longest sleep of SQLite's busy handler, so every waiting writer gets a turn.
PAUSE_BETWEEN_BATCHES = 0.1
MAX_PAUSE = 1.0

Item = TypeVar("Item")


def next_batch_size(rows: int, seconds: float, *, minimum: int = MIN_BATCH, maximum: int = MAX_BATCH) -> int:
    """The batch size (rows, pages) that would have taken TARGET_SECONDS, given `rows` took `seconds`.

    The one rule for every job that writes in batches: imports, deletes, log clean-up, vacuum steps, dedupe,
    merges, search-index catch-up.
    """
    wanted = int(rows * TARGET_SECONDS / max(seconds, 1e-4))
    # Grow at most fourfold a step: one fast batch (a warm cache) must not make the next one long.
    return max(minimum, min(maximum, wanted, rows * 4))


@contextmanager
def sqlite_batch_manners(using: str = "default") -> Iterator[Callable[..., None]]:
    """On SQLite, give other writers their turn between a job's batches; elsewhere do nothing.

    Two things, after each committed batch. A passive checkpoint copies the batch's WAL pages
    back into the database ourselves: otherwise the large WAL a mass delete leaves is copied
    inside whichever commit next crosses the threshold, often another process's one-row insert.
    Autocheckpoints are off meanwhile (restored after) for the same reason.
    Then a pause of PAUSE_BETWEEN_BATCHES: a writer waiting on SQLite's busy handler retries
    only every 100 ms or so, and without the pause the next batch takes the lock first, again
    and again. Neither holds the write lock.
    """
    connection = connections[using]
    if connection.vendor != "sqlite" or connection.in_atomic_block:
        # Inside the caller's transaction the batches are savepoints: nothing is committed in between.
        yield lambda *, more: None
        return
    last = [time.monotonic()]

    def between_batches(*, more: bool) -> None:
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA wal_checkpoint(PASSIVE)")
        if more:
            # As long as the batch took, when that is longer (a busy machine slows it down): the job
            # then holds the lock at most half the time, and waiting writers still get their turn.
            time.sleep(min(max(PAUSE_BETWEEN_BATCHES, time.monotonic() - last[0]), MAX_PAUSE))
        last[0] = time.monotonic()

    with pragma_set(connection, "wal_autocheckpoint", 0):
        yield between_batches


def write_in_steps(
    step: Callable[[int], tuple[int, bool]],
    *,
    using: str = "default",
    first: int = FIRST_BATCH,
    maximum: int = MAX_BATCH,
    committed: Callable[[], None] | None = None,
) -> None:
    """The long writer's loop: `step(size)` in a write transaction of its own, again while it says there is more.

    `step(size)` does about `size` rows of work and returns (rows done, whether more remain). Each
    size follows the time the last step took (next_batch_size), with the manners above between
    steps. Each step is all or nothing; a job that fails or is killed half way has written the
    steps before it. `committed()` is called after each step's commit (progress reports: what
    they report is then visible to every other connection).
    """
    size, more = min(first, maximum), True
    with sqlite_batch_manners(using) as between_batches:
        while more:
            started = time.monotonic()
            with transaction.atomic(using=using):
                rows, more = step(size)
            if committed is not None:
                committed()
            size = next_batch_size(rows, time.monotonic() - started, maximum=maximum)
            between_batches(more=more)


def write_in_short_transactions(
    items: Sequence[Item],
    write: Callable[[Sequence[Item]], None],
    *,
    using: str = "default",
    first: int = FIRST_BATCH,
    maximum: int = MAX_BATCH,
) -> None:
    """`write(batch)` over consecutive slices of `items` (a list, a range), each in a step of write_in_steps."""
    done = 0

    def step(size: int) -> tuple[int, bool]:
        nonlocal done
        batch = items[done : done + size]
        write(batch)
        done += len(batch)
        return len(batch), done < len(items)

    if len(items):
        write_in_steps(step, using=using, first=first, maximum=maximum)
