"""bench/ingest.py on PostgreSQL: add_scraped_pairs against plain psycopg COPY, same schema and indexes.

Also, for information, in the same run: plain COPY with 0003's old trigram indexes on scraped_pairs
itself (what ingest cost before the lazy index), how fast the background indexer then catches up,
and merge_sessions of two sessions (the ingested pairs) with the lazy index and with the old indexes.
"""

from __future__ import annotations

import os
import statistics
import time

from bench.scratch_postgres import conninfo, scratch_database

COPY_SQL = "COPY scraped_pairs (session_id, input_text, output_text, source_url, metadata_json) FROM STDIN"


def reset(connection) -> int:
    connection.execute("TRUNCATE scraped_pairs, scrape_sessions RESTART IDENTITY CASCADE")
    connection.execute("TRUNCATE storage_pair_search")
    connection.execute("UPDATE storage_pair_search_state SET indexed_through = 0")
    return connection.execute("INSERT INTO scrape_sessions (source) VALUES ('bench') RETURNING id").fetchone()[0]


class Cpu:
    """CPU seconds (user + system) of this process and of one PostgreSQL backend (from /proc), since start.

    Wall time on a shared machine swings with everybody's disk and CPU; the CPU both sides spend on
    the same rows does not, so the bench prints that ratio too.
    """

    def __init__(self, backend_pid: int):
        self.path = f"/proc/{backend_pid}/stat"
        self.start = self._now()

    def _now(self) -> tuple[float, float]:
        import resource

        usage = resource.getrusage(resource.RUSAGE_SELF)
        with open(self.path) as file:
            fields = file.read().rsplit(")", 1)[1].split()
        return usage.ru_utime + usage.ru_stime, (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def seconds(self) -> tuple[float, float]:
        """(client, server) CPU seconds since start."""
        now = self._now()
        return now[0] - self.start[0], now[1] - self.start[1]


def raw_copy(connection, pairs: list[dict], cpu: dict | None = None) -> float:
    session_id = reset(connection)
    meter = Cpu(connection.info.backend_pid)
    start = time.perf_counter()
    with connection.transaction(), connection.cursor() as cursor:
        with cursor.copy(COPY_SQL) as copy:
            for p in pairs:
                copy.write_row((session_id, p["input"], p["output"], None, None))
        cursor.execute(
            "UPDATE scrape_sessions SET pair_count = pair_count + %s WHERE id = %s", (len(pairs), session_id)
        )
    elapsed = time.perf_counter() - start
    if cpu is not None:
        cpu.setdefault("raw", []).append(meter.seconds())
    return elapsed


def our_ingest(connection, pairs: list[dict], *, catch_up: bool, cpu: dict) -> tuple[float, float]:
    """(seconds of add_scraped_pairs, seconds until the background indexer has caught up, if asked)."""
    from django.db import connections
    from django.test import override_settings

    from storage import api
    from storage.search import index as search_index

    session_id = reset(connection)
    connections["default"].ensure_connection()
    meter = Cpu(connections["default"].connection.info.backend_pid)
    # Only the first round lets the background indexer run (and times it), so it never overlaps a measurement.
    with override_settings(FINEFOUNDRY_SEARCH_BACKEND="auto" if catch_up else "like"):
        start = time.perf_counter()
        added = api.add_scraped_pairs(session_id, pairs)
        elapsed = time.perf_counter() - start
    cpu.setdefault("ours", []).append(meter.seconds())
    assert added == len(pairs), added
    search_index.wait_for_background()
    caught_up = time.perf_counter() - start - elapsed
    if catch_up:
        assert connection.execute("SELECT indexed_through FROM storage_pair_search_state").fetchone()[0] > 0
    else:
        caught_up = float("nan")
    connections["default"].close()
    return elapsed, caught_up


def merge(connection, pairs: list[dict]) -> float:
    """merge_sessions of two sessions holding len(pairs) pairs together (concatenate).

    The background indexer is off (FINEFOUNDRY_SEARCH_BACKEND=like) so it does not run into the next
    measurement; the merge itself is the same statements either way.
    """
    from django.db import connections
    from django.test import override_settings

    from storage.services.merge import merge_sessions

    reset(connection)
    half = len(pairs) // 2
    ids = []
    for part in (pairs[:half], pairs[half:]):
        session_id = connection.execute(
            "INSERT INTO scrape_sessions (source) VALUES ('bench') RETURNING id"
        ).fetchone()[0]
        with connection.transaction(), connection.cursor() as cursor, cursor.copy(COPY_SQL) as copy:
            for p in part:
                copy.write_row((session_id, p["input"], p["output"], None, None))
        ids.append(session_id)
    with override_settings(FINEFOUNDRY_SEARCH_BACKEND="like"):
        start = time.perf_counter()
        merge_sessions(session_ids=ids)
        elapsed = time.perf_counter() - start
    connections["default"].close()
    return elapsed


def with_old_indexes(connection, function):
    """Run `function` with 0003's trigram indexes on scraped_pairs (the design before the lazy index)."""
    import importlib

    old = importlib.import_module("storage.migrations.0003_postgres_search").OLD_INDEX_STATEMENTS
    for statement in old[:2]:
        connection.execute(statement)
    try:
        return function()
    finally:
        from storage.search import postgres

        for name in postgres.OLD_TRIGRAM_INDEXES:
            connection.execute(f"DROP INDEX IF EXISTS {name}")


def main_postgres(url: str, pairs: list[dict], *, rounds: int, target: float, ratio_only: bool = False) -> int:
    import psycopg

    with scratch_database(url, f"ff_bench_ingest_{os.getpid()}") as scratch:
        os.environ["DATABASE_URL"] = scratch
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "finefoundry.settings")
        import django

        django.setup()
        size = sum(len(p["input"]) + len(p["output"]) for p in pairs) / len(pairs)
        print(f"PostgreSQL: {len(pairs):,} pairs, {size:.0f} bytes of text each on average, {rounds} rounds")
        connection = psycopg.connect(conninfo(scratch), autocommit=True)
        times: dict[str, list[float]] = {"raw": [], "ours": [], "catch-up": [], "old": [], "merge": [], "merge old": []}
        cpu: dict[str, list[tuple[float, float]]] = {}
        for number in range(rounds):
            # Odd rounds run ours first, so a drift of the machine's load does not favour one side.
            if number % 2 == 0:
                times["raw"].append(raw_copy(connection, pairs, cpu))
            ours, caught_up = our_ingest(connection, pairs, catch_up=number == 0, cpu=cpu)
            times["ours"].append(ours)
            if number % 2 == 1:
                times["raw"].append(raw_copy(connection, pairs, cpu))
            if number == 0:
                times["catch-up"].append(caught_up)
            if ratio_only:
                continue
            times["merge"].append(merge(connection, pairs))
            times["old"].append(with_old_indexes(connection, lambda: raw_copy(connection, pairs)))
            times["merge old"].append(with_old_indexes(connection, lambda: merge(connection, pairs)))
        connection.close()

    median = {label: statistics.median(values) for label, values in times.items() if values}
    rate = {label: len(pairs) / seconds for label, seconds in median.items()}
    ratio = rate["ours"] / rate["raw"]
    print(f"plain psycopg COPY (same schema and indexes)     : {rate['raw']:10,.0f} pairs/s (median of {rounds})")
    print(f"storage.api.add_scraped_pairs (lazy search index): {rate['ours']:10,.0f} pairs/s")
    each = zip(times["raw"], times["ours"], strict=True)
    print("  each round, raw / ours s: " + ", ".join(f"{raw:.2f} / {ours:.2f}" for raw, ours in each))
    print(f"  then the background indexer caught up at        {rate['catch-up']:10,.0f} pairs/s")
    if not ratio_only:
        print(
            f"plain COPY with 0003's GIN indexes on scraped_pairs: {rate['old']:8,.0f} pairs/s (before the lazy index)"
        )
        print(
            f"merge_sessions of {len(pairs):,} pairs: {median['merge']:.2f} s with the lazy index,"
            f" {median['merge old']:.2f} s with 0003's indexes ({median['merge old'] / median['merge']:.1f}x)"
        )
    total = {label: statistics.median(client + server for client, server in runs) for label, runs in cpu.items()}
    for label in ("raw", "ours"):
        client = statistics.median(run[0] for run in cpu[label])
        server = statistics.median(run[1] for run in cpu[label])
        print(f"  CPU {label:<4}: {client:.2f} s this process + {server:.2f} s PostgreSQL backend (medians)")
    print(f"CPU ratio raw/ours (same rows, load-independent): {total['raw'] / total['ours']:.2f}")
    verdict = "OK" if ratio >= target else "BELOW TARGET"
    print(f"ratio ours/raw COPY: {ratio:.3f} (target >= {target}) {verdict}; load average {os.getloadavg()[0]:.1f}")
    return 0
