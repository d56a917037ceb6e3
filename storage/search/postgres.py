"""The PostgreSQL backend of the lazy search index: pg_trgm GIN indexes on a table of our own.

storage.search.index owns the scheme (a high-water mark, pending pairs scanned, a background
indexer, the sequence-reset repair) and storage.search.queries the planning; this module is the
PostgreSQL SQL under them, as index.py's FTS5 statements are SQLite's.

Why a separate table: GIN trigram indexes on scraped_pairs itself made every insert pay trigram
extraction and GIN insertion (a plain COPY fell from ~20,000 to ~2,700 pairs/s, 8x). Here
scraped_pairs has no trigram index, so ingest and merges run at COPY speed; `storage_pair_search`
holds UPPER() of each pair's texts up to the mark (`storage_pair_search_state.indexed_through`)
and carries the GIN indexes. Searches take the ids whose indexed text is LIKE each term, plus
every pair above the mark, and the icontains filter on the real row re-checks them all, so
results are exactly what icontains finds.

- Edits: an AFTER UPDATE trigger on scraped_pairs upserts the new text of an indexed pair. It reads
  the mark FOR SHARE and the indexer locks it FOR UPDATE, so an edit racing a catch-up is either
  seen by the indexer's snapshot or upserted after it.
- Deletes: untouched; an entry of a deleted pair can only name an id that no longer joins
  (`doctor` prunes them).
- Ids written below the mark (transfer --replace, a sequence reset): transfer empties the index,
  a reset is repaired by storage.search.index like SQLite's.
- Terms under three characters have no trigram and are matched by the re-check alone.
"""

from __future__ import annotations

from django.db import DatabaseError

TABLE = "storage_pair_search"
STATE_TABLE = "storage_pair_search_state"
TRIGGER = "storage_pair_search_after_update"
TRIGGER_FUNCTION = "storage_pair_search_on_update"
TRIGRAM_INDEXES = {
    "storage_pair_search_input_trgm": "input_upper",
    "storage_pair_search_output_trgm": "output_upper",
}
# The indexes 0003 put on scraped_pairs itself; 0009 drops them.
OLD_TRIGRAM_INDEXES = ("idx_scraped_pairs_input_trgm", "idx_scraped_pairs_output_trgm")
# An old session's page is `WHERE session_id = %s ORDER BY id`; (session_id) alone makes
# PostgreSQL sort every pair of the session (SQLite's index already ends with the rowid).
SESSION_PAGE_INDEX = "idx_scraped_pairs_session_id_id"
# GIN's pending list takes a catch-up chunk's entries and merges them in bulk.
PENDING_LIST_KB = 65536
# Rows indexed per catch-up transaction (~0.4 s here): GIN insertion costs ~0.3 ms a pair.
CATCH_UP_CHUNK = 2048
# Above this many pending pairs, filling the table and building the indexes afterwards beats
# inserting into live indexes (doctor --fix, a migration over an existing database).
BULK_BUILD_PAIRS = 50_000

NO_EXTENSION_MESSAGE = (
    "PostgreSQL's pg_trgm extension is needed for pair search, and the database role running "
    "migrate may not create it ({error}). Have a superuser (or the database owner, pg_trgm is a "
    "trusted extension) run `CREATE EXTENSION IF NOT EXISTS pg_trgm;` in this database, then run "
    "migrate again. See README, 'Scale out'."
)


class TrigramUnavailable(RuntimeError):
    pass


def enable_trigram_extension(cursor) -> None:
    """CREATE EXTENSION pg_trgm, or a clear error saying who has to do it."""
    cursor.execute("SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'")
    if cursor.fetchone():
        return
    try:
        cursor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    except DatabaseError as exc:
        raise TrigramUnavailable(NO_EXTENSION_MESSAGE.format(error=str(exc).strip().splitlines()[0])) from exc


def create_trigram_index_statements() -> list[str]:
    return [
        f"CREATE INDEX IF NOT EXISTS {name} ON {TABLE} USING gin ({column} gin_trgm_ops)"
        f" WITH (fastupdate = on, gin_pending_list_limit = {PENDING_LIST_KB})"
        for name, column in TRIGRAM_INDEXES.items()
    ]


