"""bench/search.py on PostgreSQL: the admin search and search_pairs with the lazy pg_trgm index and without.

The 1,000,000-pair database (the same generated pairs as the SQLite benchmark) is built once in
a database named ff_bench_search_<pairs>_v<version>_lazy beside the URL's and kept for later runs
(`--rebuild` drops it); the search index is then built in bulk (timed). "Plain icontains" is the
same request in the same run with FINEFOUNDRY_SEARCH_BACKEND=like, the icontains fallback.
"""

from __future__ import annotations

import os
import random
import statistics
import time

from bench.scratch_postgres import conninfo, with_database


def ensure_database(url: str, name: str, pairs: int, rebuild: bool) -> str:
    import subprocess
    import sys

    import psycopg

    from bench.scratch_django import ROOT

    admin = psycopg.connect(conninfo(url), autocommit=True)
    exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
    target = with_database(url, name)
    if exists and not rebuild:
        admin.close()
        return target  # complete, or loaded and still to be indexed (main_postgres finishes it)
    admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.execute(f'CREATE DATABASE "{name}"')
    admin.close()
    print(f"Building {name} ({pairs:,} pairs; done once)...", flush=True)
    env = {**os.environ, "DATABASE_URL": target}
    subprocess.run([sys.executable, "manage.py", "migrate", "--no-input", "-v", "0"], cwd=ROOT, env=env, check=True)
    return target


def build(pairs: int, generator) -> None:
    """Fill the database through storage.api (the search index is built by finish())."""
    from django.contrib.auth import get_user_model
    from django.test import override_settings

    from storage import api

    vocabulary, make_pair, plant, settings = generator
    get_user_model().objects.create_superuser("bench", "bench@example.org", "bench-password")
    rng = random.Random(2024)
    words, cumulative = vocabulary(rng)
    rare_at = set(rng.sample(range(pairs), settings["rare_count"]))
    per_session = pairs // settings["sessions"]
    start = time.perf_counter()
    for number in range(settings["sessions"]):
        session_id = api.create_scrape_session(rng.choice(("reddit", "stackexchange", "synthetic")))
        count = per_session if number < settings["sessions"] - 1 else pairs - per_session * (settings["sessions"] - 1)
        batch = []
        for offset in range(count):
            pair = make_pair(rng, words, cumulative)
            if number * per_session + offset in rare_at:
                plant(pair, rng, settings["rare_word"])
            for phrase, share in settings["planted"].items():
                if rng.random() < share:
                    plant(pair, rng, phrase)
            batch.append(pair)
        with override_settings(FINEFOUNDRY_SEARCH_BACKEND="like"):  # finish() indexes in bulk
            api.add_scraped_pairs(session_id, batch)
        print(f"  session {number + 1}/{settings['sessions']} stored ({time.perf_counter() - start:.0f} s)", flush=True)


def finish() -> None:
    """Index every pair in bulk (what doctor --fix does with a large backlog) and analyze, once."""
    from django.db import connection

    from storage.search import index as search_index

    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM app_state WHERE key = 'bench.complete'")
        if cursor.fetchone():
            return
    start = time.perf_counter()
    search_index.rebuild()
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
        cursor.execute("INSERT INTO app_state (key, value) VALUES ('bench.complete', '1')")
    print(f"  search index built in bulk in {time.perf_counter() - start:.0f} s", flush=True)


def timed_ms(function) -> float:
    start = time.perf_counter()
    function()
    return (time.perf_counter() - start) * 1000


def without_trigram_indexes(function):
    """Run `function` as plain icontains (FINEFOUNDRY_SEARCH_BACKEND=like: the index is not used)."""
    from django.test import override_settings

    with override_settings(FINEFOUNDRY_SEARCH_BACKEND="like"):
        return function()


def main_postgres(url: str, *, pairs: int, rounds: int, rebuild: bool, generator, version: int, target: float) -> int:
    name = f"ff_bench_search_{pairs}_v{version}_lazy"
    target_url = ensure_database(url, name, pairs, rebuild)
    os.environ["DATABASE_URL"] = target_url
    os.environ["DJANGO_ALLOWED_HOSTS"] = "testserver"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "finefoundry.settings")
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.test import Client

    from storage import api

    if not get_user_model().objects.filter(username="bench").exists():
        build(pairs, generator)
    finish()
    client = Client()
    client.force_login(get_user_model().objects.get(username="bench"))
    page = "/admin/storage/scrapedpair/"
    rare = generator[3]["rare_word"]
    common = '"gradient descent"'
    cases = {
        "admin pairs page, ?q=" + rare: lambda: client.get(page, {"q": rare}),
        f"storage.api.search_pairs({rare!r})": lambda: api.search_pairs(rare),
        "admin pairs page, ?q=" + common: lambda: client.get(page, {"q": common}),
        f"storage.api.search_pairs({common!r})": lambda: api.search_pairs(common),
    }
    print(f"\nPostgreSQL, {pairs:,} pairs; medians of {rounds} rounds, same run")
    print(f"{'case':<44}{'pg_trgm':>11}{'icontains':>11}{'speed-up':>10}  verdict")
    ok = True
    for label, call in cases.items():
        call()
        without_trigram_indexes(call)
        fast, slow = [], []
        for _ in range(rounds):
            fast.append(timed_ms(call))
            slow.append(without_trigram_indexes(lambda c=call: timed_ms(c)))
        fast_ms, slow_ms = statistics.median(fast), statistics.median(slow)
        good = slow_ms / fast_ms >= target
        ok &= good
        verdict = "OK" if good else f"MISSED (target >= {target:.0f}x)"
        print(f"{label:<44}{fast_ms:>8.1f} ms{slow_ms:>8.1f} ms{slow_ms / fast_ms:>9.1f}x  {verdict}")
    found = len(api.search_pairs(rare, limit=1000))
    print(f"({found} pairs hold {rare!r})")
    return 0 if ok else 1
