"""The lazy search index over scraped_pairs: a candidate filter that makes substring search fast.

One scheme, two backends: on SQLite the FTS5 table below, on PostgreSQL pg_trgm GIN indexes on
a table of ours (storage.search.postgres holds its SQL). The mark, the pending pairs scanned by
searches, the background indexer and the sequence-reset repair are shared and live here;
storage.search.queries asks `search_mark()` and falls back to plain icontains when it returns
None (no FTS5, or FINEFOUNDRY_SEARCH_BACKEND=like).

On PostgreSQL a search never writes: pending pairs are scanned and left to the background
indexer, which also starts after add_scraped_pairs (`after_pairs_added`); MVCC lets it index
while others write, and GIN insertion is too slow (~0.3 ms a pair) to do inside a request.

The index is `scraped_pairs_fts`, an external-content FTS5 table (trigram tokenizer,
detail=none) over input_text and output_text. Searches use it only to pick candidate ids and
then re-check every candidate with icontains on the real row, so results are exactly what
icontains finds. That makes the index correct as long as it holds *at least* the current text
of every pair up to a high-water mark (`scraped_pairs_fts_state.indexed_through`); it may hold
more. The costs that shaped this (measured here, pairs of ~460 characters):

- Indexing a pair costs ~175 µs; inserting it ~6 µs. Even an AFTER INSERT trigger that indexes
  nothing costs bulk inserts 15-25 %, so inserts are not indexed when they happen. Ids above
  the mark are pending: searches scan them directly (`id > mark`, icontains), index what they
  can in 0.1 s and leave the rest to a background thread (also started by merges); doctor
  --fix indexes a large backlog. Pair ids come from AUTOINCREMENT, so a new pair, from
  whatever path, lands above the mark. (The one gap: a pair written with an explicit id that a
  deleted pair once had is not re-indexed; nothing in FineFoundry or here writes ids.)
- Removing a pair from an FTS5 index costs ~115 µs (it re-reads the old text); a DELETE trigger
  would make deleting a 100,000-pair session take ~12 s instead of ~0.2 s, in the desktop app
  too. A deleted id is never reused, so its entries can only yield a candidate that no longer
  exists: deletes leave the index alone, and `rebuild()` reclaims the space.
- An edit must be found by its new text at once, so an AFTER UPDATE trigger adds the new text of
  an indexed pair; the old text stays behind as a harmless stale candidate.
- detail=none keeps the index near the size of the text instead of ~4x (phrase queries, which it
  cannot answer, were no faster with detail=full). A term becomes an AND of a few of its rarest
  trigrams (`trigram_shares` estimates how rare from the index itself), and the icontains
  re-check makes that exact. A term so common that the newest pairs are dense with it is left
  to the plain scan, which then finds a page of matches sooner than the index lists them.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import sqlite3
import threading
import time

from django.conf import settings
from django.db import DatabaseError, connections, transaction

from storage.db.pragmas import pragma_set
from storage.db.write_batches import next_batch_size, sqlite_batch_manners
from storage.search import postgres

logger = logging.getLogger("finefoundry.storage.search")

FTS_TABLE = "scraped_pairs_fts"
STATE_TABLE = "scraped_pairs_fts_state"
UPDATE_TRIGGER = "scraped_pairs_fts_after_update"
INDEX_OBJECTS = (FTS_TABLE, STATE_TABLE, UPDATE_TRIGGER)

# Shorter terms have no trigram; they are matched by the icontains re-check alone.
MIN_TERM_CHARS = 3
# A few well-chosen trigrams narrow the candidates almost as well as all of them, and every extra
# one costs the index another list to walk (11 trigrams: 37 ms, 2: 7 ms at a million pairs).
MAX_TRIGRAMS_PER_TERM = 4
# Trigrams are added to a term's query, rarest first, until their shares multiply to this.
ENOUGH_SELECTIVITY = 0.0005
# A trigram's share of the pairs is estimated from this many of its newest entries (~0.15 ms each).
SHARE_PROBE = 200
MAX_PROBED_TRIGRAMS = 32
# A term matching this share of the pairs or more is found sooner by scanning the table, which stops at
# the first page, than by listing every candidate from the index (`of the`: 2 ms against 400 ms).
DENSE_SHARE = 0.1
# How many of the newest candidates are checked to estimate that share.
DENSITY_SAMPLE = 1000
# Rows indexed in a catch-up's first write transaction (~50 ms here); later ones are sized by what it took.
CATCH_UP_CHUNK = 256
# How long a search may spend indexing pending pairs before it scans the rest instead.
SEARCH_CATCH_UP_SECONDS = 0.1
# After a sequence reset, a table this small is re-indexed on the spot.
SMALL_TABLE_ROWS = 5000

CREATE_STATEMENTS = (
    f"""CREATE VIRTUAL TABLE IF NOT EXISTS {FTS_TABLE} USING fts5(
        input_text, output_text,
        content='scraped_pairs', content_rowid='id',
        tokenize='trigram case_sensitive 0', detail=none
    )""",
    f"""CREATE TABLE IF NOT EXISTS {STATE_TABLE} (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        indexed_through INTEGER NOT NULL DEFAULT 0
    )""",
    f"INSERT OR IGNORE INTO {STATE_TABLE} (id, indexed_through) VALUES (1, 0)",
    f"""CREATE TRIGGER IF NOT EXISTS {UPDATE_TRIGGER}
        AFTER UPDATE OF id, input_text, output_text ON scraped_pairs
        WHEN NEW.id <= (SELECT indexed_through FROM {STATE_TABLE} WHERE id = 1)
        BEGIN
            INSERT INTO {FTS_TABLE} (rowid, input_text, output_text)
            VALUES (NEW.id, NEW.input_text, NEW.output_text);
        END""",
)
# Forget every indexed pair (mark 0): rows are about to be written with ids that may lie below the
# mark (transfer_database --replace runs these on its own connection).
EMPTY_STATEMENTS = (
    f"INSERT INTO {FTS_TABLE} ({FTS_TABLE}) VALUES ('delete-all')",
    f"UPDATE {STATE_TABLE} SET indexed_through = 0 WHERE id = 1",
)
DROP_STATEMENTS = (
    f"DROP TRIGGER IF EXISTS {UPDATE_TRIGGER}",
    f"DROP TABLE IF EXISTS {FTS_TABLE}",
    f"DROP TABLE IF EXISTS {STATE_TABLE}",
)


@functools.cache
def fts5_trigram_available() -> bool:
    """Tell whether this process's SQLite library has FTS5 with the trigram tokenizer."""
    probe = sqlite3.connect(":memory:")
    try:
        probe.execute("CREATE VIRTUAL TABLE probe USING fts5(x, tokenize='trigram case_sensitive 0', detail=none)")
    except sqlite3.Error:
        return False
    finally:
        probe.close()
    return True


