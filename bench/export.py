"""Export speed and memory, and how long clear_logs holds the write lock, in one run.

1. JSONL export of 1,000,000 pairs: storage.services.datasets.exporting.export_sessions (what
   `manage.py export_session --format jsonl` runs, fsync and rename included) against a plain
   sqlite3 loop writing the same bytes with json.dumps. Rounds alternate; medians and the
   ratio are printed (target >= 0.8), and the two files are checked to be identical.
2. Peak RSS (VmHWM) and anonymous RSS (RssAnon) of `manage.py export_session` as a child
   process for a 100,000-pair and a 1,000,000-pair session, as shipped and with the 256 MB
   memory map that was the default before; each difference should be < 20 MB.
3. clear_logs on 1,000,000 app_logs rows (both desktop timestamp formats, 90% old), then
   --vacuum (incremental steps, on a copy switched to auto_vacuum=INCREMENTAL as the databases
   this app creates are): the longest single write transaction of either (target <= 200 ms),
   and the longest wait of another process inserting a log record every 5 ms meanwhile.
4. The same export with and without the command's progress bar (tqdm, drawing to /dev/null as it
   would to a terminal): medians and the ratio with/without (target >= 0.98).

The databases are built once and kept in bench/.data/ (git-ignored); delete it to rebuild.

    python -m bench.export [--rounds 3] [--pairs 1000000] [--logs 1000000] [--only 1 --only 4]
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import multiprocessing
import os
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "bench" / ".data"
TARGET_RATIO = 0.8
TARGET_RSS_MB = 20
TARGET_LOCK_MS = 200
TARGET_BAR_RATIO = 0.98
SMALL_SESSION = 100_000


def child_env(db: Path) -> dict[str, str]:
    return {**os.environ, "FINEFOUNDRY_DB": str(db), "FINEFOUNDRY_STORAGE_ROOT": str(DATA / "outputs")}


def migrate(db: Path) -> None:
    command = [sys.executable, "manage.py", "migrate", "--no-input", "-v", "0"]
    subprocess.run(command, cwd=ROOT, env=child_env(db), check=True)


def built(db: Path, marker: str) -> bool:
    if not db.exists():
        return False
    connection = sqlite3.connect(db)
    try:
        return connection.execute("SELECT value FROM app_state WHERE key = 'bench'").fetchone() == (marker,)
    except sqlite3.Error:
        return False
    finally:
        connection.close()


WORDS = ["the", "model", "answer", "question", "data", "train", "token", "llama", "prompt", "ünï", "🚀"]


def sentence(rng: random.Random, words: int) -> str:
    return " ".join(rng.choices(WORDS, k=words))


def build_pairs_db(db: Path, pairs: int) -> tuple[int, int]:
    """Two sessions, 100,000 and `pairs` pairs of about 300 characters; return their ids."""
    marker = f"pairs={pairs}"
    if not built(db, marker):
        print(f"building {db.name}: {SMALL_SESSION:,} + {pairs:,} pairs (once) ...", flush=True)
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
        migrate(db)
        rng = random.Random(7)
        connection = sqlite3.connect(db)
        with connection:
            for count in (SMALL_SESSION, pairs):
                session = connection.execute(
                    "INSERT INTO scrape_sessions (source, pair_count) VALUES ('bench', ?)", (count,)
                )
                rows = (
                    (session.lastrowid, f"Q{i}: {sentence(rng, 12)}?", f'A{i}: "{sentence(rng, 36)}"\n')
                    for i in range(count)
                )
                connection.executemany(
                    "INSERT INTO scraped_pairs (session_id, input_text, output_text) VALUES (?, ?, ?)", rows
                )
            connection.execute("INSERT OR REPLACE INTO app_state (key, value) VALUES ('bench', ?)", (marker,))
        connection.close()
    migrate(db)  # a no-op unless the schema moved on since the cache was built
    connection = sqlite3.connect(db)
    small, large = [row[0] for row in connection.execute("SELECT id FROM scrape_sessions ORDER BY id")][:2]
    connection.close()
    return small, large


def build_logs_db(db: Path, count: int) -> None:
    marker = f"logs={count}"
    if built(db, marker):
        migrate(db)
        return
    print(f"building {db.name}: {count:,} log records (once) ...", flush=True)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    migrate(db)
    start = dt.datetime(2024, 1, 1)
    levels = ["DEBUG", "INFO", "INFO", "WARNING", "ERROR"]

    def rows():
        for i in range(count):
            moment = start + dt.timedelta(seconds=30 * i)
            # Half the desktop log handler's ISO format, half SQLite's default.
            stamp = moment.isoformat(timespec="microseconds") if i % 2 else moment.strftime("%Y-%m-%d %H:%M:%S")
            yield (stamp, levels[i % 5], "finefoundry.bench", f"record {i} with some text to make it realistic")

    connection = sqlite3.connect(db)
    with connection:
        connection.executemany("INSERT INTO app_logs (timestamp, level, logger, message) VALUES (?, ?, ?, ?)", rows())
        connection.execute("INSERT OR REPLACE INTO app_state (key, value) VALUES ('bench', ?)", (marker,))
    connection.close()


def use_database(db: Path) -> None:
    from django.db import connections

    connections["default"].close()
    connections["default"].settings_dict["NAME"] = str(db)


def plain_export(db: Path, session_id: int, out: Path) -> float:
    started = time.perf_counter()
    connection = sqlite3.connect(db)
    with open(out, "w", encoding="utf-8", newline="") as handle:
        query = "SELECT input_text, output_text FROM scraped_pairs WHERE session_id = ? ORDER BY id"
        for input_text, output_text in connection.execute(query, (session_id,)):
            handle.write(json.dumps({"input": input_text, "output": output_text}, ensure_ascii=False) + "\n")
    connection.close()
    return time.perf_counter() - started


def our_export(db: Path, session_id: int, out: Path, *, progress=None) -> float:
    from storage.services.datasets.exporting import export_sessions

    use_database(db)
    started = time.perf_counter()
    export_sessions(session_ids=[session_id], fmt="jsonl", output_path=out, overwrite=True, progress=progress)
    return time.perf_counter() - started


def export_with_bar(db: Path, session_id: int, out: Path) -> float:
    from storage.management.commands.export_session import ProgressBar

    with open(os.devnull, "w") as terminal:
        bar = ProgressBar(terminal)
        try:
            return our_export(db, session_id, out, progress=bar)
        finally:
            bar.close()


def digest(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def alternating_rates(db: Path, session_id: int, pairs: int, rounds: int, runners: dict) -> tuple[dict, bool, float]:
    """Run two exports `rounds` times each, alternating which goes first; pairs/s medians, same bytes?, MB."""
    out = DATA / "out"
    out.mkdir(exist_ok=True)
    files = [out / f"{index}.jsonl" for index in range(len(runners))]
    times: list[list[float]] = [[] for _ in runners]
    order = list(enumerate(runners.values()))
    for round_no in range(rounds):
        for index, export in order if round_no % 2 == 0 else order[::-1]:
            times[index].append(export(db, session_id, files[index]))
    identical = digest(files[0]) == digest(files[1])
    size = files[1].stat().st_size / 1e6
    shutil.rmtree(out)
    rates = {label: pairs / statistics.median(seconds) for label, seconds in zip(runners, times, strict=True)}
    return rates, identical, size


def compare(title: str, runners: dict, target: float, db: Path, session_id: int, pairs: int, rounds: int) -> None:
    """Print both exports' rates (baseline first), whether their files are identical, and the ratio."""
    rates, identical, size = alternating_rates(db, session_id, pairs, rounds, runners)
    (base_label, base), (label, rate) = rates.items()
    ratio = rate / base
    print(f"\n{title}: JSONL export of {pairs:,} pairs ({size:,.0f} MB), median of {rounds}")
    print(f"   {base_label:<34}: {base:10,.0f} pairs/s")
    print(f"   {label:<34}: {rate:10,.0f} pairs/s")
    print(f"   files identical: {identical}")
    verdict = "OK" if ratio >= target else "BELOW TARGET"
    print(f"   ratio {label}/{base_label}: {ratio:.3f} (target >= {target}) {verdict}")


