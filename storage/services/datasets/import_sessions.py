"""Sessions an import is still writing: hidden until the last commit, and cleaned up when the import dies.

An import writes its pairs in short transactions (about write_batches.TARGET_SECONDS each, with a pause after
each so a waiting writer gets its turn: storage.db.write_batches) into a session that an
ImportInProgress row hides from this app: the admin, the API, exports, dedupe, merge, search and
doctor's counts all go through the models' default managers,
which leave such sessions and their pairs out. The last commit deletes that row, and the whole
session appears at once.

Appending to an existing session (`--session ID`) stages the rows the same way in a hidden
session of its own, then moves them into the target. A move of up to the first batch's size is
one transaction (all or nothing). A bigger one is moved in batches of about write_batches.TARGET_SECONDS,
each adjusting both sessions' pair_count, after the row is marked MOVING: from that commit on
the import can only be completed, never rolled back, so readers of the target may see part of
the appended pairs for the few seconds the move takes. Everything was validated before, so
completing cannot fail on the data.

An import that dies (an exception, SIGKILL, a lost machine) leaves its row behind with its host,
pid and last heartbeat (each commit). It is abandoned once that pid is gone on this host, or
its heartbeat is older than STALE_AFTER. The next import and `doctor --fix` then roll a WRITING
import back (its pairs deleted in short batches) and complete a MOVING one; `doctor` reports them.

Deleting a big session uses the same row (state DELETING, storage.services.sessions): the session
is hidden in one commit, then its pairs go in short batches, and a delete that dies is finished
(never undone) by the next import, the next delete of that session or `doctor --fix`.

The desktop app cannot know our table: while an import runs it sees the new session (or the
staging session "importing into N") with a pair_count that grows batch by batch, exact at every
commit, and the session disappears again if the import is rolled back.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from django.db import connections, transaction

from storage.db.write_batches import FIRST_BATCH, next_batch_size, sqlite_batch_manners
from storage.models import ImportInProgress, ScrapeSession
from storage.services.liveness import pid_gone, this_process
from storage.services.pair_counts import adjust_pair_counts
from storage.services.pair_insert import insert_pair_rows

# A heartbeat this old means the import is gone, whatever its pid says (another host, pid reuse).
STALE_AFTER = 120.0
# The `path` of a hidden session that a big merge is writing (storage.services.merge), then the source ids.
MERGE_PATH_PREFIX = "merge of sessions "
# An append of up to this many pairs is moved into its target in one transaction (~60 ms measured).
ATOMIC_MOVE_ROWS = 20_000


def begin(*, session: Callable[[], ScrapeSession], path: str, target_session_id: int | None) -> ScrapeSession:
    """Create the hidden session (with `session()`) and the row that hides it, in one transaction."""
    host, pid = this_process()
    now = time.time()
    with transaction.atomic():
        hidden = session()
        ImportInProgress.objects.create(
            session_id=hidden.pk,
            target_session_id=target_session_id,
            path=path,
            host=host,
            pid=pid,
            started_at=now,
            heartbeat_at=now,
        )
    return hidden


def hide_for_deletion(session_id: int) -> None:
    """Hide a session that is about to be deleted in batches (inside the caller's transaction)."""
    host, pid = this_process()
    now = time.time()
    ImportInProgress.objects.create(
        session_id=session_id,
        state=ImportInProgress.State.DELETING,
        path="",
        host=host,
        pid=pid,
        started_at=now,
        heartbeat_at=now,
    )


def heartbeat(cursor, session_id: int) -> None:
    """Say this import is alive; called inside each of its write transactions."""
    cursor.execute(
        "UPDATE storage_imports_in_progress SET heartbeat_at = %s WHERE session_id = %s", [time.time(), session_id]
    )


def insert_batches(session_id: int, rows: Iterable[tuple]) -> int:
    """Insert rows into the hidden session in transactions of about TARGET_SECONDS; return how many."""
    written = 0
    size = FIRST_BATCH
    batch: list[tuple] = []
    with sqlite_batch_manners() as between_batches:
        for row in rows:
            batch.append(row)
            if len(batch) >= size:
                size = next_batch_size(len(batch), _insert(session_id, batch))
                written += len(batch)
                batch = []
                between_batches(more=True)
        if batch:
            _insert(session_id, batch)
            written += len(batch)
    return written


def _insert(session_id: int, rows: list[tuple]) -> float:
    """One short transaction: the rows, the session's pair_count and the heartbeat; return its seconds."""
    with transaction.atomic(), connections["default"].cursor() as cursor:
        started = time.perf_counter()
        insert_pair_rows(rows)
        adjust_pair_counts({session_id: len(rows)})
        heartbeat(cursor, session_id)
        return time.perf_counter() - started


def publish(session_id: int) -> None:
    """The last commit of a new session's import: it becomes visible, all of it at once."""
    with transaction.atomic():
        ImportInProgress.objects.filter(session_id=session_id).delete()


def move_into(staging_id: int, target_id: int) -> None:
    """Move a finished staging session's pairs into the target (see the module docstring), then drop it."""
    with transaction.atomic(), connections["default"].cursor() as cursor:
        cursor.execute("SELECT count(*) FROM scraped_pairs WHERE session_id = %s", [staging_id])
        (count,) = cursor.fetchone()
        if count <= ATOMIC_MOVE_ROWS:  # the whole append in one transaction
            _move_batch(cursor, staging_id, target_id, limit=max(count, 1))
            _drop_staging(cursor, staging_id)
            return
    _finish_move(staging_id, target_id)


def _finish_move(staging_id: int, target_id: int) -> None:
    """Mark the import MOVING (from now on it is completed, never rolled back), then move in batches."""
    with transaction.atomic(), connections["default"].cursor() as cursor:
        cursor.execute(
            "UPDATE storage_imports_in_progress SET state = %s, heartbeat_at = %s WHERE session_id = %s",
            [ImportInProgress.State.MOVING, time.time(), staging_id],
        )
    size = FIRST_BATCH
    with sqlite_batch_manners() as between_batches:
        while True:
            with transaction.atomic(), connections["default"].cursor() as cursor:
                started = time.perf_counter()
                moved = _move_batch(cursor, staging_id, target_id, limit=size)
                if not moved:
                    _drop_staging(cursor, staging_id)
                    return
                heartbeat(cursor, staging_id)
                size = next_batch_size(moved, time.perf_counter() - started)
            between_batches(more=True)


def _move_batch(cursor, staging_id: int, target_id: int, *, limit: int) -> int:
    """Move the first `limit` pairs of the staging session, adjusting both pair_counts; return how many."""
    cursor.execute(
        "SELECT max(id) FROM (SELECT id FROM scraped_pairs WHERE session_id = %s ORDER BY id LIMIT %s) AS batch",
        [staging_id, limit],
    )
    (upper,) = cursor.fetchone()
    if upper is None:
        return 0
    cursor.execute(
        "UPDATE scraped_pairs SET session_id = %s WHERE session_id = %s AND id <= %s", [target_id, staging_id, upper]
    )
    moved = cursor.rowcount
    adjust_pair_counts({target_id: moved, staging_id: -moved})
    return moved


def _drop_staging(cursor, session_id: int) -> None:
    cursor.execute("DELETE FROM scrape_sessions WHERE id = %s", [session_id])
    cursor.execute("DELETE FROM storage_imports_in_progress WHERE session_id = %s", [session_id])


def discard(session_id: int) -> None:
    """Delete a hidden session (an unfinished import, or a delete): its pairs in short batches, then it and its row.

    pair_count goes down with every batch, so it is exact at every commit.
    """
    size = FIRST_BATCH
    with sqlite_batch_manners() as between_batches:
        while True:
            with transaction.atomic(), connections["default"].cursor() as cursor:
                started = time.perf_counter()
                cursor.execute(
                    "DELETE FROM scraped_pairs WHERE id IN"
                    " (SELECT id FROM scraped_pairs WHERE session_id = %s ORDER BY id LIMIT %s)",
                    [session_id, size],
                )
                deleted = cursor.rowcount
                if not deleted:
                    _drop_staging(cursor, session_id)
                    return
                adjust_pair_counts({session_id: -deleted})
                heartbeat(cursor, session_id)
                size = next_batch_size(deleted, time.perf_counter() - started)
            between_batches(more=True)


# --- Abandoned imports ----------------------------------------------------------------------


@dataclass(frozen=True)
class Abandoned:
    session_id: int
    target_session_id: int | None
    state: str
    path: str
    host: str
    pid: int
    idle_seconds: float

    def describe(self) -> str:
        if self.state == ImportInProgress.State.DELETING:
            return (
                f"a delete of session {self.session_id} by process {self.pid} on {self.host} stopped"
                f" {self.idle_seconds:,.0f} s ago with pairs left"
            )
        into = (
            f"session {self.target_session_id} (staged in {self.session_id})"
            if self.target_session_id
            else (f"new session {self.session_id}")
        )
        what = f"a {self.path}" if self.path.startswith(MERGE_PATH_PREFIX) else f"an import of {self.path}"
        return (
            f"{what} into {into} by process {self.pid} on {self.host} stopped"
            f" {self.idle_seconds:,.0f} s ago while {self.state}"
        )


def abandoned_imports(*, now: float | None = None) -> list[Abandoned]:
    """Imports whose process is gone (this host) or silent for STALE_AFTER seconds."""
    now = time.time() if now is None else now
    host, pid = this_process()
    found = []
    for row in ImportInProgress.objects.order_by("session_id"):
        idle = now - row.heartbeat_at
        mine = row.host == host and row.pid == pid
        gone = row.host == host and not mine and pid_gone(row.pid)
        if gone or idle > STALE_AFTER:
            found.append(Abandoned(row.session_id, row.target_session_id, row.state, row.path, row.host, row.pid, idle))
    return found


def recover(abandoned: Abandoned) -> str | None:
    """Take an abandoned import over and finish it: roll back if writing, complete if moving; say what was done."""
    host, pid = this_process()
    with transaction.atomic():
        # Claim it, unless someone else (another import, doctor) did since we looked.
        claimed = ImportInProgress.objects.filter(
            session_id=abandoned.session_id, host=abandoned.host, pid=abandoned.pid
        ).update(host=host, pid=pid, heartbeat_at=time.time())
    if not claimed:
        return None
    target = abandoned.target_session_id
    if abandoned.state == ImportInProgress.State.MOVING and ScrapeSession.all_objects.filter(pk=target).exists():
        _finish_move(abandoned.session_id, target)
        return "completed"
    discard(abandoned.session_id)
    return "deleted" if abandoned.state == ImportInProgress.State.DELETING else "rolled back"


def recover_abandoned_imports() -> list[tuple[Abandoned, str]]:
    """Finish every abandoned import (see recover); return what was done to each."""
    done = []
    for abandoned in abandoned_imports():
        action = recover(abandoned)
        if action is not None:
            done.append((abandoned, action))
    return done
