"""transfer_database at scale: 1,000,000 pairs SQLite → PostgreSQL → SQLite, timed, exports compared.

    python -m bench.transfer --database-url postgres://user:pass@host/db [--pairs 1000000]

A scratch SQLite file is filled with plain sqlite3 (20 sessions), copied into a scratch
PostgreSQL database beside the URL's (the role needs CREATEDB; dropped at the end) and back into
a second file; each direction is timed, and every session's `export_session --format json` of
the first and last file is compared by sha256. Target: ≤ 60 s per direction.

The machine is shared, so next to each wall time it prints the CPU seconds spent (this process,
its `migrate` child, and the PostgreSQL server processes serving the scratch database, sampled
from /proc), the load average, and the wall time of each phase (from the command's progress lines).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [str(ROOT), *(entry for entry in sys.path if Path(entry or ".").resolve() != ROOT / "bench")]

from bench.scratch_django import migrated_template, setup_django  # noqa: E402
from bench.scratch_postgres import scratch_database  # noqa: E402

TARGET_SECONDS = 60.0
SESSIONS = 20


def fill(db: Path, pairs: int) -> None:
    connection = sqlite3.connect(db)
    filler = "a question about training data and tokens, with some more words "
    with connection:
        for number in range(SESSIONS):
            count = pairs // SESSIONS
            session_id = connection.execute(
                "INSERT INTO scrape_sessions (source, pair_count, metadata_json) VALUES ('bench', ?, ?)",
                (count, '{"z": 1, "a": [2, 3]}'),
            ).lastrowid
            connection.executemany(
                "INSERT INTO scraped_pairs (session_id, input_text, output_text, metadata_json) VALUES (?, ?, ?, ?)",
                (
                    (session_id, f"Q{number}-{i} {filler}", f"A{number}-{i} {filler * 2}", '{"b": 1, "a": 2}')
                    for i in range(count)
                ),
            )
    connection.close()


def export_digests(db: Path) -> list[str]:
    env = {key: value for key, value in os.environ.items() if key != "DATABASE_URL"}
    env["FINEFOUNDRY_DB"] = str(db)
    digests = []
    for session_id in range(1, SESSIONS + 1):
        out = subprocess.run(
            [sys.executable, "manage.py", "export_session", str(session_id), "--format", "json", "-o", "-"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            check=True,
        ).stdout
        digests.append(hashlib.sha256(out).hexdigest())
    return digests


def own_cpu() -> float:
    """CPU seconds (user + system) of this process and its waited-for children (the target's migrate)."""
    import resource

    return sum(
        usage.ru_utime + usage.ru_stime
        for usage in (resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN))
    )


class ServerCpu(threading.Thread):
    """CPU seconds of the PostgreSQL backends connected to one database, read from /proc while they live.

    A backend's title is `postgres: ... <user> <database> <host>(<port>) ...`; its last seen
    utime + stime counts (a backend exits with its connection, so it is sampled every 0.2 s).
    """

    def __init__(self, database: str):
        super().__init__(daemon=True)
        self.database, self.seen, self.stopped = database, {}, threading.Event()

    def run(self) -> None:
        ticks = os.sysconf("SC_CLK_TCK")
        while not self.stopped.wait(0.2):
            for pid in filter(str.isdigit, os.listdir("/proc")):
                try:
                    with open(f"/proc/{pid}/cmdline", "rb") as file:
                        title = file.read().decode(errors="replace")
                    if not title.startswith("postgres:") or f" {self.database} " not in title:
                        continue
                    with open(f"/proc/{pid}/stat") as file:
                        fields = file.read().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                self.seen[pid] = (int(fields[11]) + int(fields[12])) / ticks

    def seconds(self) -> float:
        self.stopped.set()
        self.join()
        return sum(self.seen.values())


class Phases:
    """Wall time per phase, from transfer_database's progress messages."""

    NAMES = (
        ("Migrating", "migrate the target"),
        ("Checking", "check the source"),
        ("Copying", "copy the rows"),
        ("Building", "build indexes and keys"),
        ("Verifying", "verify counts and checksums, commit"),
    )

    def __init__(self):
        self.start = time.perf_counter()
        self.marks: list[tuple[str, float]] = []

    def __call__(self, message: str) -> None:
        for prefix, name in self.NAMES:
            if message.startswith(prefix):
                self.marks.append((name, time.perf_counter()))

    def summary(self, end: float) -> str:
        ends = [at for _, at in self.marks[1:]] + [end]
        return ", ".join(f"{name} {stop - at:.1f} s" for (name, at), stop in zip(self.marks, ends, strict=True))


def timed(transfer_database, source: str, target: str, database: str) -> dict:
    server = ServerCpu(database)
    server.start()
    phases = Phases()
    cpu, load = own_cpu(), os.getloadavg()[0]
    transfer_database(source_url=source, target_url=target, progress=phases)
    end = time.perf_counter()
    return {
        "seconds": end - phases.start,
        "cpu": own_cpu() - cpu,
        "server": server.seconds(),
        "load": (load, os.getloadavg()[0]),
        "phases": phases.summary(end),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--pairs", type=int, default=1_000_000)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ff-bench-transfer-"))
    try:
        setup_django(work)
        from storage.services.transfer import transfer_database

        source = work / "source.db"
        shutil.copy(migrated_template(work), source)
        fill(source, args.pairs)
        back = work / "back.db"
        database = f"ff_bench_transfer_{os.getpid()}"
        with scratch_database(args.database_url, database, migrate=False) as url:
            there = timed(transfer_database, str(source), url, database)
            back_again = timed(transfer_database, url, str(back), database)
        same = export_digests(source) == export_digests(back)
        print(f"{args.pairs:,} pairs in {SESSIONS} sessions (migrate of the target included)")
        for label, run in (("SQLite -> PostgreSQL", there), ("PostgreSQL -> SQLite", back_again)):
            seconds = run["seconds"]
            verdict = "OK" if seconds <= TARGET_SECONDS else f"MISSED (target <= {TARGET_SECONDS:.0f} s)"
            print(f"{label}: {seconds:6.1f} s  {args.pairs / seconds:10,.0f} pairs/s  {verdict}")
            print(
                f"  CPU: {run['cpu']:.1f} s this process + migrate child, {run['server']:.1f} s PostgreSQL server;"
                f" load average {run['load'][0]:.1f} at the start, {run['load'][1]:.1f} at the end"
            )
            print(f"  phases: {run['phases']}")
        print(f"exports of every session identical after the round trip (sha256): {same}")
        return 0 if same else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