def export_speed(db: Path, session_id: int, pairs: int, rounds: int) -> None:
    runners = {"plain sqlite3 + json.dumps loop": plain_export, "export_sessions (fsync, rename)": our_export}
    compare("1. Speed", runners, TARGET_RATIO, db, session_id, pairs, rounds)


def progress_bar_cost(db: Path, session_id: int, pairs: int, rounds: int) -> None:
    runners = {"without a bar": our_export, "with the tqdm bar": export_with_bar}
    compare("4. Progress bar", runners, TARGET_BAR_RATIO, db, session_id, pairs, rounds)


# Runs manage.py and, at exit, writes its VmHWM (the peak RSS of this program image alone; ru_maxrss
# from wait4 would also count the bench process it was forked from) and its RssAnon (anonymous
# memory: the heap and SQLite's page cache, not file pages such as a memory map of the database).
RSS_PROBE = """
import atexit, os, runpy, sys

def report():
    with open("/proc/self/status") as status:
        fields = dict(line.split(":", 1) for line in status)
    with open(os.environ["BENCH_RSS_FILE"], "w") as out:
        out.write(f"{fields['VmHWM'].split()[0]} {fields['RssAnon'].split()[0]}")

atexit.register(report)
sys.argv = ["manage.py", *sys.argv[1:]]
runpy.run_path("manage.py", run_name="__main__")
"""


