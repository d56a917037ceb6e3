"""Search speed on a 1,000,000-pair database: the admin pairs page and storage.api.search_pairs.

The database is built once (through storage.api.add_scraped_pairs, then indexed) and cached
under bench/.data/ (git-ignored): English-like text with a Zipf word distribution, 20 sessions.
Planted terms make the cases concrete: the rare word "quokka" (in 12 pairs) and the common
two-word phrase "gradient descent" (in 1 % of pairs: 10,000, the admin's count cap). Each admin
case is measured with the full-text index and, in the same run, with plain icontains
(FINEFOUNDRY_SEARCH_BACKEND=like), rounds alternating; medians and ratios are printed.

More cases are printed for information, without a target: "learning rate" (planted in 2 % of
pairs, where icontains finds the capped 10,000 matches half way through the table), "of the"
(in a fifth of all pairs) and "the model" (two common words, together in 0.6 % of pairs).

    python -m bench.search [--pairs 1000000] [--rounds 7] [--rebuild] [--database-url postgres://...]

With --database-url, the same pairs are searched on PostgreSQL with the pg_trgm indexes against
plain icontains (bench/postgres_search.py).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = ROOT / "bench" / ".data"
SESSIONS = 20
RARE_WORD = "quokka"
RARE_COUNT = 12
COMMON_PHRASE = "gradient descent"
# Planted phrases and the share of pairs each is put in.
PLANTED = {COMMON_PHRASE: 0.01, "learning rate": 0.02}
VERSION = 2
PAGE_TARGET_MS = 150.0
API_TARGET_MS = 20.0
TARGET_SPEEDUP = 10.0

FUNCTION_WORDS_TEXT = (
    "the of and to a in is that for it as with was on be by this are or from at an not have you can which"
    " your but all if will one they their has more about there when what so how use each other into than"
    " its only some like also then these two may first any new used most such where should because between"
    " while"
)
CONTENT_WORDS_TEXT = (
    "model data training dataset token prompt answer question example value function code python error"
    " file system user output input layer network weight gradient batch epoch loss accuracy memory server"
    " request response database query table index column string number list dictionary class method object"
    " variable loop condition test result problem solution step process time language text sentence word"
    " document page image video audio signal feature vector matrix tensor score label class sample size"
    " rate speed version package library module install command terminal shell script config setting"
    " option parameter argument thread process queue lock cache disk network port address host client"
    " browser window button form field recipe flour sugar butter oven minutes salt water heat pan garden"
    " plant soil seed light season weather history war king city river mountain country people money"
    " market price company customer product service health doctor patient study research paper author book"
    " story character music song game player team score"
)
CONSONANTS = "bcdfghjklmnprstvwz"
VOWELS = "aeiou"
QUESTION_STARTS = (
    "How do I",
    "What is the best way to",
    "Can you explain why",
    "Write a short note about",
    "Why does",
    "Summarize how",
    "Is it possible to",
    "What happens when",
)


def vocabulary(rng: random.Random) -> tuple[list[str], list[float]]:
    """Words with cumulative Zipf weights: function words first, then content words, then a long tail."""
    tail = set()
    while len(tail) < 60_000:
        syllables = rng.randint(2, 4)
        tail.add("".join(rng.choice(CONSONANTS) + rng.choice(VOWELS) for _ in range(syllables)))
    function_words, content_words = FUNCTION_WORDS_TEXT.split(), CONTENT_WORDS_TEXT.split()
    tail = sorted(tail - set(function_words) - set(content_words))
    rng.shuffle(tail)
    words = function_words + content_words + tail
    cumulative, total = [], 0.0
    for rank in range(1, len(words) + 1):
        total += 1.0 / rank
        cumulative.append(total)
    return words, cumulative


def sentence(rng: random.Random, words: list[str], cumulative: list[float], low: int, high: int) -> str:
    return " ".join(rng.choices(words, cum_weights=cumulative, k=rng.randint(low, high)))


def make_pair(rng: random.Random, words: list[str], cumulative: list[float]) -> dict:
    question = f"{rng.choice(QUESTION_STARTS)} {sentence(rng, words, cumulative, 6, 18)}?"
    answer = " ".join(sentence(rng, words, cumulative, 8, 20).capitalize() + "." for _ in range(rng.randint(2, 5)))
    return {"input": question, "output": answer}


def plant(pair: dict, rng: random.Random, text: str) -> None:
    side = rng.choice(("input", "output"))
    words = pair[side].split(" ")
    words.insert(rng.randrange(len(words) + 1), text)
    pair[side] = " ".join(words)


def build(path: Path, pairs: int) -> None:
    """Create the benchmark database at `path` through storage.api, then index it."""
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from storage import api
    from storage.search import index as search_index

    call_command("migrate", interactive=False, verbosity=0)
    get_user_model().objects.create_superuser("bench", "bench@example.org", "bench-password")
    rng = random.Random(2024)
    words, cumulative = vocabulary(rng)
    rare_at = set(rng.sample(range(pairs), RARE_COUNT))
    per_session = pairs // SESSIONS
    start = time.perf_counter()
    for number in range(SESSIONS):
        session_id = api.create_scrape_session(rng.choice(("reddit", "stackexchange", "synthetic")))
        count = per_session if number < SESSIONS - 1 else pairs - per_session * (SESSIONS - 1)
        for batch_start in range(0, count, 10_000):
            batch = []
            for offset in range(batch_start, min(batch_start + 10_000, count)):
                position = number * per_session + offset
                pair = make_pair(rng, words, cumulative)
                if position in rare_at:
                    plant(pair, rng, RARE_WORD)
                for phrase, share in PLANTED.items():
                    if rng.random() < share:
                        plant(pair, rng, phrase)
                batch.append(pair)
            api.add_scraped_pairs(session_id, batch)
        print(f"  session {number + 1}/{SESSIONS} stored ({time.perf_counter() - start:.0f} s)", flush=True)
    start = time.perf_counter()
    indexed = search_index.index_pending(chunk=50_000)
    print(f"  indexed {indexed:,} pairs in {time.perf_counter() - start:.0f} s", flush=True)


def database(pairs: int, rebuild: bool) -> Path:
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    path = DATA_DIR / f"search-{pairs}-v{VERSION}.db"
    if path.exists() and not rebuild:
        return path
    partial = path.with_name(path.name + ".part")
    for suffix in ("", "-wal", "-shm"):
        Path(f"{partial}{suffix}").unlink(missing_ok=True)
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    print(f"Building {path} ({pairs:,} pairs; done once)...", flush=True)
    from django.db import connections

    connections["default"].settings_dict["NAME"] = str(partial)
    build(partial, pairs)
    with connections["default"].cursor() as cursor:
        cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    connections["default"].close()
    partial.rename(path)
    return path


def timed_ms(function) -> float:
    start = time.perf_counter()
    function()
    return (time.perf_counter() - start) * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--rebuild", action="store_true", help="build the cached database again")
    parser.add_argument("--database-url", help="a PostgreSQL URL: benchmark there instead of SQLite")
    args = parser.parse_args()
    if args.database_url:
        here = Path(__file__).resolve().parent
        sys.path[:] = [str(ROOT), *(entry for entry in sys.path if Path(entry or ".").resolve() != here)]
        from bench.postgres_search import main_postgres

        generator = (
            vocabulary,
            make_pair,
            plant,
            {"sessions": SESSIONS, "rare_word": RARE_WORD, "rare_count": RARE_COUNT, "planted": PLANTED},
        )
        return main_postgres(
            args.database_url,
            pairs=args.pairs,
            rounds=args.rounds,
            rebuild=args.rebuild,
            generator=generator,
            version=VERSION,
            target=TARGET_SPEEDUP,
        )

    work = Path(tempfile.mkdtemp(prefix="ff-bench-search-"))
    os.environ["FINEFOUNDRY_DB"] = str(work / "unused.db")
    os.environ["FINEFOUNDRY_STORAGE_ROOT"] = str(work / "outputs")
    os.environ["DJANGO_ALLOWED_HOSTS"] = "testserver"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "finefoundry.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.db import connections
    from django.test import Client

    from storage import api

    path = database(args.pairs, args.rebuild)
    connections["default"].close()
    connections["default"].settings_dict["NAME"] = str(path)

    client = Client()
    client.force_login(get_user_model().objects.get(username="bench"))
    page = "/admin/storage/scrapedpair/"
    cases = [
        ("rare word", RARE_WORD, True),
        ("common phrase", f'"{COMMON_PHRASE}"', True),
        ("phrase in 2 % of pairs", '"learning rate"', False),
        ("very common phrase", '"of the"', False),
        ("common words, rarer phrase", '"the model"', False),
    ]

    def load(query: str) -> None:
        response = client.get(page, {"q": query})
        assert response.status_code == 200, response.status_code

    backends = ("auto", "like")
    page_ms: dict[tuple[str, str], list[float]] = {}
    for _, query, primary in cases:
        rounds = args.rounds if primary else max(3, args.rounds // 2)
        for backend in backends:
            settings.FINEFOUNDRY_SEARCH_BACKEND = backend
            load(query)  # warm the page cache and the code path
        for _ in range(rounds):
            for backend in backends:
                settings.FINEFOUNDRY_SEARCH_BACKEND = backend
                page_ms.setdefault((query, backend), []).append(timed_ms(lambda q=query: load(q)))
    settings.FINEFOUNDRY_SEARCH_BACKEND = "auto"

    # The page's own cost (100 rows, no search): no search can make the page faster than this.
    client.get(page)
    bare_ms = [timed_ms(lambda: client.get(page)) for _ in range(args.rounds)]

    api_ms = []
    api.search_pairs(RARE_WORD)
    for _ in range(max(args.rounds, 21)):
        api_ms.append(timed_ms(lambda: api.search_pairs(RARE_WORD)))
    found = len(api.search_pairs(RARE_WORD, limit=1000))

    print(f"\n{args.pairs:,} pairs in {SESSIONS} sessions; medians of {args.rounds} rounds (extra cases: fewer)")
    print(f"{'admin pairs page, ?q=':<44}{'full-text':>11}{'icontains':>11}{'speed-up':>10}  verdict")
    ok = True
    for name, query, primary in cases:
        fast = statistics.median(page_ms[(query, "auto")])
        slow = statistics.median(page_ms[(query, "like")])
        if primary:
            good = fast <= PAGE_TARGET_MS and slow / fast >= TARGET_SPEEDUP
            ok &= good
            verdict = "OK" if good else f"MISSED (target <= {PAGE_TARGET_MS:.0f} ms and >= {TARGET_SPEEDUP:.0f}x)"
        else:
            verdict = "(for information)"
        label = f"{name}: {query}"
        print(f"{label:<44}{fast:>8.1f} ms{slow:>8.1f} ms{slow / fast:>9.1f}x  {verdict}")
    label = "no search (the page itself, 100 rows)"
    print(f"{label:<44}{statistics.median(bare_ms):>8.1f} ms{'':>11}{'':>10}  (for information)")
    api_median = statistics.median(api_ms)
    good = api_median <= API_TARGET_MS
    ok &= good
    verdict = "OK" if good else f"MISSED (target <= {API_TARGET_MS:.0f} ms)"
    label = f"storage.api.search_pairs({RARE_WORD!r})"
    print(f"{label:<44}{api_median:>8.1f} ms{'':>11}{'':>10}  {verdict} ({found} pairs found)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
