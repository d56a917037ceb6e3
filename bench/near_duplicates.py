"""Near-duplicate search at a million pairs: signing, clustering, a new session against the stored corpus.

    python -m bench.near_duplicates [--pairs 1000000] [--new 10000] [--compare 50000]

Builds a database of `--pairs` pairs (5 % planted variants: one word changed, punctuation or case
changed, a signature line appended) in ten sessions, then in the same run:

1. MinHash libraries on `--compare` pair texts: ours (numpy, storage.services.minhash), rensa's
   RMinHash and datasketch's MinHash (datasketch on a tenth, scaled: it is too slow for more);
2. find_near_duplicates over every session: every pair signed, stored and clustered (target 120 s);
3. a new session of `--new` pairs (10 % variants of stored pairs) checked against everything
   stored (target 5 s), without re-signing the stored pairs;
4. recall of the planted variants and precision of the clusters (targets 0.95 and 0.99).
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import os
import pickle
import random
import shutil
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

from bench.scratch_django import migrated_template, setup_django

SIGN_AND_CLUSTER_SECONDS = 120.0
NEW_SESSION_SECONDS = 5.0
RECALL, PRECISION = 0.95, 0.99
SESSIONS = 10
DATA = Path(__file__).resolve().parent / ".data"


def corpus(count: int, *, variants: float, rng: random.Random, stored: list[dict] | None = None):
    """Pairs made of sentences from a shared pool of topic sentences, with planted variants of earlier pairs."""
    from tests.helpers.planted_corpus import TOPICS, VARIANT_KINDS, _sentence, variant

    topics = [TOPICS[name] for name in sorted(TOPICS)]
    pool = [_sentence(rng, topics[i % len(topics)], rng.randint(6, 14)) for i in range(200_000)]
    pairs, planted = [], {}
    sources = stored if stored is not None else pairs
    for index in range(count):
        if sources and rng.random() < variants:
            origin = rng.randrange(len(sources))
            planted[index] = origin
            pairs.append(variant(rng, sources[origin], VARIANT_KINDS[index % len(VARIANT_KINDS)]))
        else:
            pairs.append(
                {
                    "input": " ".join(rng.choice(pool) for _ in range(rng.randint(2, 3))),
                    "output": " ".join(rng.choice(pool) for _ in range(rng.randint(3, 6))),
                }
            )
    return pairs, planted


def write_session(db: Path, pairs: list[dict], sessions: int) -> list[list[int]]:
    """Insert pairs with plain sqlite3 (as the desktop app does), spread over sessions; their ids."""
    conn = sqlite3.connect(db)
    try:
        session_ids = []
        for _ in range(sessions):
            session_ids.append(conn.execute("INSERT INTO scrape_sessions (source) VALUES ('bench')").lastrowid)
        first = (conn.execute("SELECT coalesce(max(id), 0) FROM scraped_pairs").fetchone()[0]) + 1
        conn.executemany(
            "INSERT INTO scraped_pairs (id, session_id, input_text, output_text) VALUES (?, ?, ?, ?)",
            (
                (first + i, session_ids[i * sessions // len(pairs)], p["input"], p["output"])
                for i, p in enumerate(pairs)
            ),
        )
        conn.execute(
            "UPDATE scrape_sessions SET pair_count = (SELECT count(*) FROM scraped_pairs WHERE session_id ="
            " scrape_sessions.id)"
        )
        conn.commit()
        return session_ids, list(range(first, first + len(pairs)))
    finally:
        conn.close()


def compare_libraries(texts: list[str]) -> None:
    import datasketch
    import rensa

    from storage.services import minhash

    start = time.perf_counter()
    minhash.signatures(texts)
    ours = time.perf_counter() - start
    start = time.perf_counter()
    for text in texts:
        signature = rensa.RMinHash(num_perm=64, seed=1)
        signature.update(list(minhash.shingles(text)))
        signature.digest()
    with_rensa = time.perf_counter() - start
    tenth = texts[: max(1, len(texts) // 10)]
    start = time.perf_counter()
    for text in tenth:
        signature = datasketch.MinHash(num_perm=64, seed=1)
        signature.update_batch([s.encode() for s in minhash.shingles(text)])
        signature.digest()
    with_datasketch = (time.perf_counter() - start) * len(texts) / len(tenth)
    print(f"MinHash of {len(texts):,} pair texts (64 values each, shingling included):")
    print(f"  ours (numpy one-permutation)  {ours:7.2f} s   1.0x")
    print(f"  rensa RMinHash                {with_rensa:7.2f} s  {with_rensa / ours:5.1f}x slower")
    print(f"  datasketch MinHash (scaled)   {with_datasketch:7.2f} s  {with_datasketch / ours:5.1f}x slower")


def quality(clusters: list[list[int]], family: dict[int, int], planted: dict[int, int]) -> tuple[float, float]:
    """Recall of planted (variant, original) pairs; precision of every two pairs a cluster holds together."""
    cluster_of = {pair_id: n for n, cluster in enumerate(clusters) for pair_id in cluster}
    found = sum(1 for v, o in planted.items() if v in cluster_of and cluster_of[v] == cluster_of.get(o))
    together = right = 0
    for cluster in clusters:
        roots: dict[int, int] = {}
        for pair_id in cluster:
            roots[family.get(pair_id, pair_id)] = roots.get(family.get(pair_id, pair_id), 0) + 1
        size = len(cluster)
        together += size * (size - 1) // 2
        right += sum(n * (n - 1) // 2 for n in roots.values())
    return found / max(1, len(planted)), right / max(1, together)


def profiled(profiler: cProfile.Profile | None, function, **kwargs):
    if profiler is None:
        return function(**kwargs)
    return profiler.runcall(function, **kwargs)


def copy_database(source: Path, target: Path) -> None:
    """Copy an SQLite database with SQLite's own backup (never with a file copy)."""
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)
    src.close()
    dst.close()