def wanted() -> bool:
    """Whether settings allow the index; FINEFOUNDRY_SEARCH_BACKEND=like turns it off."""
    return getattr(settings, "FINEFOUNDRY_SEARCH_BACKEND", "auto") != "like"


def supported(connection) -> bool:
    return connection.vendor == "postgresql" or (connection.vendor == "sqlite" and fts5_trigram_available())


def _is_postgres(connection_or_cursor) -> bool:
    connection = getattr(connection_or_cursor, "db", connection_or_cursor)
    return connection.vendor == "postgresql"


def installed(connection) -> bool:
    with connection.cursor() as cursor:
        if _is_postgres(connection):
            return postgres.installed(cursor)
        cursor.execute(
            "SELECT count(*) FROM sqlite_master WHERE name IN (%s, %s, %s)",
            list(INDEX_OBJECTS),
        )
        return cursor.fetchone()[0] == len(INDEX_OBJECTS)


def install(connection, *, populate: bool = True) -> bool:
    """Create the index, its state and trigger where SQLite supports them; index every pair if asked."""
    if not supported(connection):
        return False
    with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
        if _is_postgres(connection):
            postgres.create(cursor)
        else:
            for statement in CREATE_STATEMENTS:
                cursor.execute(statement)
        if populate:
            _rebuild(cursor)
    return True


def uninstall(connection) -> None:
    if connection.vendor not in ("sqlite", "postgresql"):
        return
    with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
        if _is_postgres(connection):
            postgres.drop(cursor)
            return
        for statement in DROP_STATEMENTS:
            cursor.execute(statement)


def _rebuild(cursor) -> None:
    if _is_postgres(cursor):
        postgres.rebuild(cursor)
        return
    cursor.execute(f"INSERT INTO {FTS_TABLE} ({FTS_TABLE}) VALUES ('rebuild')")
    cursor.execute(
        f"UPDATE {STATE_TABLE} SET indexed_through = (SELECT coalesce(max(id), 0) FROM scraped_pairs) WHERE id = 1"
    )


def rebuild(*, using: str = "default") -> bool:
    """Re-create the index from the table (drops stale entries); install it first if it is missing."""
    connection = connections[using]
    if not supported(connection):
        return False
    if not installed(connection):
        return install(connection)
    with transaction.atomic(using=using), connection.cursor() as cursor:
        _rebuild(cursor)
    return True


