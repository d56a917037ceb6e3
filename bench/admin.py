"""Admin page speed on a database of 1,000,000 pairs in 50 sessions, through Django's test client.

The database is built once and cached under bench/.data/ (git-ignored): the schema from
`manage.py migrate` in a subprocess, then sessions and pairs through sqlite3 executemany, then the
full-text index. Session 1 holds 100,000 pairs (for the delete confirmation); the other 49 share
the rest. Each page is fetched by a logged-in superuser, rounds interleaving the pages; the
medians are printed with their target and with their ratio to a baseline measured in the same
run: the changelist of a ten-row table (what any admin page costs on this machine).

    python -m bench.admin [--pairs 1000000] [--sessions 50] [--rounds 7] [--rebuild]
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
# FINEFOUNDRY_BENCH_DATA puts the 1M-pair database elsewhere (a scratch disk).
DATA_DIR = Path(os.environ.get("FINEFOUNDRY_BENCH_DATA") or ROOT / "bench" / ".data")
DB_PATH = DATA_DIR / "admin.sqlite3"
BIG_SESSION_PAIRS = 100_000
SOURCES = ("reddit", "4chan", "stackexchange", "synthetic", "huggingface")
WORD_TEXT = (
    "model data training dataset token prompt answer question example value function code python error file"
    " system user output input layer network weight gradient batch epoch loss accuracy memory server request"
    " response database query table index column string number list class method object variable loop test"
    " result problem solution step process time language text sentence word document page image the of and"
    " to a in is that for it as with on be by this are or from at an not have you can which your but all"
)
WORDS = WORD_TEXT.split()
SEARCH_TERM = "gradient checkpointing"

# (label, url builder, target in ms or None): the url builders get the ids of the built database.
PAGES = [
    ("pairs list, page 1", lambda ids: "/admin/storage/scrapedpair/", 300),
    ("pairs list, one session", lambda ids: f"/admin/storage/scrapedpair/?session__id__exact={ids['middle']}", 300),
    (
        "pairs list, one session, page 50",
        lambda ids: f"/admin/storage/scrapedpair/?session__id__exact={ids['middle']}&p=50",
        None,
    ),
    ("session list", lambda ids: "/admin/storage/scrapesession/", 150),
    ("session change page (100,000 pairs)", lambda ids: f"/admin/storage/scrapesession/{ids['big']}/change/", 300),
    ("delete confirmation (100,000 pairs)", lambda ids: f"/admin/storage/scrapesession/{ids['big']}/delete/", 1000),
    ("pairs search", lambda ids: f"/admin/storage/scrapedpair/?q={SEARCH_TERM.replace(' ', '+')}", None),
    ("dashboard", lambda ids: "/admin/", None),
    # The reader and the pairs list's filters (issue 15); the rare and empty ones walk the whole table.
    ("pair reader", lambda ids: f"/admin/storage/scrapedpair/{ids['pair']}/read/", 300),
    (
        "pair reader within one session",
        lambda ids: f"/admin/storage/scrapedpair/{ids['pair']}/read/?session__id__exact={ids['middle']}",
        300,
    ),
    (
        "pair reader within a search",
        lambda ids: f"/admin/storage/scrapedpair/{ids['pair']}/read/?q={SEARCH_TERM.replace(' ', '+')}",
        300,
    ),
    # Filters that match every pair, and filters that match none (each read from its index, migration 0012).
    ("pairs list, input short (all)", lambda ids: "/admin/storage/scrapedpair/?input_length=short", 300),
    ("pairs list, output medium (all)", lambda ids: "/admin/storage/scrapedpair/?output_length=medium", 300),
    ("pairs list, has no metadata (all)", lambda ids: "/admin/storage/scrapedpair/?has_metadata=no", 300),
    ("pairs list, output long (none)", lambda ids: "/admin/storage/scrapedpair/?output_length=long", 300),
    ("pairs list, input long (none)", lambda ids: "/admin/storage/scrapedpair/?input_length=long", 300),
    ("pairs list, has metadata (none)", lambda ids: "/admin/storage/scrapedpair/?has_metadata=yes", 300),
    ("pairs list, a domain (none)", lambda ids: "/admin/storage/scrapedpair/?domain=example.org", 300),
    (
        "pairs list, one session, output long (none)",
        lambda ids: f"/admin/storage/scrapedpair/?session__id__exact={ids['middle']}&output_length=long",
        300,
    ),
]
BASELINE = ("baseline: app state list", "/admin/storage/appstate/")


def sentence(rng: random.Random, low: int, high: int) -> str:
    return " ".join(rng.choices(WORDS, k=rng.randint(low, high)))


def texts(rng: random.Random, count: int, low: int, high: int) -> list[str]:
    return [sentence(rng, low, high) for _ in range(count)]


def thread_url(number: int) -> str:
    """A scraper's source URL: one thread per 20 pairs (version 2 of the database; SQL: add_thread_urls)."""
    return f"https://www.reddit.com/r/LocalLLaMA/comments/{number // 20:x}/"


