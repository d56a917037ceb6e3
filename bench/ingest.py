"""Ingest speed: storage.api.add_scraped_pairs against the engine's fastest plain load, in one run.

Both load the same 200,000 pairs (about 300 bytes each, from the same list of dicts a scraper
produces) into the same schema, the one `manage.py migrate` makes. Rounds alternate between the
two; medians are printed with the ratio.

- SQLite (default): identical database files, WAL and synchronous=NORMAL, against plain sqlite3
  executemany.
- PostgreSQL (`--database-url postgres://user:pass@host/db`): a scratch database is created next
  to the one the URL names (the role needs CREATEDB) and dropped at the end; the baseline is
  plain psycopg `COPY` into the same table with the same indexes (pg_trgm GIN included). For
  information, the same COPY without the trigram indexes shows what they cost.

    python -m bench.ingest [--pairs 200000] [--rounds 3] [--database-url URL [--ratio-only]]
"""

from __future__ import annotations

import argparse
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

from bench.scratch_django import migrated_template, setup_django  # noqa: E402

TARGET_RATIO = 0.8


def make_pairs(count: int, seed: int = 7) -> list[dict]:
    rng = random.Random(seed)
    words = ["the", "model", "answer", "question", "data", "train", "token", "llama", "prompt", "output", "thread"]
    pairs = []
    for i in range(count):
        question = " ".join(rng.choices(words, k=12))
        answer = " ".join(rng.choices(words, k=36))
        pairs.append({"input": f"Q{i}: {question}?", "output": f"A{i}: {answer}."})
    return pairs


def raw_ingest(db: Path, pairs: list[dict]) -> float:
    connection = sqlite3.connect(db, isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")
    session_id = connection.execute("INSERT INTO scrape_sessions (source) VALUES ('bench')").lastrowid
    start = time.perf_counter()
    connection.execute("BEGIN IMMEDIATE")
    connection.executemany(
        "INSERT INTO scraped_pairs (session_id, input_text, output_text, source_url, metadata_json)"
        " VALUES (?, ?, ?, ?, ?)",
        ((session_id, p["input"], p["output"], None, None) for p in pairs),
    )
    connection.execute("UPDATE scrape_sessions SET pair_count = pair_count + ? WHERE id = ?", (len(pairs), session_id))
    connection.execute("COMMIT")
    elapsed = time.perf_counter() - start
    connection.close()
    return elapsed


def our_ingest(db: Path, pairs: list[dict]) -> float:
    from django.db import connections

    from storage import api

    connections["default"].close()
    connections["default"].settings_dict["NAME"] = str(db)
    session_id = api.create_scrape_session("bench")
    start = time.perf_counter()
    added = api.add_scraped_pairs(session_id, pairs)
    elapsed = time.perf_counter() - start
    assert added == len(pairs), added
    connections["default"].close()
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--database-url", help="a PostgreSQL URL: benchmark there instead of SQLite")
    parser.add_argument(
        "--ratio-only",
        action="store_true",
        help="PostgreSQL: only the ratio against plain COPY (skip the old-index and merge comparisons)",
    )
    args = parser.parse_args()
    if args.database_url:
        from bench.postgres_ingest import main_postgres

        return main_postgres(
            args.database_url,
            make_pairs(args.pairs),
            rounds=args.rounds,
            target=TARGET_RATIO,
            ratio_only=args.ratio_only,
        )

    work = Path(tempfile.mkdtemp(prefix="ff-bench-ingest-"))
    try:
        setup_django(work)

        template = migrated_template(work)
        pairs = make_pairs(args.pairs)
        size = sum(len(p["input"]) + len(p["output"]) for p in pairs) / len(pairs)
        print(f"{len(pairs):,} pairs, {size:.0f} bytes of text each on average, {args.rounds} rounds")

        raw_times, our_times = [], []
        for round_no in range(args.rounds):
            for label, ingest, times in (("raw", raw_ingest, raw_times), ("ours", our_ingest, our_times)):
                db = work / f"{label}-{round_no}.db"
                shutil.copy(template, db)
                times.append(ingest(db, pairs))
                for suffix in ("", "-wal", "-shm"):
                    Path(f"{db}{suffix}").unlink(missing_ok=True)

        raw_rate = len(pairs) / statistics.median(raw_times)
        our_rate = len(pairs) / statistics.median(our_times)
        ratio = our_rate / raw_rate
        print(f"plain sqlite3 executemany : {raw_rate:12,.0f} pairs/s (median of {args.rounds})")
        print(f"storage.api.add_scraped_pairs: {our_rate:9,.0f} pairs/s (median of {args.rounds})")
        verdict = "OK" if ratio >= TARGET_RATIO else "BELOW TARGET"
        print(f"ratio ours/raw: {ratio:.2f} (target >= {TARGET_RATIO}) {verdict}")
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