def state(cursor) -> tuple[int, int, int | None]:
    """(mark, highest pair id, AUTOINCREMENT sequence or None)."""
    if _is_postgres(cursor):
        return postgres.state(cursor)
    cursor.execute(
        f"SELECT (SELECT indexed_through FROM {STATE_TABLE} WHERE id = 1),"
        " (SELECT coalesce(max(id), 0) FROM scraped_pairs),"
        " (SELECT seq FROM sqlite_sequence WHERE name = 'scraped_pairs')"
    )
    mark, highest, sequence = cursor.fetchone()
    return mark or 0, highest, sequence


def _index_chunk(connection, chunk: int) -> int:
    """Index up to `chunk` pending pairs in one transaction; return how many."""
    with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
        if _is_postgres(connection):
            postgres.lock_mark(cursor)
        mark, highest, _ = state(cursor)
        if highest <= mark:
            return 0
        cursor.execute(
            "SELECT count(*), max(id) FROM (SELECT id FROM scraped_pairs WHERE id > %s ORDER BY id LIMIT %s) AS chunk",
            [mark, chunk],
        )
        count, upper = cursor.fetchone()
        if _is_postgres(connection):
            postgres.index_range(cursor, mark, upper)
            return count
        cursor.execute(
            f"INSERT INTO {FTS_TABLE} (rowid, input_text, output_text)"
            " SELECT id, input_text, output_text FROM scraped_pairs WHERE id > %s AND id <= %s",
            [mark, upper],
        )
        cursor.execute(f"UPDATE {STATE_TABLE} SET indexed_through = %s WHERE id = 1", [upper])
        return count


def index_pending(*, using: str = "default", max_seconds: float | None = None, chunk: int | None = None) -> int:
    """Index pairs added since the last catch-up, in short transactions; return how many were indexed.

    With a deadline (a search's catch-up) it stops once the deadline has passed, and pauses
    nowhere: a search holds the lock for about SEARCH_CATCH_UP_SECONDS at most. Without one it
    runs until nothing is pending, with the manners of every long writer (storage.db.write_batches):
    on SQLite each transaction is sized to take ~0.1 s by what the last one took, and other writers
    get their turn in between. `chunk` fixes the size instead (benchmarks, tests).
    """
    connection = connections[using]
    if not (supported(connection) and installed(connection)):
        return 0
    # PostgreSQL's readers and writers never wait for the indexer (MVCC): its chunk stays fixed.
    adaptive = chunk is None and not _is_postgres(connection)
    size = chunk or catch_up_chunk(connection)
    deadline = None if max_seconds is None else time.monotonic() + max_seconds
    manners = sqlite_batch_manners(using) if deadline is None else contextlib.nullcontext(lambda *, more: None)
    total = 0
    with manners as between_batches:
        while True:
            started = time.perf_counter()
            done = _index_chunk(connection, size)
            took = time.perf_counter() - started
            total += done
            finished = done < size or (deadline is not None and time.monotonic() >= deadline)
            between_batches(more=not finished)
            if finished:
                return total
            if adaptive:
                size = next_batch_size(done, took)


@contextlib.contextmanager
def _no_lock_wait(connection):
    """Fail at once, instead of after the busy timeout, when another connection is writing."""
    with pragma_set(connection, "busy_timeout", 0):
        yield


def _sequence_went_back(cursor) -> bool:
    mark, _, sequence = state(cursor)
    return sequence is not None and sequence < mark


def search_mark(*, using: str = "default") -> int | None:
    """Get the index ready for one search: the id up to which it is complete, or None to search without it.

    Indexes pending pairs for at most SEARCH_CATCH_UP_SECONDS, never waiting for another
    writer; whatever is still pending is scanned by the search itself (`id > mark`).
    """
    connection = connections[using]
    if not (wanted() and supported(connection) and installed(connection)):
        return None
    with connection.cursor() as cursor:
        if _sequence_went_back(cursor) and not repair_sequence_reset(using=using):
            return None
        mark, highest, _ = state(cursor)
    if highest > mark and _is_postgres(connection):
        index_in_background(using=using)
    elif highest > mark:
        try:
            with _no_lock_wait(connection):
                index_pending(using=using, max_seconds=SEARCH_CATCH_UP_SECONDS)
        except DatabaseError:
            pass  # locked by another writer, or a read-only file: this search scans the pending pairs
        with connection.cursor() as cursor:
            mark, highest, _ = state(cursor)
        if highest > mark:
            index_in_background(using=using)
    return mark


_background: dict[str, threading.Thread] = {}
_background_lock = threading.Lock()


