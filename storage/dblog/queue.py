"""The log writer's queue: bounded in rows and in bytes, and able to make a caller wait for room.

A deque and one Condition, nothing of `queue.Queue`'s private hooks. Sizes are what the caller
says a row weighs (the log writer counts the characters of the message and traceback plus a
fixed overhead per row), so the bound is on memory, not on a number of rows of any size.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable


class LogQueue:
    """Rows in order, with their sizes; `put` may wait (bounded) for room, `get_batch` takes many."""

    def __init__(self, *, max_rows: int, max_bytes: int):
        if max_rows < 1 or max_bytes < 1:
            raise ValueError("max_rows and max_bytes must be at least 1")
        self.max_rows = max_rows
        self.max_bytes = max_bytes
        self._items: deque[tuple[object, int]] = deque()
        self.nbytes = 0
        self.put_total = 0  # rows ever accepted: flush() waits for the writer to get this far
        self.taken_total = 0  # rows ever handed to the writer: waiting callers watch it move
        # Re-entrant: a signal handler that logs while this thread is inside put() must not deadlock.
        self._changed = threading.Condition(threading.RLock())

    def __len__(self) -> int:
        return len(self._items)

    def _has_room(self, size: int) -> bool:
        # An oversized row still gets in when the queue is empty, or it could never be stored.
        items = self._items
        return not items or (len(items) < self.max_rows and self.nbytes + size <= self.max_bytes)

    def put(self, item: object, size: int, *, may_wait: Callable[[float], bool] | None = None) -> bool:
        """Add `item`; without room, wait while `may_wait(waiting_since)` holds; False (not added) if none came."""
        with self._changed:
            waiting_since = None
            while not self._has_room(size):
                if waiting_since is None:
                    waiting_since = time.monotonic()
                if may_wait is None or not may_wait(waiting_since):
                    return False
                self._changed.wait(0.05)
            self._items.append((item, size))
            self.nbytes += size
            self.put_total += 1
            self._changed.notify_all()
            return True

    def get_batch(self, max_rows: int, max_bytes: int, linger: float = 0.0) -> list:
        """Wait for a row, give a trickle `linger` seconds to grow, then take up to max_rows / max_bytes."""
        with self._changed:
            if not self._items:
                self._changed.wait()
            if not self._items:
                return []  # woken by wake()
        if linger and len(self._items) < max_rows:
            time.sleep(linger)
        with self._changed:
            items = self._items
            batch: list = []
            size_total = 0
            while items and len(batch) < max_rows:
                item, size = items[0]
                if batch and size_total + size > max_bytes:
                    break
                items.popleft()
                batch.append(item)
                size_total += size
            self.nbytes -= size_total
            self.taken_total += len(batch)
            self._changed.notify_all()
            return batch

    def wake(self) -> None:
        """Wake the writer waiting for rows and every caller waiting for room (to look again)."""
        with self._changed:
            self._changed.notify_all()
