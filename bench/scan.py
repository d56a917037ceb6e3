"""The safe-to-publish scan: recall on planted items, false alarms on clean pairs, speed at a million pairs.

1. Recall: 2,000 pairs per kind, each with one planted item (bench/scan_corpus.py: varied formats and
   contexts inside clean text); an item counts as found when a finding of its kind covers its span exactly.
2. False alarms: 20,000 clean pairs (bench/scan_corpus.py says how they are made to be hard); the share of
   pairs with any finding, and which template categories the false alarms came from.
3. Speed: `scan_sessions` over 1,000,000 pairs in a real SQLite file (99 % clean, 1 % planted, 5 stored secret
   settings), against reading the same pairs with the same paging and no scanning (the baseline).

    python -m bench.scan [--pairs 1000000] [--recall-pairs 2000] [--clean-pairs 20000]
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import shutil
import sqlite3
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from bench.scan_corpus import clean_pair, planted_pair
from bench.scratch_django import migrated_template, setup_django

DATA = Path(__file__).resolve().parent / ".data"
KINDS = ("email", "phone", "ip", "credit_card", "secret")
TARGET_RECALL = 0.95
TARGET_FLAGGED = 0.01
TARGET_SECONDS = 60.0
STORED = ["hunter2-correct-horse", "wandb-7f3a9c21d0e4", "Sup3rS3cretProxyPass", "my_openai_token_value", "rq9ZxP2mLk"]


def recall(count: int, scanner) -> bool:
    rng = random.Random(1)
    ok = True
    for kind in KINDS:
        found = 0
        misses = []
        for _ in range(count):
            input_text, output_text, side, start, end = planted_pair(rng, kind, STORED)
            text = input_text if side == "input" else output_text
            if any(f.kind == kind and f.start == start and f.end == end for f in scanner.find(text)):
                found += 1
            elif len(misses) < 3:
                misses.append(text[max(0, start - 20) : end + 20])
        share = found / count
        ok &= share >= TARGET_RECALL
        print(f"recall {kind:<12} {found:>5}/{count} = {share:.4f} (target >= {TARGET_RECALL})")
        for miss in misses:
            print(f"    missed: {miss!r}")
    return ok


def false_alarms(count: int, scanner) -> bool:
    rng = random.Random(2)
    flagged = 0
    by_kind: Counter[str] = Counter()
    examples = []
    for _ in range(count):
        input_text, output_text, _ = clean_pair(rng)
        findings = [(text, f) for text in (input_text, output_text) for f in scanner.find(text)]
        if findings:
            flagged += 1
            for text, finding in findings:
                by_kind[finding.kind] += 1
                if len(examples) < 8:
                    examples.append((finding.kind, text[max(0, finding.start - 25) : finding.end + 10]))
    share = flagged / count
    print(
        f"clean pairs flagged: {flagged}/{count} = {share:.4%} (target <= {TARGET_FLAGGED:.0%});"
        f" by kind {dict(by_kind)}"
    )
    for kind, excerpt in examples:
        print(f"    {kind}: {excerpt!r}")
    return share <= TARGET_FLAGGED


def build_database(pairs: int) -> Path:
    """A migrated database with `pairs` pairs (1 % planted) and stored secret settings, cached under bench/.data."""
    DATA.mkdir(exist_ok=True)
    path = DATA / f"scan-{pairs}.db"
    if path.exists():
        return path
    work = Path(tempfile.mkdtemp(prefix="ff-bench-scan-template-"))
    try:
        partial = DATA / f"scan-{pairs}.db.partial"
        shutil.copy(migrated_template(work), partial)
        rng = random.Random(3)
        db = sqlite3.connect(partial)
        db.execute(
            "INSERT INTO scrape_sessions (source, source_details, pair_count) VALUES ('bench', 'scan', ?)", [pairs]
        )
        for index, value in enumerate(STORED):
            db.execute("INSERT INTO settings (key, value) VALUES (?, ?)", [f"bench{index}.api_key", value])
        batch = []
        for index in range(pairs):
            if index % 100 == 0:
                input_text, output_text, *_ = planted_pair(rng, KINDS[index // 100 % len(KINDS)], STORED)
            else:
                input_text, output_text, _ = clean_pair(rng)
            batch.append((input_text, output_text))
            if len(batch) == 10_000:
                db.executemany(
                    "INSERT INTO scraped_pairs (session_id, input_text, output_text) VALUES (1, ?, ?)", batch
                )
                batch = []
        db.executemany("INSERT INTO scraped_pairs (session_id, input_text, output_text) VALUES (1, ?, ?)", batch)
        db.commit()
        db.close()
        partial.rename(path)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return path


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def speed(pairs: int) -> bool:
    from django.db import connections

    from storage.sensitive_text.pool import usable_workers
    from storage.services.scan import iter_pairs, scan_sessions

    path = build_database(pairs)
    connections["default"].close()
    connections["default"].settings_dict["NAME"] = str(path)
    started, cpu = time.perf_counter(), time.process_time()
    chars = sum(len(i) + len(o) for _, i, o in iter_pairs([1]))
    baseline, baseline_cpu = time.perf_counter() - started, time.process_time() - cpu
    started, cpu, workers_cpu = time.perf_counter(), time.process_time(), children_cpu()
    report = scan_sessions(session_ids=[1])
    scanned, scanned_cpu = time.perf_counter() - started, time.process_time() - cpu
    workers_cpu = children_cpu() - workers_cpu  # the scan's worker processes (storage.sensitive_text.pool)
    connections["default"].close()
    print(
        f"scan_sessions: {report.pairs_scanned:,} pairs ({chars / 1e6:,.0f} M characters) in {scanned:.1f} s wall "
        f"(target <= {TARGET_SECONDS:.0f} s), {scanned_cpu:.1f} s CPU here and {workers_cpu:.1f} s in worker "
        f"processes, {usable_workers()} usable cores; reading them alone {baseline:.1f} s wall, "
        f"{baseline_cpu:.1f} s CPU, ratio {scanned / baseline:.1f}x; load average {os.getloadavg()[0]:.1f}; "
        f"{len(report.findings):,} findings in {report.flagged_pairs:,} pairs {report.counts}"
    )
    return scanned <= TARGET_SECONDS * pairs / 1_000_000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=1_000_000)
    parser.add_argument("--recall-pairs", type=int, default=2000)
    parser.add_argument("--clean-pairs", type=int, default=20_000)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ff-bench-scan-"))
    try:
        setup_django(work)
        from storage.redaction import usable_secrets
        from storage.sensitive_text import stored_secrets_pattern
        from storage.services.scan import PairScanner

        assert usable_secrets(STORED)
        scanner = PairScanner(secrets_re=stored_secrets_pattern(STORED))
        ok = recall(args.recall_pairs, scanner)
        ok &= false_alarms(args.clean_pairs, scanner)
        ok &= speed(args.pairs)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("OK" if ok else "TARGET MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
