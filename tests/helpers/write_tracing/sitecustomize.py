"""For the torture test: every process started with this directory on PYTHONPATH records how long it held the write lock.

Each Django SQLite connection gets a trace callback (sqlite3's set_trace_callback sees every
statement, the implicit BEGIN IMMEDIATE and COMMIT included). A write transaction is timed from the
first statement after BEGIN (the lock is held by then) to the start of its COMMIT or ROLLBACK, so
the commit's own I/O is not counted. At exit the process writes its longest transaction and how
many it made to FINEFOUNDRY_WRITE_TRACE_DIR/<pid>.json. Nothing else changes.
"""

from __future__ import annotations

import atexit
import json
import os
import sys
import time

TRACE_DIR = os.environ.get("FINEFOUNDRY_WRITE_TRACE_DIR")

if TRACE_DIR:
    from django.db.backends.signals import connection_created

    stats = {"transactions": 0, "longest_seconds": 0.0, "longest_first_statement": ""}

    def trace(connection_state: dict):
        def callback(statement: str) -> None:
            word = statement.lstrip()[:8].upper()
            now = time.monotonic()
            if word.startswith("BEGIN"):
                connection_state["begun"] = True
                connection_state["started"] = None
            elif word.startswith(("COMMIT", "ROLLBACK")):
                started = connection_state.get("started")
                if started is not None:
                    stats["transactions"] += 1
                    if now - started > stats["longest_seconds"]:
                        stats["longest_seconds"] = now - started
                        stats["longest_first_statement"] = connection_state["first"][:200]
                connection_state.update(begun=False, started=None)
            elif connection_state.get("begun") and connection_state.get("started") is None:
                connection_state["started"] = now
                connection_state["first"] = statement

        return callback

    def install(sender, connection, **kwargs):
        if connection.vendor == "sqlite":
            connection.connection.set_trace_callback(trace({}))

    connection_created.connect(install, weak=False)

    def dump() -> None:
        if stats["transactions"]:
            stats["argv"] = sys.argv[:4]
            with open(os.path.join(TRACE_DIR, f"{os.getpid()}.json"), "w") as out:
                json.dump(stats, out)

    atexit.register(dump)