def drop_trigram_index_statements() -> list[str]:
    return [f"DROP INDEX IF EXISTS {name}" for name in TRIGRAM_INDEXES]


CREATE_STATEMENTS = (
    f"CREATE TABLE IF NOT EXISTS {TABLE} (pair_id bigint PRIMARY KEY, input_upper text, output_upper text)",
    f"""CREATE TABLE IF NOT EXISTS {STATE_TABLE} (
        id integer PRIMARY KEY CHECK (id = 1),
        indexed_through bigint NOT NULL DEFAULT 0
    )""",
    f"INSERT INTO {STATE_TABLE} (id, indexed_through) VALUES (1, 0) ON CONFLICT (id) DO NOTHING",
    f"""CREATE OR REPLACE FUNCTION {TRIGGER_FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF NEW.id <= (SELECT indexed_through FROM {STATE_TABLE} WHERE id = 1 FOR SHARE) THEN
                INSERT INTO {TABLE} (pair_id, input_upper, output_upper)
                VALUES (NEW.id, UPPER(NEW.input_text), UPPER(NEW.output_text))
                ON CONFLICT (pair_id) DO UPDATE
                SET input_upper = EXCLUDED.input_upper, output_upper = EXCLUDED.output_upper;
            END IF;
            RETURN NULL;
        END
    $$""",
    f"DROP TRIGGER IF EXISTS {TRIGGER} ON scraped_pairs",
    f"""CREATE TRIGGER {TRIGGER} AFTER UPDATE OF id, input_text, output_text ON scraped_pairs
        FOR EACH ROW WHEN (OLD.input_text IS DISTINCT FROM NEW.input_text
                           OR OLD.output_text IS DISTINCT FROM NEW.output_text OR OLD.id <> NEW.id)
        EXECUTE FUNCTION {TRIGGER_FUNCTION}()""",
    *create_trigram_index_statements(),
    f"CREATE INDEX IF NOT EXISTS {SESSION_PAGE_INDEX} ON scraped_pairs (session_id, id)",
)
DROP_STATEMENTS = (
    f"DROP TRIGGER IF EXISTS {TRIGGER} ON scraped_pairs",
    f"DROP FUNCTION IF EXISTS {TRIGGER_FUNCTION}()",
    f"DROP TABLE IF EXISTS {TABLE}",
    f"DROP TABLE IF EXISTS {STATE_TABLE}",
)


def installed(cursor) -> bool:
    cursor.execute(
        "SELECT (SELECT count(*) FROM pg_tables WHERE schemaname = current_schema() AND tablename IN (%s, %s))"
        " + (SELECT count(*) FROM pg_trigger WHERE tgname = %s)",
        [TABLE, STATE_TABLE, TRIGGER],
    )
    return cursor.fetchone()[0] == 3


def create(cursor) -> None:
    enable_trigram_extension(cursor)
    for statement in CREATE_STATEMENTS:
        cursor.execute(statement)


def drop(cursor) -> None:
    for statement in DROP_STATEMENTS:
        cursor.execute(statement)


def rebuild(cursor) -> None:
    """Index every pair in bulk: empty the table, fill it without its GIN indexes, build them once."""
    cursor.execute(f"SELECT indexed_through FROM {STATE_TABLE} WHERE id = 1 FOR UPDATE")
    cursor.execute("SET LOCAL maintenance_work_mem = '256MB'")
    for statement in drop_trigram_index_statements():
        cursor.execute(statement)
    cursor.execute(f"TRUNCATE {TABLE}")
    cursor.execute(
        f"INSERT INTO {TABLE} (pair_id, input_upper, output_upper)"
        " SELECT id, UPPER(input_text), UPPER(output_text) FROM scraped_pairs"
    )
    for statement in create_trigram_index_statements():
        cursor.execute(statement)
    cursor.execute(
        f"UPDATE {STATE_TABLE} SET indexed_through = (SELECT coalesce(max(id), 0) FROM scraped_pairs) WHERE id = 1"
    )


