"""What each index of migration 0012 (the pairs list's filters) costs an insert, in one run.

The desktop app's path: plain sqlite3 executemany of N pairs in one transaction (as bench.ingest's
raw_ingest, with a thread URL on every pair and metadata on every other) into a copy of the
migrated schema, with none of the four indexes, each one alone, the three expression indexes, and
all four; rounds interleave the variants. Prints the median pairs/s, the CPU time of the load
(user+sys of this process: sqlite3 runs in it) and both ratios to "none" measured in the same run.
`--repeat 6` makes the texts six times longer (about 1.9 kB a pair), since length() reads the whole text.

    python -m bench.filter_indexes [--pairs 200000] [--rounds 3] [--repeat 1]
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from contextlib import closing
from pathlib import Path

from bench.ingest import make_pairs
from bench.scratch_django import migrated_template, setup_django


def desktop_ingest(db: Path, rows: list[tuple]) -> float:
    """Plain sqlite3 executemany in one transaction, as the desktop app writes."""
    connection = sqlite3.connect(db, isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")
    session_id = connection.execute("INSERT INTO scrape_sessions (source) VALUES ('bench')").lastrowid
    start = time.perf_counter()
    connection.execute("BEGIN IMMEDIATE")
    connection.executemany(
        "INSERT INTO scraped_pairs (session_id, input_text, output_text, source_url, metadata_json)"
        " VALUES (?, ?, ?, ?, ?)",
        ((session_id, *row) for row in rows),
    )
    connection.execute("UPDATE scrape_sessions SET pair_count = pair_count + ? WHERE id = ?", (len(rows), session_id))
    connection.execute("COMMIT")
    elapsed = time.perf_counter() - start
    connection.close()
    return elapsed


def variant_database(template: Path, target: Path, keep: tuple[str, ...], names: tuple[str, ...]) -> None:
    shutil.copy(template, target)
    with closing(sqlite3.connect(target)) as connection:
        for name in names:
            if name not in keep:
                connection.execute(f"DROP INDEX {name}")
        connection.commit()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=1, help="repeat each text this many times")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ff-bench-filter-indexes-"))
    try:
        setup_django(work)
        migration = importlib.import_module("storage.migrations.0012_pair_filter_indexes")
        names = (*migration.INDEXES, migration.URL_INDEX)
        template = migrated_template(work)
        # Like a scraper's pairs: a thread URL per 20 pairs, and metadata on every other pair.
        pairs = [
            (
                p["input"] * args.repeat,
                p["output"] * args.repeat,
                f"https://www.reddit.com/r/LocalLLaMA/comments/{n // 20:x}/",
                json.dumps({"score": n, "subreddit": "LocalLLaMA"}) if n % 2 else None,
            )
            for n, p in enumerate(make_pairs(args.pairs))
        ]
        size = sum(len(p[0]) + len(p[1]) for p in pairs) / len(pairs)
        variants = {
            "none": (),
            **{name: (name,) for name in names},
            "the three expressions": names[:3],
            "all four": names,
        }
        walls: dict[str, list[float]] = {label: [] for label in variants}
        cpus: dict[str, list[float]] = {label: [] for label in variants}
        for round_no in range(args.rounds):
            for label, keep in variants.items():
                db = work / f"{round_no}-{len(walls[label])}-{label.replace(' ', '-')}.db"
                variant_database(template, db, keep, names)
                cpu = time.process_time()
                walls[label].append(desktop_ingest(db, pairs))
                cpus[label].append(time.process_time() - cpu)
                for suffix in ("", "-wal", "-shm"):
                    Path(f"{db}{suffix}").unlink(missing_ok=True)
        print(f"{len(pairs):,} pairs, {size:.0f} characters each, {args.rounds} rounds, load {os.getloadavg()[0]:.1f}")
        base_wall = statistics.median(walls["none"])
        base_cpu = statistics.median(cpus["none"])
        print(f"{'indexes':<30} {'pairs/s':>10} {'CPU s':>7} {'wall/none':>10} {'CPU/none':>9}")
        for label in variants:
            wall, cpu = statistics.median(walls[label]), statistics.median(cpus[label])
            print(
                f"{label:<30} {len(pairs) / wall:>10,.0f} {cpu:>7.2f} {wall / base_wall:>9.2f}x {cpu / base_cpu:>8.2f}x"
            )
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