def add_thread_urls(path: Path) -> None:
    """Bring a version-1 database (no URLs) to version 2 in place: the same URLs build() now writes."""
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute(
        "UPDATE scraped_pairs"
        " SET source_url = printf('https://www.reddit.com/r/LocalLLaMA/comments/%x/', (id - 1) / 20)"
    )
    connection.close()


def build(pairs: int, sessions: int) -> None:
    """Create the database file: migrate, then bulk-insert sessions, pairs and some logs, then index."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{DB_PATH}{suffix}").unlink(missing_ok=True)
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "FINEFOUNDRY_DB": str(DB_PATH), "FINEFOUNDRY_STORAGE_ROOT": str(DATA_DIR / "admin_outputs")}
    subprocess.run([sys.executable, "manage.py", "migrate", "--no-input", "-v", "0"], cwd=ROOT, env=env, check=True)

    rng = random.Random(11)
    questions = texts(rng, 5000, 8, 25)
    answers = texts(rng, 5000, 30, 90)
    sizes = [BIG_SESSION_PAIRS] + [(pairs - BIG_SESSION_PAIRS) // (sessions - 1)] * (sessions - 1)
    sizes[-1] += pairs - sum(sizes)
    connection = sqlite3.connect(DB_PATH, isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")
    started = time.perf_counter()
    connection.execute("BEGIN")
    number = 0
    for position, size in enumerate(sizes):
        source = SOURCES[position % len(SOURCES)]
        session_id = connection.execute(
            "INSERT INTO scrape_sessions (source, source_details, pair_count, created_at, metadata_json, name)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (
                source,
                f"url=https://example.org/{source}/{position}",
                size,
                f"2024-{1 + position % 12:02d}-{1 + position % 28:02d} 12:{position % 60:02d}:00",
                json.dumps({"max_pairs": size}),
                f"{source} dataset {position + 1}" if position % 3 else None,
            ),
        ).lastrowid
        rows = []
        for _ in range(size):
            question = questions[number % len(questions)]
            if number % 5000 == 17:
                question = f"{question} {SEARCH_TERM}"
            answer = answers[(number * 7919) % len(answers)]
            rows.append((session_id, f"{question}? (#{number})", answer, thread_url(number)))
            number += 1
        connection.executemany(
            "INSERT INTO scraped_pairs (session_id, input_text, output_text, source_url) VALUES (?, ?, ?, ?)", rows
        )
    levels = ("DEBUG", "INFO", "INFO", "INFO", "WARNING", "ERROR")
    connection.executemany(
        "INSERT INTO app_logs (timestamp, level, logger, message) VALUES (?, ?, ?, ?)",
        (
            (f"2024-12-{1 + i % 28:02d}T10:{i % 60:02d}:00.000000", levels[i % 6], "finefoundry.scrape", f"log {i}")
            for i in range(20_000)
        ),
    )
    connection.execute("INSERT INTO app_state (key, value) VALUES ('bench', 'yes')")
    connection.execute("COMMIT")
    connection.close()
    print(f"built {pairs:,} pairs in {sessions} sessions in {time.perf_counter() - started:.0f} s", flush=True)


def index_for_search() -> None:
    """Index every pair for full-text search, as a database in use would be."""
    try:
        from storage.search import index as search_index
    except ImportError:
        return
    started = time.perf_counter()
    search_index.index_pending(max_seconds=None)
    print(f"indexed for search in {time.perf_counter() - started:.0f} s", flush=True)


def cpu_seconds() -> float:
    """User + system CPU time of this process (the test client and SQLite both run in it)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