# Forget everything indexed, mark 0 (see index.EMPTY_STATEMENTS).
EMPTY_STATEMENTS = (
    f"SELECT indexed_through FROM {STATE_TABLE} WHERE id = 1 FOR UPDATE",
    f"TRUNCATE {TABLE}",
    f"UPDATE {STATE_TABLE} SET indexed_through = 0 WHERE id = 1",
)


def state(cursor) -> tuple[int, int, int | None]:
    """(mark, highest pair id, the id sequence's last value or None)."""
    cursor.execute("SELECT pg_get_serial_sequence('scraped_pairs', 'id')")
    sequence_name = cursor.fetchone()[0]
    cursor.execute(
        f"SELECT (SELECT indexed_through FROM {STATE_TABLE} WHERE id = 1),"
        " (SELECT coalesce(max(id), 0) FROM scraped_pairs),"
        " (SELECT last_value FROM pg_sequences WHERE %s IN (schemaname || '.' || sequencename, sequencename))",
        [sequence_name],
    )
    mark, highest, sequence = cursor.fetchone()
    return mark or 0, highest, (sequence or 0) if sequence_name else None


def lock_mark(cursor) -> int:
    """The mark, locked until the transaction ends, so one indexer at a time moves it."""
    cursor.execute(f"SELECT indexed_through FROM {STATE_TABLE} WHERE id = 1 FOR UPDATE")
    return cursor.fetchone()[0]


def index_range(cursor, mark: int, upper: int) -> None:
    cursor.execute(
        f"INSERT INTO {TABLE} (pair_id, input_upper, output_upper)"
        " SELECT id, UPPER(input_text), UPPER(output_text) FROM scraped_pairs WHERE id > %s AND id <= %s"
        " ON CONFLICT (pair_id) DO UPDATE SET input_upper = EXCLUDED.input_upper, output_upper = EXCLUDED.output_upper",
        [mark, upper],
    )
    cursor.execute(f"UPDATE {STATE_TABLE} SET indexed_through = %s WHERE id = 1", [upper])


def candidates_sql(patterns: list[str], mark: int) -> tuple[str, list]:
    """Ids that may match: indexed pairs whose text is LIKE every pattern, plus the pairs above the mark.

    `patterns` are LIKE patterns as Django's icontains makes them (`%term%`, wildcards escaped);
    UPPER() on both sides, as in Django's SQL, so the index answers what icontains asks.
    """
    condition = " AND ".join(["(input_upper LIKE UPPER(%s) OR output_upper LIKE UPPER(%s))"] * len(patterns))
    return (
        f"SELECT pair_id FROM {TABLE} WHERE {condition} UNION ALL SELECT id FROM scraped_pairs WHERE id > %s",
        [value for pattern in patterns for value in (pattern, pattern)] + [mark],
    )


def coverage(cursor, mark: int) -> tuple[int, int, int, int]:
    """(pending, missing, stale, indexed) as storage.search.health counts them."""
    cursor.execute(
        "SELECT (SELECT count(*) FROM scraped_pairs WHERE id > %s),"
        " (SELECT count(*) FROM scraped_pairs p WHERE p.id <= %s"
        f"   AND NOT EXISTS (SELECT 1 FROM {TABLE} s WHERE s.pair_id = p.id)),"
        f" (SELECT count(*) FROM {TABLE} s WHERE NOT EXISTS (SELECT 1 FROM scraped_pairs p WHERE p.id = s.pair_id)),"
        f" (SELECT count(*) FROM {TABLE})",
        [mark, mark],
    )
    return cursor.fetchone()


def prune(cursor) -> int:
    """Drop the entries of deleted pairs; return how many."""
    cursor.execute(f"DELETE FROM {TABLE} s WHERE NOT EXISTS (SELECT 1 FROM scraped_pairs p WHERE p.id = s.pair_id)")
    return cursor.rowcount


def trigram_index_names(connection) -> set[str]:
    """The trigram indexes that exist (for tests and `doctor`)."""
    if connection.vendor != "postgresql":
        return set()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename = %s AND indexname = ANY(%s)",
            [TABLE, list(TRIGRAM_INDEXES)],
        )
        return {row[0] for row in cursor.fetchall()}
