"""Stored scan findings at 1,000,000 pairs: the pairs list's "flagged by the scan" filter, and what storing costs.

The database is built once under --data (default /work/scratch-curjobs/bench): `manage.py migrate`, then
sessions and pairs through sqlite3 executemany, then findings rows of a current scan per session written
directly (1 % of pairs flagged as e-mail, 0.2 % as a secret, 0.005 % as a card: a rare kind). Pages are
fetched through Django's test client by a superuser, rounds interleaving them; medians are printed with
their ratio to the unfiltered pairs list of the same run, and the process CPU time (user + sys) of each
page's requests. Then one 20,000-pair session with 2 % planted e-mail addresses is scanned twice in the
same run: `scan_sessions` alone and `scan_and_store` (scan, re-read and re-scan the flagged pairs, write,
swap): the ratio is what storing adds.

    python -m bench.scan_findings [--pairs 1000000] [--sessions 20] [--rounds 5] [--data DIR] [--rebuild]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import sqlite3
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARES = {"email": 0.01, "secret": 0.002, "credit_card": 0.00005}
STORE_PAIRS = 20_000


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def build(db: Path, pairs: int, sessions: int) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    env = {**os.environ, "FINEFOUNDRY_DB": str(db), "FINEFOUNDRY_STORAGE_ROOT": str(db.parent / "outputs")}
    subprocess.run([sys.executable, "manage.py", "migrate", "--no-input", "-v", "0"], cwd=ROOT, env=env, check=True)
    rng = random.Random(14)
    started = time.perf_counter()
    connection = sqlite3.connect(db, isolation_level=None)
    connection.execute("BEGIN")
    per_session = pairs // sessions
    number = 0
    for position in range(sessions):
        session_id = connection.execute(
            "INSERT INTO scrape_sessions (source, pair_count, name) VALUES ('reddit', ?, ?)",
            (per_session, f"bench {position}"),
        ).lastrowid
        rows = [(session_id, f"question {number + i} about training", f"answer {i}") for i in range(per_session)]
        number += per_session
        connection.executemany("INSERT INTO scraped_pairs (session_id, input_text, output_text) VALUES (?, ?, ?)", rows)
        scan_id = connection.execute(
            "INSERT INTO storage_scans (session_id, status, started_at, scanned_at, pairs_scanned)"
            " VALUES (?, 'current', '2026-12-01 00:00:00', '2026-12-01 00:00:00', ?)",
            (session_id, per_session),
        ).lastrowid
        first = connection.execute("SELECT min(id) FROM scraped_pairs WHERE session_id = ?", (session_id,)).fetchone()[
            0
        ]
        findings = []
        for kind, share in SHARES.items():
            for pair_id in rng.sample(range(first, first + per_session), max(1, int(per_session * share))):
                findings.append((scan_id, pair_id, "input", kind, 0, 8, "2026-12-01 00:00:00"))
        connection.executemany(
            'INSERT INTO storage_scan_findings (scan_id, pair_id, side, kind, start, "end", scanned_at)'
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            findings,
        )
    # The session the store is measured on: real texts, 2 % with an e-mail address.
    store_session = connection.execute(
        "INSERT INTO scrape_sessions (source, pair_count, name) VALUES ('reddit', ?, 'store bench')", (STORE_PAIRS,)
    ).lastrowid
    connection.executemany(
        "INSERT INTO scraped_pairs (session_id, input_text, output_text) VALUES (?, ?, ?)",
        (
            (store_session, f"question {i}" + (f" mail me at user{i}@example.org" if i % 50 == 0 else ""), "an answer")
            for i in range(STORE_PAIRS)
        ),
    )
    connection.execute("COMMIT")
    connection.execute("ANALYZE")
    connection.close()
    print(f"built {pairs:,} pairs, findings and the store session in {time.perf_counter() - started:.0f} s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=1_000_000)
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--data", type=Path, default=Path("/work/scratch-curjobs/bench"))
    parser.add_argument("--rebuild", action="store_true")
    args = parser.parse_args()
    args.data.mkdir(parents=True, exist_ok=True)
    db = args.data / "scan-findings.db"
    meta = args.data / "meta.json"
    wanted = {"pairs": args.pairs, "sessions": args.sessions, "version": 1}
    if args.rebuild or not db.exists() or not meta.exists() or json.loads(meta.read_text()) != wanted:
        meta.unlink(missing_ok=True)
        build(db, args.pairs, args.sessions)
        meta.write_text(json.dumps(wanted))

    os.environ["FINEFOUNDRY_DB"] = str(db)
    os.environ["FINEFOUNDRY_STORAGE_ROOT"] = str(args.data / "outputs")
    os.environ["FINEFOUNDRY_SEARCH_BACKEND"] = "like"  # no search here; nothing to index
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "finefoundry.settings")
    import warnings

    import django

    warnings.filterwarnings("ignore", message="No directory at")
    django.setup()
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client

    from storage.models import ScrapedPair, ScrapeSession
    from storage.services.scan import scan_sessions
    from storage.services.scan_findings import current_findings, flagged_pairs, scan_and_store

    user, _ = get_user_model().objects.get_or_create(
        username="bench", defaults={"is_staff": True, "is_superuser": True}
    )
    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(user)
    middle = ScrapeSession.objects.order_by("id").values_list("id", flat=True)[args.sessions // 2]
    pages = [
        ("pairs list (baseline)", "/admin/storage/scrapedpair/"),
        ("flagged (any kind)", "/admin/storage/scrapedpair/?scan=flagged"),
        ("flagged: secret (0.2 %)", "/admin/storage/scrapedpair/?scan=secret"),
        ("flagged: card (0.005 %, rare)", "/admin/storage/scrapedpair/?scan=credit_card"),
        ("not flagged", "/admin/storage/scrapedpair/?scan=not_flagged"),
        ("flagged in one session", f"/admin/storage/scrapedpair/?scan=flagged&session__id__exact={middle}"),
    ]
    for _, url in pages:
        assert client.get(url).status_code == 200, url
    wall: dict[str, list[float]] = {label: [] for label, _ in pages}
    spent: dict[str, float] = dict.fromkeys(wall, 0.0)
    for _ in range(args.rounds):
        for label, url in pages:
            before_cpu, started = cpu(), time.perf_counter()
            response = client.get(url)
            wall[label].append((time.perf_counter() - started) * 1000)
            spent[label] += cpu() - before_cpu
            assert response.status_code == 200
    baseline = statistics.median(wall[pages[0][0]])
    flagged = current_findings().values("pair_id").distinct().count()
    print(f"\npairs list filters at {args.pairs:,} pairs ({flagged:,} flagged), median of {args.rounds} rounds")
    print(f"{'page':<32} {'median ms':>10} {'x base':>7} {'cpu ms/req':>11}")
    for label, _ in pages:
        median = statistics.median(wall[label])
        print(f"{label:<32} {median:>10.1f} {median / baseline:>7.2f} {spent[label] * 1000 / args.rounds:>11.1f}")
    with connection.cursor() as cursor:
        query = flagged_pairs(ScrapedPair.objects.order_by("-id"), kind="credit_card")[:100].query
        sql, params = query.sql_with_params()
        cursor.execute(f"EXPLAIN QUERY PLAN {sql}", params)
        print("\nplan of the rare kind's page:")
        for row in cursor.fetchall():
            print("  ", row[-1])

    store_session = ScrapeSession.objects.get(name="store bench").pk
    before_cpu, started = cpu(), time.perf_counter()
    report = scan_sessions(session_ids=[store_session])
    scan_wall, scan_cpu = time.perf_counter() - started, cpu() - before_cpu
    before_cpu, started = cpu(), time.perf_counter()
    [stored] = scan_and_store(session_ids=[store_session])
    store_wall, store_cpu = time.perf_counter() - started, cpu() - before_cpu
    assert stored.findings == len(report.findings)
    print(f"\nstore: {STORE_PAIRS:,} pairs, {stored.findings:,} findings")
    print(f"  scan_sessions alone   {scan_wall:7.2f} s wall {scan_cpu:7.2f} s cpu")
    print(f"  scan_and_store        {store_wall:7.2f} s wall {store_cpu:7.2f} s cpu")
    print(f"  ratio                 {store_wall / scan_wall:7.2f} x wall {store_cpu / scan_cpu:7.2f} x cpu")
    print(f"load average: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