def peak_rss_mb(db: Path, session_id: int, mmap_mb: int) -> tuple[float, float]:
    """Peak RSS and anonymous RSS at exit, in MB, of one export_session run."""
    out = DATA / f"rss-{session_id}.jsonl"
    report = DATA / "rss.txt"
    command = [sys.executable, "-c", RSS_PROBE, "export_session", str(session_id), "--format", "jsonl", "-o", str(out)]
    env = {**child_env(db), "BENCH_RSS_FILE": str(report), "FINEFOUNDRY_SQLITE_MMAP_MB": str(mmap_mb)}
    subprocess.run([*command, "--force", "-v", "0"], cwd=ROOT, env=env, check=True)
    out.unlink(missing_ok=True)
    peak, anonymous = (int(value) / 1024 for value in report.read_text().split())  # kB
    return peak, anonymous


def export_memory(db: Path, small: int, large: int, pairs: int, rounds: int) -> None:
    print(f"\n2. Memory of manage.py export_session --format jsonl, median of {rounds}")
    for mmap_mb, label in ((0, "as shipped (no mmap)"), (256, "FINEFOUNDRY_SQLITE_MMAP_MB=256 (the old default)")):
        small_runs = [peak_rss_mb(db, small, mmap_mb) for _ in range(rounds)]
        large_runs = [peak_rss_mb(db, large, mmap_mb) for _ in range(rounds)]
        small_peak, small_anon = (statistics.median(values) for values in zip(*small_runs, strict=True))
        large_peak, large_anon = (statistics.median(values) for values in zip(*large_runs, strict=True))
        difference = large_peak - small_peak
        verdict = "OK" if difference < TARGET_RSS_MB and large_anon - small_anon < TARGET_RSS_MB else "ABOVE TARGET"
        print(f"   {label}")
        print(f"     {SMALL_SESSION:>9,} pairs: peak RSS {small_peak:6.1f} MB, anonymous {small_anon:6.1f} MB")
        print(f"     {pairs:>9,} pairs: peak RSS {large_peak:6.1f} MB, anonymous {large_anon:6.1f} MB")
        print(
            f"     difference: peak {difference:+.1f} MB, anonymous {large_anon - small_anon:+.1f} MB "
            f"(target < {TARGET_RSS_MB} MB) {verdict}"
        )


def steady_writer(db: str, stop, results) -> None:
    """Insert a log record every 5 ms, as a busy FineFoundry would, and report the waits."""
    connection = sqlite3.connect(db, isolation_level=None, timeout=30)
    connection.execute("PRAGMA busy_timeout = 30000")
    connection.execute("PRAGMA synchronous = NORMAL")  # as Django's connections are set up
    waits = []
    while not stop.is_set():
        started = time.perf_counter()
        connection.execute("BEGIN IMMEDIATE")
        connection.execute(
            "INSERT INTO app_logs (timestamp, level, logger, message) VALUES (datetime('now'), 'INFO', 'writer', 'x')"
        )
        connection.execute("COMMIT")
        waits.append(time.perf_counter() - started)
        time.sleep(0.005)
    connection.close()
    results.put(waits)