def index_in_background(*, using: str = "default") -> None:
    """Index the pending pairs in a thread of this process, one short transaction at a time.

    Starts once the current transaction commits (a thread cannot see uncommitted pairs), and
    not while a thread for this database is still at it. Not at all with FINEFOUNDRY_SEARCH_BACKEND=like.
    """
    if not wanted():
        return
    transaction.on_commit(lambda: _start_background(using), using=using)


def _start_background(using: str) -> None:
    with _background_lock:
        running = _background.get(using)
        if running is not None and running.is_alive():
            return
        thread = threading.Thread(target=_index_until_done, args=(using,), name=f"search-index-{using}", daemon=True)
        _background[using] = thread
        thread.start()


def after_pairs_added(*, using: str = "default") -> None:
    """New pairs were written: on PostgreSQL, whose searches never index, start the background indexer.

    SQLite's searches catch up themselves, and a thread there would contend for the file's one
    write lock with the desktop app.
    """
    if _is_postgres(connections[using]):
        index_in_background(using=using)


def catch_up_chunk(connection) -> int:
    return postgres.CATCH_UP_CHUNK if _is_postgres(connection) else CATCH_UP_CHUNK


def _index_until_done(using: str) -> None:
    try:
        index_pending(using=using)
    except Exception:
        # Nothing is lost: what is still pending is scanned by searches and indexed by the next thread.
        logger.exception("background search indexing stopped")
    finally:
        connections[using].close()


def wait_for_background(*, using: str = "default", timeout: float | None = None) -> None:
    """Wait until this process's background indexer for `using` (if any) has finished."""
    thread = _background.get(using)
    if thread is not None:
        thread.join(timeout)


def repair_sequence_reset(*, using: str = "default") -> bool:
    """Re-index a small table whose AUTOINCREMENT sequence went back (e.g. `manage.py flush`).

    New pairs may then reuse ids at or below the mark that the index never saw. Return False
    when the table is too big to re-index on the spot; `doctor --fix` does it then.
    """
    connection = connections[using]
    with connection.cursor() as cursor:
        if not _sequence_went_back(cursor):
            return True
        cursor.execute("SELECT count(*) FROM (SELECT 1 FROM scraped_pairs LIMIT %s)", [SMALL_TABLE_ROWS + 1])
        if cursor.fetchone()[0] > SMALL_TABLE_ROWS:
            return False
    try:
        return rebuild(using=using)
    except DatabaseError:
        return False


def after_migrate(sender, using: str = "default", **kwargs) -> None:
    """post_migrate (also sent by `flush`): re-index right away if the pair ids were reset."""
    connection = connections[using]
    if supported(connection) and installed(connection):
        repair_sequence_reset(using=using)


def candidates_sql(expression: str, mark: int) -> tuple[str, list]:
    """Ids that may match: what the index matches, plus the pairs above the mark, which it has not seen."""
    return (
        f"SELECT rowid FROM {FTS_TABLE} WHERE {FTS_TABLE} MATCH %s"
        " UNION ALL SELECT id FROM scraped_pairs WHERE id > %s",
        [expression, mark],
    )


def quoted(token: str) -> str:
    """An FTS5 string literal: the token as one trigram, whatever characters it holds."""
    return '"{}"'.format(token.replace('"', '""'))


def trigram_shares(grams: list[str], *, using: str = "default") -> dict[str, float]:
    """Estimate each trigram's share of the pairs in one cheap query (trigrams past the probe limit: absent).

    The newest SHARE_PROBE entries of a trigram's list are read: fewer means a rare trigram
    (counted exactly); otherwise their id range gives the share.
    """
    grams = list(dict.fromkeys(grams))[:MAX_PROBED_TRIGRAMS]
    with connections[using].cursor() as cursor:
        cursor.execute("SELECT coalesce(max(id), 0) FROM scraped_pairs")
        highest = cursor.fetchone()[0]
        if not grams or not highest:
            return {}
        probe = (
            f"SELECT %s, count(*), min(rowid) FROM (SELECT rowid FROM {FTS_TABLE} WHERE {FTS_TABLE} MATCH %s"
            f" ORDER BY rowid DESC LIMIT {SHARE_PROBE})"
        )
        cursor.execute(
            " UNION ALL ".join([probe] * len(grams)),
            [value for position, gram in enumerate(grams) for value in (position, quoted(gram))],
        )
        rows = cursor.fetchall()
    shares = {}
    for position, count, oldest in rows:
        span = highest if count < SHARE_PROBE else highest - oldest + 1
        shares[grams[position]] = min(count / max(span, 1), 1.0)
    return shares


def newest_candidates_sql(expression: str, count: int) -> tuple[str, list]:
    return (
        f"SELECT rowid FROM {FTS_TABLE} WHERE {FTS_TABLE} MATCH %s ORDER BY rowid DESC LIMIT %s",
        [expression, count],
    )
