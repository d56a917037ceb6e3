"""bench/ingest.py on PostgreSQL: add_scraped_pairs against plain psycopg COPY, same schema and indexes."""

from __future__ import annotations

import os
import statistics
import time

from bench.scratch_postgres import conninfo, scratch_database

COPY_SQL = "COPY scraped_pairs (session_id, input_text, output_text, source_url, metadata_json) FROM STDIN"
TRIGRAM_INDEXES = ("idx_scraped_pairs_input_trgm", "idx_scraped_pairs_output_trgm")


def reset(connection) -> int:
    connection.execute("TRUNCATE scraped_pairs, scrape_sessions RESTART IDENTITY CASCADE")
    return connection.execute("INSERT INTO scrape_sessions (source) VALUES ('bench') RETURNING id").fetchone()[0]


def raw_copy(connection, pairs: list[dict]) -> float:
    session_id = reset(connection)
    start = time.perf_counter()
    with connection.transaction(), connection.cursor() as cursor:
        with cursor.copy(COPY_SQL) as copy:
            for p in pairs:
                copy.write_row((session_id, p["input"], p["output"], None, None))
        cursor.execute(
            "UPDATE scrape_sessions SET pair_count = pair_count + %s WHERE id = %s", (len(pairs), session_id)
        )
    return time.perf_counter() - start


def our_ingest(connection, pairs: list[dict]) -> float:
    from django.db import connections

    from storage import api

    session_id = reset(connection)
    start = time.perf_counter()
    added = api.add_scraped_pairs(session_id, pairs)
    elapsed = time.perf_counter() - start
    assert added == len(pairs), added
    connections["default"].close()
    return elapsed


def main_postgres(url: str, pairs: list[dict], *, rounds: int, target: float) -> int:
    import psycopg

    with scratch_database(url, f"ff_bench_ingest_{os.getpid()}") as scratch:
        os.environ["DATABASE_URL"] = scratch
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "finefoundry.settings")
        import django

        django.setup()
        size = sum(len(p["input"]) + len(p["output"]) for p in pairs) / len(pairs)
        print(f"PostgreSQL: {len(pairs):,} pairs, {size:.0f} bytes of text each on average, {rounds} rounds")
        connection = psycopg.connect(conninfo(scratch), autocommit=True)
        times: dict[str, list[float]] = {"raw": [], "ours": [], "raw, no trigram indexes": []}
        for _ in range(rounds):
            times["raw"].append(raw_copy(connection, pairs))
            times["ours"].append(our_ingest(connection, pairs))
        # What the trigram indexes cost a load (for information).
        definitions = connection.execute(
            "SELECT indexdef FROM pg_indexes WHERE indexname = ANY(%s)", (list(TRIGRAM_INDEXES),)
        ).fetchall()
        for name in TRIGRAM_INDEXES:
            connection.execute(f"DROP INDEX IF EXISTS {name}")
        for _ in range(rounds):
            times["raw, no trigram indexes"].append(raw_copy(connection, pairs))
        for (definition,) in definitions:
            connection.execute(definition)
        connection.close()

    rate = {label: len(pairs) / statistics.median(values) for label, values in times.items()}
    ratio = rate["ours"] / rate["raw"]
    print(f"plain psycopg COPY (same indexes) : {rate['raw']:10,.0f} pairs/s (median of {rounds})")
    print(f"storage.api.add_scraped_pairs     : {rate['ours']:10,.0f} pairs/s (median of {rounds})")
    print(f"plain COPY without trigram indexes: {rate['raw, no trigram indexes']:10,.0f} pairs/s (for information)")
    verdict = "OK" if ratio >= target else "BELOW TARGET"
    print(f"ratio ours/raw COPY: {ratio:.2f} (target >= {target}) {verdict}")
    return 0