def built_corpus(data: Path, count: int) -> tuple[Path, dict]:
    """The unsigned corpus database and what was planted, built once per size and kept under `data`."""
    db, facts = data / f"near-{count}.db", data / f"near-{count}.pickle"
    if not (db.exists() and facts.exists()):
        data.mkdir(parents=True, exist_ok=True)
        rng = random.Random(14)
        pairs, planted = corpus(count, variants=0.05, rng=rng)
        partial = data / f"near-{count}.db.partial"
        partial.unlink(missing_ok=True)
        copy_database(migrated_template(data), partial)
        session_ids, pair_ids = write_session(partial, pairs, SESSIONS)
        partial.rename(db)
        with facts.open("wb") as out:
            pickle.dump(
                {
                    "pairs": pairs,
                    "planted": planted,
                    "session_ids": session_ids,
                    "pair_ids": pair_ids,
                    "rng": rng.getstate(),
                },
                out,
            )
    with facts.open("rb") as source:
        return db, pickle.load(source)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=1_000_000)
    parser.add_argument("--new", type=int, default=10_000)
    parser.add_argument("--compare", type=int, default=50_000)
    parser.add_argument("--data", type=Path, default=DATA, help="where built databases are kept between runs")
    parser.add_argument(
        "--new-only", action="store_true", help="only step 3, on the signed database a previous full run kept"
    )
    parser.add_argument("--profile", type=Path, help="write a cProfile of the checks (the measured calls) here")
    args = parser.parse_args()
    profiler = cProfile.Profile() if args.profile else None
    work = Path(tempfile.mkdtemp(prefix="ff-bench-neardup-", dir=args.data if args.data.exists() else None))
    setup_django(work)
    from django.db import connections

    from storage.services import minhash
    from storage.services.near_duplicates import find_near_duplicates

    start = time.perf_counter()
    source, facts = built_corpus(args.data, args.pairs)
    pairs, planted, session_ids, pair_ids = facts["pairs"], facts["planted"], facts["session_ids"], facts["pair_ids"]
    # The corpus (millions of Python objects) stays alive for the quality check; frozen, the garbage
    # collector no longer walks it on every full collection inside the measured calls, which would
    # bill the bench's own memory to the service.
    gc.collect()
    gc.freeze()
    print(
        f"corpus of {len(pairs):,} pairs ({len(planted):,} planted variants)"
        f" ready in {time.perf_counter() - start:.0f} s"
    )
    signed_copy = args.data / f"near-{args.pairs}.signed.db"
    db = work / "near.db"
    ok = True
    family = {}
    for v, o in sorted(planted.items()):  # a variant of a variant belongs to the first original
        family[pair_ids[v]] = family.get(pair_ids[o], pair_ids[o])
    try:
        if args.new_only:
            copy_database(signed_copy, db)
        else:
            if args.compare:
                compare_libraries([minhash.pair_text(p["input"], p["output"]) for p in pairs[: args.compare]])
            copy_database(source, db)
        connections["default"].close()
        connections["default"].settings_dict["NAME"] = str(db)
        if not args.new_only:
            start, cpu = time.perf_counter(), time.process_time()
            result = profiled(profiler, find_near_duplicates, session_ids=session_ids)
            seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
            ok &= seconds <= SIGN_AND_CLUSTER_SECONDS
            recall, precision = quality(result.clusters, family, family)
            ok &= recall >= RECALL and precision >= PRECISION
            print(
                f"all {result.pairs:,} pairs signed ({result.signed:,}) and clustered: {seconds:.1f} s wall,"
                f" {cpu:.1f} s CPU (target {SIGN_AND_CLUSTER_SECONDS:.0f} s); {len(result.clusters):,} clusters,"
                f" {result.candidates:,} candidates checked exactly; recall {recall:.4f}, precision {precision:.4f};"
                f" load average {os.getloadavg()[0]:.1f}"
            )
            connections["default"].close()
            signed_copy.unlink(missing_ok=True)
            copy_database(db, signed_copy)

        rng = random.Random()
        rng.setstate(facts["rng"])
        new_pairs, new_planted = corpus(args.new, variants=0.10, rng=rng, stored=pairs)
        connections["default"].close()
        (new_session,), new_ids = write_session(db, new_pairs, 1)
        # Baseline: reading the new session's pairs (the least any check must do), same run.
        start, cpu = time.perf_counter(), time.process_time()
        with connections["default"].cursor() as cursor:
            cursor.execute("SELECT id, input_text, output_text FROM scraped_pairs WHERE session_id = %s", [new_session])
            read = len(cursor.fetchall())
        baseline, baseline_cpu = time.perf_counter() - start, time.process_time() - cpu
        start, cpu = time.perf_counter(), time.process_time()
        checked = profiled(profiler, find_near_duplicates, session_ids=[new_session])
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
        ok &= seconds <= NEW_SESSION_SECONDS
        new_family = {new_ids[v]: family.get(pair_ids[o], pair_ids[o]) for v, o in new_planted.items()}
        stored_family = {pair_id: family.get(pair_id, pair_id) for cluster in checked.clusters for pair_id in cluster}
        stored_family.update(new_family)
        recall, precision = quality(checked.clusters, stored_family, {v: new_family[v] for v in new_family})
        ok &= recall >= RECALL and precision >= PRECISION
        print(
            f"new session of {checked.pairs:,} pairs checked against {len(pairs):,} stored:"
            f" {seconds:.2f} s wall, {cpu:.2f} s CPU (target {NEW_SESSION_SECONDS:.0f} s);"
            f" reading its {read:,} pairs alone {baseline:.2f} s wall, {baseline_cpu:.2f} s CPU,"
            f" ratio {seconds / max(baseline, 1e-6):.1f}x; signed {checked.signed:,};"
            f" {len(checked.clusters):,} clusters, {checked.candidates:,} candidates;"
            f" recall {recall:.4f}, precision {precision:.4f}"
        )
        print(f"targets (wall clock): {'OK' if ok else 'MISSED'}; load average now {os.getloadavg()[0]:.1f} on 2 cores")
    finally:
        connections["default"].close()
        shutil.rmtree(work, ignore_errors=True)
        if profiler:
            profiler.dump_stats(args.profile)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
