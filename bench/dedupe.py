"""Dedupe and merge speed at a million pairs, on a copy of bench/search.py's cached database.

The copy gets 5 % exact duplicates and 5 % duplicates that differ only in case and whitespace
(so about 1,100,000 pairs in 20 sessions), then remove_duplicates runs as a user would: a dry
run, exact, normalised, and normalised across all sessions. Then two sessions are merged both ways.

    python -m bench.dedupe [--pairs 1000000]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# "At a million pairs it finishes in seconds, not minutes."
TARGET_SECONDS = 60.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=1_000_000)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="ff-bench-dedupe-"))
    os.environ["FINEFOUNDRY_DB"] = str(work / "unused.db")
    os.environ["FINEFOUNDRY_STORAGE_ROOT"] = str(work / "outputs")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "finefoundry.settings")
    import django

    django.setup()
    from django.db import connections

    from bench import search as bench_search

    try:
        source = bench_search.database(args.pairs, rebuild=False)
        copy = work / "dedupe.db"
        shutil.copy(source, copy)
        connections["default"].close()
        connections["default"].settings_dict["NAME"] = str(copy)
        return run(connections["default"])
    finally:
        connections["default"].close()
        shutil.rmtree(work, ignore_errors=True)


def run(connection) -> int:
    from storage.models import ScrapeSession
    from storage.services.dedupe import remove_duplicates
    from storage.services.merge import merge_sessions

    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO scraped_pairs (session_id, input_text, output_text)"
            " SELECT session_id, input_text, output_text FROM scraped_pairs WHERE id % 20 = 0"
        )
        cursor.execute(
            "INSERT INTO scraped_pairs (session_id, input_text, output_text)"
            " SELECT session_id, '  ' || upper(input_text), replace(output_text, ' ', '   ')"
            " FROM scraped_pairs WHERE id % 20 = 1"
        )
        cursor.execute("SELECT count(*) FROM scraped_pairs")
        total = cursor.fetchone()[0]
    from storage.services.pair_counts import repair_pair_counts

    repair_pair_counts()
    ids = list(ScrapeSession.objects.order_by("id").values_list("pk", flat=True))
    print(f"{total:,} pairs in {len(ids)} sessions")
    ok = True
    for label, options in (
        ("dry run, exact", {"dry_run": True}),
        ("exact, within each session", {}),
        ("normalised, within each session", {"normalize": True}),
        ("normalised, across all sessions", {"normalize": True, "across_sessions": True}),
    ):
        start = time.perf_counter()
        result = remove_duplicates(session_ids=ids, **options)
        seconds = time.perf_counter() - start
        ok &= seconds <= TARGET_SECONDS
        print(f"  remove_duplicates {label:<34} {seconds:6.2f} s  {result.removed:>8,} pairs")
    first, second = ids[:2]
    for mode in ("concatenate", "interleave"):
        start = time.perf_counter()
        merged = merge_sessions(session_ids=[first, second], mode=mode)
        seconds = time.perf_counter() - start
        ok &= seconds <= TARGET_SECONDS
        print(f"  merge_sessions {mode:<37} {seconds:6.2f} s  {merged.pair_count:>8,} pairs")
    print(f"target: each under {TARGET_SECONDS:.0f} s -> {'OK' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
