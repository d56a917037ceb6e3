"""What an idle jobs worker costs the desktop app's writers on SQLite.

A desktop-style writer (plain sqlite3, 5 s busy timeout, one INSERT and COMMIT per call) writes
pairs for a fixed time, first alone, then beside an idle `manage.py db_worker` (the interval
`tasks.py serve` uses, 2 s, and a worst case of 0.05 s). Printed: commits, the slowest commit and
the 99th percentile in each round, and the ratios against the round without a worker.

    python -m bench.jobs_worker [--seconds 20]
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.scratch_django import ROOT, migrated_template


def write_for(db: Path, seconds: float) -> list[float]:
    connection = sqlite3.connect(db, timeout=5)
    connection.execute("PRAGMA busy_timeout=5000")
    connection.execute("INSERT INTO scrape_sessions (source, name) VALUES ('bench', 'writer')")
    session_id = connection.execute("SELECT max(id) FROM scrape_sessions").fetchone()[0]
    connection.commit()
    latencies = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        started = time.perf_counter()
        connection.execute(
            "INSERT INTO scraped_pairs (session_id, input_text, output_text) VALUES (?, 'q', 'a')", (session_id,)
        )
        connection.commit()
        latencies.append(time.perf_counter() - started)
    connection.close()
    return latencies


def round_with(db: Path, interval: str | None, seconds: float) -> list[float]:
    worker = None
    if interval is not None:
        env = {**os.environ, "FINEFOUNDRY_DB": str(db), "FINEFOUNDRY_STORAGE_ROOT": str(db.parent / "outputs")}
        env.pop("DATABASE_URL", None)
        worker = subprocess.Popen(
            [sys.executable, "manage.py", "db_worker", "--no-reload", "--no-startup-delay", "--interval", interval],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(3)  # past Django's start-up
    try:
        return write_for(db, seconds)
    finally:
        if worker is not None:
            worker.terminate()
            worker.wait(timeout=30)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ff-bench-jobs-"))
    db = migrated_template(work)
    rounds = {"no worker": None, "worker, 2 s interval": "2", "worker, 0.05 s interval": "0.05"}
    results = {name: round_with(db, interval, args.seconds) for name, interval in rounds.items()}
    base = results["no worker"]
    base_p99 = statistics.quantiles(base, n=100)[98]
    for name, latencies in results.items():
        p99 = statistics.quantiles(latencies, n=100)[98]
        print(
            f"{name:26} {len(latencies):7,} commits  max {max(latencies) * 1000:7.1f} ms"
            f"  p99 {p99 * 1000:6.2f} ms  (p99 ×{p99 / base_p99:.2f}, max ×{max(latencies) / max(base):.2f})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
