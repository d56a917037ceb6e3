"""Search right after a large import: is it at the indexed speed, or does it scan an unindexed backlog?

Builds a JSONL file of N English-like pairs (bench.search's generator, "quokka" planted in 12), then in
the same run, on two fresh databases:

- import: `manage.py import_pairs FILE` (which now indexes what it imported before it exits);
- backlog: the same pairs inserted with plain sqlite3 and left unindexed, which is what an import left
  behind before (its background indexing thread died with the command's process).

Each database is then searched by a new process, as the admin would a few seconds later, and the
median search time of the first searches is printed, with the ratio.

    python -m bench.import_search [--pairs 200000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.search import RARE_COUNT, RARE_WORD, make_pair, plant, vocabulary

ROOT = Path(__file__).resolve().parent.parent

SEARCH_SCRIPT = """
import os, statistics, sys, time
import django
django.setup()
from storage import api
times = []
for query in sys.argv[2:]:
    start = time.perf_counter()
    found = api.search_pairs(query, limit=50)
    times.append((time.perf_counter() - start) * 1000)
print(" ".join(f"{t:.1f}" for t in times))
"""


def environment(db: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key != "DATABASE_URL"}
    env.update(FINEFOUNDRY_DB=str(db), DJANGO_SETTINGS_MODULE="finefoundry.settings")
    env["FINEFOUNDRY_STORAGE_ROOT"] = str(db.parent / "training_outputs")
    return env


def manage(db: Path, *args: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=environment(db), check=True, capture_output=True)
    return time.perf_counter() - start


def searches(db: Path, queries: list[str]) -> list[float]:
    result = subprocess.run(
        [sys.executable, "-c", SEARCH_SCRIPT, "x", *queries],
        cwd=ROOT,
        env=environment(db),
        check=True,
        capture_output=True,
        text=True,
    )
    return [float(value) for value in result.stdout.split()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=5)
    options = parser.parse_args()
    rng = random.Random(7)
    words, cumulative = vocabulary(rng)
    pairs = [make_pair(rng, words, cumulative) for _ in range(options.pairs)]
    for index in rng.sample(range(options.pairs), RARE_COUNT):
        plant(pairs[index], rng, RARE_WORD)
    queries = [RARE_WORD, "quokk", "okka"][: max(1, options.rounds)] * options.rounds
    with tempfile.TemporaryDirectory() as scratch:
        data = Path(scratch) / "pairs.jsonl"
        data.write_text("".join(json.dumps(pair) + "\n" for pair in pairs), encoding="utf-8")
        results = {}
        for case in ("import", "backlog"):
            db = Path(scratch) / case / "finefoundry.db"
            db.parent.mkdir()
            manage(db, "migrate", "-v", "0")
            if case == "import":
                took = manage(db, "import_pairs", str(data), "--source", "bench", "-v", "0")
            else:
                start = time.perf_counter()
                with sqlite3.connect(db) as plain:
                    session = plain.execute("INSERT INTO scrape_sessions (source) VALUES ('bench')").lastrowid
                    plain.executemany(
                        "INSERT INTO scraped_pairs (session_id, input_text, output_text) VALUES (?, ?, ?)",
                        ((session, pair["input"], pair["output"]) for pair in pairs),
                    )
                plain.close()
                took = time.perf_counter() - start
            times = searches(db, queries)
            results[case] = times
            median = sorted(times)[len(times) // 2]
            print(
                f"{case:8} {options.pairs:,} pairs written in {took:.1f} s; first search {times[0]:.0f} ms, "
                f"median of {len(times)} searches {median:.1f} ms"
            )
        ratio = sorted(results["backlog"])[len(queries) // 2] / max(sorted(results["import"])[len(queries) // 2], 0.01)
        print(f"searching right after the import is {ratio:.0f}x faster than over the unindexed backlog")


if __name__ == "__main__":
    main()
