"""The background writer behind the database log handler: a bounded queue and one thread per process.

Callers only put row tuples on the queue (never blocking; a full queue drops the record and
counts it). The writer thread takes what is there in one go, redacts it, and writes it as one
short transaction through a store (storage.log_stores). While the database or the table is
missing or locked, rows stay in the queue and the batch is retried; nothing is printed per
record. Dropped records are reported as one WARNING row once the queue has been drained.

Writers are shared per set of options, so the handlers from LOGGING and setup_database_logging
feed one thread. After fork the child gets a fresh queue and thread (the parent's thread did
not survive the fork and its connection must not be used there); pending rows are flushed at
interpreter exit and, for multiprocessing children, when the child process finishes.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import queue
import sys
import threading
import time
import weakref
from collections.abc import Callable

from storage.log_stores import LogRow, LogStore, StoreNotReady, StoreUnavailable
from storage.redaction import mask, may_need_masking, remember_secrets, secrets_from_setting_values

WRITER_LOGGER = "finefoundry.logging"
EXIT_FLUSH_TIMEOUT = 5.0
MAX_RETRY_DELAY = 1.0
# A few milliseconds of patience turn a trickle of records into batches instead of one
# transaction each, which would cost the callers more (the GIL) than the wait costs anyone.
LINGER = 0.005
# How long the database may stay unusable before we say so (once) on stderr.
QUIET_PERIOD = 60.0


def _encodable(value):
    return value.encode("utf-8", "backslashreplace").decode("utf-8") if isinstance(value, str) else value


class CountingQueue(queue.Queue):
    """A Queue that counts every row ever put, and hands rows out in batches."""

    def _init(self, maxsize: int) -> None:
        super()._init(maxsize)
        self.put_total = 0

    def _put(self, item) -> None:
        self.queue.append(item)
        self.put_total += 1

    def get_batch(self, limit: int, linger: float = 0.0) -> list:
        """Wait for a row, give a trickle `linger` seconds to grow, then take up to `limit` rows."""
        with self.not_empty:
            if not self._qsize():
                self.not_empty.wait()
            if not self._qsize():
                return []  # woken by wake()
        if linger and self.qsize() < limit:
            time.sleep(linger)
        with self.not_empty:
            count = min(limit, self._qsize())
            items = [self.queue.popleft() for _ in range(count)]
            self.not_full.notify(count)
            return items

    def wake(self) -> None:
        with self.not_empty:
            self.not_empty.notify_all()


class LogWriter:
    """One queue and one thread writing its rows in batches through a store."""

    def __init__(self, store_factory: Callable[[], LogStore], *, capacity: int = 10_000, batch_size: int = 1_000):
        if capacity < 1 or batch_size < 1:
            raise ValueError("capacity and batch_size must be at least 1")
        self.store_factory = store_factory
        self.capacity = capacity
        self.batch_size = batch_size
        self._store: LogStore | None = None
        self._reset()
        _every_writer.add(self)

    def _reset(self) -> None:
        self._queue = CountingQueue(self.capacity)
        self._done = 0
        self._done_changed = threading.Condition()
        self._dropped = 0
        self._dropped_lock = threading.Lock()
        self._start_lock = threading.Lock()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self.thread_ident: int | None = None
        self._warned: dict[str, float] = {}

    # --- Callers ---------------------------------------------------------------------------

    def put(self, row: LogRow) -> None:
        """Queue a row without ever blocking; count it as dropped when the queue is full."""
        if self._thread is None:
            self._start()
        try:
            self._queue.put_nowait(row)
        except queue.Full:
            self.count_dropped(1)

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
        """Write what is queued (up to `timeout`), then end the thread and close its connection."""
        thread = self._thread
        if thread is None:
            return
        self._stopping = True
        self._queue.wake()
        thread.join(timeout)
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
                if self._stopping and not self._queue.qsize():
                    break
                batch = self._queue.get_batch(self.batch_size, LINGER)
                continue
            try:
                self._write(batch)
            except (StoreNotReady, StoreUnavailable) as exc:
                if self._stopping:
                    break
                now = time.monotonic()
                unusable_since = unusable_since or now
                if isinstance(exc, StoreUnavailable) or now - unusable_since > QUIET_PERIOD:
                    self._warn(f"cannot write to {self._describe()} yet ({exc}); keeping log records and retrying")
                delay = min(MAX_RETRY_DELAY, max(0.05, delay * 2))
                time.sleep(delay)
                continue
            except Exception as exc:  # a bug must cost these records, never the writer thread
                self._warn(f"dropped {len(batch)} log records: {exc!r}")
                self.count_dropped(len(batch))
            delay, unusable_since = 0.0, None
            self._mark_done(len(batch))
            batch = []
        self._close_store()

    def _write(self, batch: list[LogRow]) -> None:
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
        dropped = self._take_dropped() if not self._queue.qsize() else 0
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
            f"dropped {dropped} log records: the queue of {self.capacity} was full "
            "(logging faster than the database could take it, or the database was unavailable)"
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