def clear_logs_locks(template: Path, count: int) -> None:
    from storage.services import logs

    work = DATA / "logs-work.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{work}{suffix}").unlink(missing_ok=True)
    shutil.copy(template, work)
    # As a database this app creates (storage.db.schema.start_new_database): incremental auto-vacuum.
    converting = sqlite3.connect(work)
    converting.execute("PRAGMA auto_vacuum=INCREMENTAL")
    converting.execute("VACUUM")
    converting.close()
    use_database(work)
    cutoff = dt.datetime(2024, 1, 1) + dt.timedelta(seconds=30 * int(count * 0.9))
    stop = multiprocessing.Event()
    results = multiprocessing.Queue()
    writer = multiprocessing.Process(target=steady_writer, args=(str(work), stop, results))
    writer.start()
    time.sleep(0.5)
    batches: list[tuple[int, float]] = []
    started = time.perf_counter()
    deleted = logs.clear_logs(before=cutoff.isoformat(), on_batch=lambda n, s: batches.append((n, s)))
    total = time.perf_counter() - started
    started = time.perf_counter()
    reclaimed = logs.reclaim_space()
    vacuum_total = time.perf_counter() - started
    stop.set()
    waits = results.get()
    writer.join()
    use_database(DATA / "unused.db")
    for suffix in ("", "-wal", "-shm"):
        Path(f"{work}{suffix}").unlink(missing_ok=True)
    seconds = sorted(s for _, s in batches)
    print(f"\n3. clear_logs --before {cutoff:%Y-%m-%d %H:%M} on {count:,} records (both timestamp formats)")
    print(f"   deleted {deleted:,} in {len(batches)} transactions, {total:.1f} s in all")
    print(
        f"   transaction length: median {statistics.median(seconds) * 1000:.0f} ms, longest {seconds[-1] * 1000:.0f} ms"
    )
    print(f"   batch sizes: {min(n for n, _ in batches):,} to {max(n for n, _ in batches):,} rows")
    steps = sorted(reclaimed.steps) or [0.0]
    print(
        f"   then --vacuum ({reclaimed.how}): {reclaimed.pages:,} pages in {len(reclaimed.steps)} steps,"
        f" {vacuum_total:.1f} s in all; step median {statistics.median(steps) * 1000:.0f} ms,"
        f" longest {steps[-1] * 1000:.0f} ms"
    )
    waits.sort()
    print(
        f"   another process inserting every 5 ms (deletes and vacuum): {len(waits):,} inserts, "
        f"median {statistics.median(waits) * 1000:.1f} ms, p99 {waits[int(len(waits) * 0.99)] * 1000:.0f} ms, "
        f"longest {waits[-1] * 1000:.0f} ms"
    )
    seconds = sorted(seconds + steps)
    verdict = "OK" if seconds[-1] * 1000 <= TARGET_LOCK_MS else "ABOVE TARGET"
    print(f"   longest write transaction: {seconds[-1] * 1000:.0f} ms (target <= {TARGET_LOCK_MS} ms) {verdict}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--pairs", type=int, default=1_000_000)
    parser.add_argument("--logs", type=int, default=1_000_000)
    parser.add_argument("--only", type=int, choices=(1, 2, 3, 4), action="append", help="run only this part")
    args = parser.parse_args()

    DATA.mkdir(exist_ok=True)
    os.environ["FINEFOUNDRY_DB"] = str(DATA / "unused.db")
    os.environ["FINEFOUNDRY_STORAGE_ROOT"] = str(DATA / "outputs")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "finefoundry.settings")
    import django

    django.setup()

    pairs_db = DATA / "export-pairs.db"
    small, large = build_pairs_db(pairs_db, args.pairs)
    logs_db = DATA / "export-logs.db"
    build_logs_db(logs_db, args.logs)
    print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")

    parts = args.only or [1, 2, 3, 4]
    if 1 in parts:
        export_speed(pairs_db, large, args.pairs, args.rounds)
    if 2 in parts:
        export_memory(pairs_db, small, large, args.pairs, args.rounds)
    if 3 in parts:
        clear_logs_locks(logs_db, args.logs)
    if 4 in parts:
        progress_bar_cost(pairs_db, large, args.pairs, args.rounds)
    print(f"\nload average after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
