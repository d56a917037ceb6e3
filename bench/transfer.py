"""transfer_database at scale: 1,000,000 pairs SQLite → PostgreSQL → SQLite, timed, exports compared.

    python -m bench.transfer --database-url postgres://user:pass@host/db [--pairs 1000000]

A scratch SQLite file is filled with plain sqlite3 (20 sessions), copied into a scratch
PostgreSQL database beside the URL's (the role needs CREATEDB; dropped at the end) and back into
a second file; each direction is timed, and every session's `export_session --format json` of
the first and last file is compared by sha256. Target: ≤ 60 s per direction.
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
        with scratch_database(args.database_url, f"ff_bench_transfer_{os.getpid()}", migrate=False) as url:
            start = time.perf_counter()
            transfer_database(source_url=str(source), target_url=url)
            there = time.perf_counter() - start
            start = time.perf_counter()
            transfer_database(source_url=url, target_url=str(back))
            back_again = time.perf_counter() - start
        same = export_digests(source) == export_digests(back)
        print(f"{args.pairs:,} pairs in {SESSIONS} sessions (migrate of the target included)")
        for label, seconds in (("SQLite -> PostgreSQL", there), ("PostgreSQL -> SQLite", back_again)):
            verdict = "OK" if seconds <= TARGET_SECONDS else f"MISSED (target <= {TARGET_SECONDS:.0f} s)"
            print(f"{label}: {seconds:6.1f} s  {args.pairs / seconds:10,.0f} pairs/s  {verdict}")
        print(f"exports of every session identical after the round trip (sha256): {same}")
        return 0 if same else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