CPU_MS: dict[str, list[float]] = {}


def fetch_ms(client, url: str) -> float:
    cpu = cpu_seconds()
    started = time.perf_counter()
    response = client.get(url)
    elapsed = (time.perf_counter() - started) * 1000
    CPU_MS.setdefault(url, []).append((cpu_seconds() - cpu) * 1000)
    if response.status_code != 200:
        raise SystemExit(f"{url} answered {response.status_code}")
    return elapsed


def delete_ms(session_id: int) -> float:
    """Time deleting the big session through the service, then roll it back to keep the cached database."""
    from django.db import transaction

    from storage.services import sessions as sessions_service

    with transaction.atomic():
        started = time.perf_counter()
        sessions_service.delete_scrape_session(session_id=session_id)
        elapsed = (time.perf_counter() - started) * 1000
        transaction.set_rollback(True)
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=1_000_000)
    parser.add_argument("--sessions", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--rebuild", action="store_true", help="build the database again")
    args = parser.parse_args()

    meta = DATA_DIR / "admin.json"
    wanted = {"pairs": args.pairs, "sessions": args.sessions, "version": 2}
    if (
        not args.rebuild
        and DB_PATH.exists()
        and meta.exists()
        and json.loads(meta.read_text()) == {**wanted, "version": 1}
    ):
        add_thread_urls(DB_PATH)
        meta.write_text(json.dumps(wanted))
    fresh = args.rebuild or not DB_PATH.exists() or not meta.exists() or json.loads(meta.read_text()) != wanted
    if fresh:
        meta.unlink(missing_ok=True)
        build(args.pairs, args.sessions)

    os.environ["FINEFOUNDRY_DB"] = str(DB_PATH)
    os.environ["FINEFOUNDRY_STORAGE_ROOT"] = str(DATA_DIR / "admin_outputs")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "finefoundry.settings")
    import warnings

    import django

    # WhiteNoise warns that collectstatic never ran; the bench does not serve static files.
    warnings.filterwarnings("ignore", message="No directory at")
    django.setup()
    from django.contrib.auth import get_user_model
    from django.test import Client

    from storage.models import ScrapedPair, ScrapeSession

    if fresh:
        index_for_search()
        meta.write_text(json.dumps(wanted))

    user, _ = get_user_model().objects.get_or_create(
        username="bench", defaults={"is_staff": True, "is_superuser": True}
    )
    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(user)
    ids = {
        "big": ScrapeSession.objects.order_by("id").values_list("id", flat=True).first(),
        "middle": ScrapeSession.objects.order_by("id").values_list("id", flat=True)[args.sessions // 2],
    }
    ids["pair"] = ScrapedPair.objects.filter(session_id=ids["middle"]).order_by("id").values_list("id", flat=True)[1000]

    pages = [(BASELINE[0], BASELINE[1], None)] + [(label, url(ids), target) for label, url, target in PAGES]
    for _, url, _ in pages:
        fetch_ms(client, url)  # warm the caches once
    timings: dict[str, list[float]] = {label: [] for label, _, _ in pages}
    deletes = []
    for _ in range(args.rounds):
        for label, url, _ in pages:
            timings[label].append(fetch_ms(client, url))
        deletes.append(delete_ms(ids["big"]))

    baseline = statistics.median(timings[BASELINE[0]])
    urls = {label: url for label, url, _ in pages}
    print(f"\nadmin pages at {args.pairs:,} pairs in {args.sessions} sessions, median of {args.rounds} rounds")
    print(f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}; CPU: user+sys of this process per page")
    print(f"{'page':<44} {'median':>9} {'min':>9} {'CPU':>9} {'target':>8} {'x base':>7}")
    failed = False
    for label, _, target in pages:
        median = statistics.median(timings[label])
        cpu = statistics.median(CPU_MS[urls[label]])
        verdict = "" if target is None else ("ok" if median <= target else "SLOW")
        failed |= verdict == "SLOW"
        target_text = "" if target is None else f"{target} ms"
        print(
            f"{label:<44} {median:>6.1f} ms {min(timings[label]):>6.1f} ms {cpu:>6.1f} ms {target_text:>8}"
            f" {median / baseline:>6.1f}x  {verdict}"
        )
    print(f"{'delete the 100,000-pair session (service)':<40} {statistics.median(deletes):>6.1f} ms")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
