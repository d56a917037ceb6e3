"""The background writer behind the database log handler: a bounded queue and one thread per process.

Callers put row tuples on a queue bounded in rows and bytes (storage.dblog.queue). When it is
full, the caller waits for room while the writer keeps taking rows: a burst is slowed down to
the database's pace instead of losing records. Nobody waits where that could deadlock (see
LogWriter._may_wait); those records are dropped and counted. The writer thread takes batches
(up to batch_size rows and BATCH_BYTES), redacts them, and writes each as one short transaction
through a store (storage.dblog.stores). While the database or the table is missing or locked,
rows stay in the queue and the batch is retried; nothing is printed per record. A batch the
database refuses (a record too big, a trigger) is split in halves down to the bad record, which
is stored shortened or as a note: the writer never stops. Dropped records are reported as one
WARNING row once the queue has been drained.

Writers are shared per set of options, so the handlers from LOGGING and setup_database_logging
feed one thread. After fork the child gets a fresh queue and thread (the parent's thread did
not survive the fork and its connection must not be used there); pending rows are flushed at
interpreter exit and, for multiprocessing children, when the child process finishes.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
import threading
import time
import weakref
from collections.abc import Callable

from storage.dblog.queue import LogQueue
from storage.dblog.stores import LogRow, LogStore, StoreNotReady, StoreUnavailable
from storage.redaction import mask, may_need_masking, remember_secrets, secrets_from_setting_values

WRITER_LOGGER = "finefoundry.logging"
EXIT_FLUSH_TIMEOUT = 5.0
MAX_RETRY_DELAY = 1.0
# A few milliseconds of patience turn a trickle of records into batches instead of one
# transaction each, which would cost the callers more (the GIL) than the wait costs anyone.
LINGER = 0.005
# The queue's bounds. Rows weigh their message and traceback (sys.getsizeof: 1, 2 or 4 bytes a
# character) plus ROW_OVERHEAD (the tuple, the other fields): 100,000 short records or 32 MB, whichever comes first.
DEFAULT_CAPACITY = 100_000
DEFAULT_CAPACITY_BYTES = 32 * 1024 * 1024
ROW_OVERHEAD = 300
# At most this much text goes into one INSERT: far below SQLite's 1,000,000,000-byte limit on a
# statement's value, and small enough that the writer's JSON copy of a batch stays cheap.
BATCH_BYTES = 4 * 1024 * 1024
# A record the database refuses is tried again cut to this many characters of message and traceback.
SALVAGE_CHARS = 10_000
# A caller waits for room only while the writer keeps taking rows; this long without, it stops waiting.
STALL_WAIT = 5.0
# How long the database may stay unusable before we say so (once) on stderr.
QUIET_PERIOD = 60.0


def _encodable(value):
    return value.encode("utf-8", "backslashreplace").decode("utf-8") if isinstance(value, str) else value


class LogWriter:
    """One queue and one thread writing its rows in batches through a store."""

    def __init__(
        self,
        store_factory: Callable[[], LogStore],
        *,
        capacity: int = DEFAULT_CAPACITY,
        capacity_bytes: int = DEFAULT_CAPACITY_BYTES,
        batch_size: int = 1_000,
    ):
        if capacity < 1 or batch_size < 1 or capacity_bytes < 1:
            raise ValueError("capacity, capacity_bytes and batch_size must be at least 1")
        self.store_factory = store_factory
        self.capacity = capacity
        self.capacity_bytes = capacity_bytes
        self.batch_size = batch_size
        self.batch_bytes = min(BATCH_BYTES, capacity_bytes)
        self._store: LogStore | None = None
        self._reset()
        _every_writer.add(self)

    def _reset(self) -> None:
        self._queue = LogQueue(max_rows=self.capacity, max_bytes=self.capacity_bytes)
        self._done = 0
        self._done_changed = threading.Condition()
        self._dropped = 0
        self._dropped_lock = threading.Lock()
        self._start_lock = threading.Lock()
        self._stopping = False
        # True while the database refuses our batches (missing, locked): callers then do not wait.
        self._stalled = False
        self._taken_at = time.monotonic()
        self._thread: threading.Thread | None = None
        self.thread_ident: int | None = None
        self._warned: dict[str, float] = {}

    # --- Callers ---------------------------------------------------------------------------

    def put(self, row: LogRow, size: int) -> None:
        """Queue a row of about `size` bytes; when the queue is full, wait for room while that is safe."""
        if self._thread is None:
            self._start()
        if not self._queue.put(row, size, may_wait=self._may_wait):
            self.count_dropped(1)

    def _may_wait(self, waiting_since: float) -> bool:
        """Whether a caller finding the queue full may keep waiting for the writer to make room.

        Waiting is what keeps a burst from losing records; it must never turn into a deadlock. So
        nobody waits for a writer that is stopping, dead or failing (database missing or locked),
        at interpreter shutdown, or on the writer's own thread (its records never get here); and
        a caller that holds the database's write lock itself would stop the writer from taking
        rows, so after STALL_WAIT seconds without the writer taking any, callers stop waiting
        until it writes again. That bound also covers a signal handler that logs while its
        thread is inside flush() or put().
        """
        thread = self._thread
        if self._stalled or self._stopping or thread is None or not thread.is_alive() or sys.is_finalizing():
            return False
        if threading.get_ident() == self.thread_ident:
            return False
        if time.monotonic() - max(waiting_since, self._taken_at) > STALL_WAIT:
            self._stalled = True
            return False
        return True

    def count_dropped(self, count: int) -> None:
        with self._dropped_lock:
            self._dropped += count

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every row queued before this call is written; False if `timeout` ran out first."""
        thread = self._thread
        target = self._queue.put_total
        if thread is None or threading.get_ident() == self.thread_ident:
            return self._done >= target
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._done_changed:
            while self._done < target and thread.is_alive():
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    break
                # Bounded waits, so a writer that died cannot hang us.
                self._done_changed.wait(0.5 if remaining is None else min(remaining, 0.5))
            return self._done >= target

    def stop(self, timeout: float = EXIT_FLUSH_TIMEOUT) -> None:
        """Write what is queued, then end the thread and close its connection.

        Gives up only after `timeout` seconds without progress: a full queue (up to 100,000
        records) may take longer than that to write, and must not be lost at exit for it.
        """
        thread = self._thread
        if thread is None:
            return
        self._stopping = True
        self._queue.wake()
        done, idle_since = self._done, time.monotonic()
        while thread.is_alive():
            thread.join(min(timeout, 0.2))
            if self._done != done:
                done, idle_since = self._done, time.monotonic()
            elif time.monotonic() - idle_since >= timeout:
                break
        if not thread.is_alive():
            with self._start_lock:
                self._thread, self.thread_ident, self._stopping = None, None, False

    def _start(self) -> None:
        with self._start_lock:
            if self._thread is not None:
                return
            thread = threading.Thread(target=self._run, name="finefoundry-log-writer", daemon=True)
            thread.start()
            self._thread = thread
            self.thread_ident = thread.ident
        register_for_child_exit(self)

    def after_fork_in_child(self) -> None:
        if self._store is not None:
            self._store.abandon()
        self._store = None
        self._reset()

    # --- The writer thread -----------------------------------------------------------------

    def _run(self) -> None:
        batch: list[LogRow] = []
        delay = 0.0
        unusable_since: float | None = None
        while True:
            if not batch:
                if self._stopping and not len(self._queue):
                    break
                batch = self._queue.get_batch(self.batch_size, self.batch_bytes, LINGER)
                self._taken_at = time.monotonic()
                continue
            try:
                self._write(batch, report_drops=True)
            except (StoreNotReady, StoreUnavailable) as exc:
                self._stalled = True
                self._queue.wake()  # callers waiting for room stop waiting
                if self._stopping:
                    break
                now = time.monotonic()
                unusable_since = unusable_since or now
                if isinstance(exc, StoreUnavailable) or now - unusable_since > QUIET_PERIOD:
                    self._warn(f"cannot write to {self._describe()} yet ({exc}); keeping log records and retrying")
                delay = min(MAX_RETRY_DELAY, max(0.05, delay * 2))
                time.sleep(delay)
                continue
            except Exception as exc:  # the database refused this batch (or a bug): never stop over it
                self._warn(f"a batch of {len(batch)} log records was refused ({exc!r}); storing it record by record")
                self._store_apart(batch)
            delay, unusable_since, self._stalled = 0.0, None, False
            self._mark_done(len(batch))
            batch = []
        self._close_store()

    def _store_apart(self, rows: list[LogRow]) -> None:
        """Store a refused batch in halves, down to the bad records, which go in salvaged or counted."""
        if len(rows) == 1:
            self._store_one(rows[0])
            return
        middle = len(rows) // 2
        for half in (rows[:middle], rows[middle:]):
            try:
                self._write_retrying(half)
            except Exception:
                self._store_apart(half)

    def _store_one(self, row: LogRow) -> None:
        """The one record the database refuses: store it shortened, then as a note without its text."""
        error: Exception | None = None
        for attempt in range(3):
            if attempt == 0:
                candidate = row
            elif attempt == 1:
                candidate = (*row[:3], cap_text(row[3], SALVAGE_CHARS), *row[4:7], cap_text(row[7], SALVAGE_CHARS))
            else:
                note = f"a log record could not be stored ({error!r}); its message and traceback are left out"
                candidate = (*row[:3], note, *row[4:7], None)
            try:
                self._write_retrying([candidate])
                return
            except Exception as exc:
                error = exc
        self.count_dropped(1)

    def _write_retrying(self, rows: list[LogRow]) -> None:
        """Write rows, waiting out a database that is missing or locked (unless stopping)."""
        delay = 0.05
        while True:
            try:
                self._write(rows, report_drops=False)
                return
            except (StoreNotReady, StoreUnavailable):
                if self._stopping:
                    raise
                time.sleep(delay)
                delay = min(MAX_RETRY_DELAY, delay * 2)

    def _write(self, batch: list[LogRow], *, report_drops: bool) -> None:
        if self._store is None:
            self._store = self.store_factory()
        secrets = secrets_from_setting_values(self._store.secret_values())
        remember_secrets(secrets)
        rows = batch
        # One check over the whole batch; most batches hold nothing to mask and go out as queued.
        if may_need_masking([row[3] for row in batch] + [row[7] for row in batch if row[7]], secrets):
            rows = [
                (created, level, name, mask(message, secrets), module, func, line, exc and mask(exc, secrets))
                for created, level, name, message, module, func, line, exc in batch
            ]
        # Report drops once caught up, in the same transaction, so the count is never lost or doubled.
        dropped = self._take_dropped() if report_drops and not len(self._queue) else 0
        if dropped:
            rows = [*rows, self._dropped_row(dropped)]  # a new list: a retried batch must not keep it
        try:
            try:
                self._store.write(rows)
            except UnicodeEncodeError:  # a lone surrogate (undecodable file name) must not cost the batch
                self._store.write([tuple(_encodable(value) for value in row) for row in rows])
        except BaseException:
            self.count_dropped(dropped)
            raise

    def _take_dropped(self) -> int:
        with self._dropped_lock:
            dropped, self._dropped = self._dropped, 0
        return dropped

    def _dropped_row(self, dropped: int) -> LogRow:
        message = (
            f"dropped {dropped} log records: the queue ({self.capacity:,} records, {self.capacity_bytes:,} bytes) "
            "was full while the database could not be written to, or they could not be stored at all"
        )
        return (time.time(), "WARNING", WRITER_LOGGER, message, "log_writer", "_write", None, None)

    def _mark_done(self, count: int) -> None:
        with self._done_changed:
            self._done += count
            self._done_changed.notify_all()

    def _describe(self) -> str:
        return "the database" if self._store is None else self._store.describe()

    def _warn(self, message: str) -> None:
        """Say it on stderr at most once a minute; never through logging (that would recurse)."""
        now = time.monotonic()
        key = message.split(" (", 1)[0]
        if now - self._warned.get(key, -QUIET_PERIOD) < QUIET_PERIOD:
            return
        self._warned[key] = now
        with contextlib.suppress(Exception):  # stderr may be closed at exit
            print(f"finefoundry log writer: {message}", file=sys.stderr, flush=True)

    def _close_store(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None


def cap_text(text: str | None, limit: int) -> str | None:
    """`text` cut to about `limit` characters, its head and tail kept around a marker saying how much went."""
    if text is None or len(text) <= limit:
        return text
    cut = len(text) - limit
    # ASCII on purpose: one "…" would make Python store all of an ASCII text at 2 bytes a character.
    marker = f" [... truncated {cut:,} characters ...] "
    head = limit * 3 // 4
    return f"{text[:head]}{marker}{text[len(text) - (limit - head) :]}"


# --- One writer per set of options, per process -------------------------------------------------

# Shared writers by options; _every_writer also holds those of closed handlers, for fork and exit.
_writers: dict[tuple, LogWriter] = {}
_every_writer: weakref.WeakSet[LogWriter] = weakref.WeakSet()
_users: dict[tuple, int] = {}
_writers_lock = threading.Lock()


def acquire_writer(key: tuple, factory: Callable[[], LogWriter]) -> LogWriter:
    """The writer for `key`, made on first use; every acquire needs a release_writer."""
    with _writers_lock:
        writer = _writers.get(key)
        if writer is None:
            writer = _writers[key] = factory()
        _users[key] = _users.get(key, 0) + 1
        return writer


def release_writer(key: tuple, timeout: float = EXIT_FLUSH_TIMEOUT) -> None:
    """Stop the writer for `key` once nobody uses it, after writing what it holds."""
    with _writers_lock:
        _users[key] = _users.get(key, 1) - 1
        if _users[key] > 0:
            return
        _users.pop(key)
        writer = _writers.pop(key, None)
    if writer is not None:
        writer.stop(timeout)


def flush_all(timeout: float = EXIT_FLUSH_TIMEOUT) -> None:
    """Write what every writer holds and stop them (at interpreter exit)."""
    for writer in list(_every_writer):
        writer.stop(timeout)


def _after_fork_in_child() -> None:
    global _writers_lock
    _writers_lock = threading.Lock()
    for writer in list(_every_writer):
        writer.after_fork_in_child()


def register_for_child_exit(writer: LogWriter) -> None:
    """multiprocessing children end with os._exit (no atexit), but run its finalizers first."""
    util = sys.modules.get("multiprocessing.util")
    if util is not None:
        util.Finalize(None, writer.stop, args=(EXIT_FLUSH_TIMEOUT,), exitpriority=100)


os.register_at_fork(after_in_child=_after_fork_in_child)
atexit.register(flush_all)
