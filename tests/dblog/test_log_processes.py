"""Several processes logging into one database at once: every record arrives, exactly once."""

from __future__ import annotations

import logging
import multiprocessing
import os
import subprocess
import sys
import threading
from pathlib import Path

from storage.dblog.handler import DatabaseLogHandler
from tests.helpers.logs import count_rows, stored_rows
from tests.helpers.processes import PROJECT_ROOT, child_env

CHILD_SCRIPT = """
import logging, os, threading
from storage import api

api.setup_database_logging(logging.INFO, logger_name="tests.proc")
log = logging.getLogger("tests.proc")
log.propagate = False

def work(thread):
    for i in range(200):
        log.info("pid %d thread %d record %d", os.getpid(), thread, i)

threads = [threading.Thread(target=work, args=(n,)) for n in range(2)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
# No flush: what is still queued is written at interpreter exit.
"""


def test_three_processes_with_two_threads_each_lose_nothing(migrated_db):
    env = child_env(migrated_db)
    children = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD_SCRIPT],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    for child in children:
        _, err = child.communicate(timeout=120)
        assert child.returncode == 0, err
        assert err == ""
    rows = stored_rows(migrated_db, logger="tests.proc")
    assert len(rows) == 1200
    assert len({row["message"] for row in rows}) == 1200
    assert count_rows(migrated_db, logger="finefoundry.logging") == 0


def _log_from_forked_child(name: str) -> None:
    logger = logging.getLogger(name)

    def work(thread: int) -> None:
        for i in range(300):
            logger.info("pid %d thread %d record %d", os.getpid(), thread, i)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # No flush: multiprocessing children end with os._exit, and the writer must still finish.


def test_forked_children_get_their_own_writer_and_flush_on_exit(migrated_db: Path):
    name = "tests.fork"
    handler = DatabaseLogHandler(database=migrated_db)
    logger = logging.getLogger(name)
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        logger.info("parent before fork")  # the parent's writer thread is running when we fork
        assert handler.flush(timeout=30)
        context = multiprocessing.get_context("fork")
        children = [context.Process(target=_log_from_forked_child, args=(name,)) for _ in range(3)]
        for child in children:
            child.start()
        logger.info("parent while children run")
        for child in children:
            child.join(timeout=120)
            assert child.exitcode == 0
        logger.info("parent after fork")
        assert handler.flush(timeout=30)
    finally:
        logger.removeHandler(handler)
        handler.close()
        logger.propagate = True

    messages = [row["message"] for row in stored_rows(migrated_db, logger=name)]
    assert len(messages) == 3 + 3 * 600
    assert len(set(messages)) == len(messages)
    parent = [m for m in messages if m.startswith("parent")]
    assert parent == ["parent before fork", "parent while children run", "parent after fork"]


def test_writer_waits_for_another_process_holding_the_write_lock(migrated_db: Path):
    """A long write by another process delays the rows, never the caller, and loses none."""
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sqlite3, sys, time\n"
            f"db = sqlite3.connect({str(migrated_db)!r}, isolation_level=None)\n"
            "db.execute('BEGIN IMMEDIATE')\n"
            "print('locked', flush=True)\n"
            "sys.stdin.readline()\n"
            "db.execute('COMMIT')\n",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    handler = DatabaseLogHandler(database=migrated_db)
    logger = logging.getLogger("tests.locked")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        assert holder.stdout.readline().strip() == "locked"
        for i in range(100):
            logger.info("while locked %d", i)
        assert handler.flush(timeout=0.3) is False
        holder.stdin.write("\n")
        holder.stdin.flush()
        assert holder.wait(timeout=30) == 0
        assert handler.flush(timeout=60)
    finally:
        logger.removeHandler(handler)
        handler.close()
    assert count_rows(migrated_db, logger="tests.locked") == 100
