"""Pair search on PostgreSQL: pg_trgm GIN indexes under the SQL Django's icontains generates.

On PostgreSQL, `input_text__icontains=term` compiles to `UPPER("input_text"::text) LIKE
UPPER('%term%')`, and a text-to-text cast is dropped by the parser, so a trigram GIN index on
`UPPER(input_text)` serves it as is: no special query, and the results are icontains' own.
Terms under three characters have no trigram; PostgreSQL then scans, as SQLite does.

Writes: a GIN index is expensive to update per row. `fastupdate` lets inserts append to a
pending list that is merged into the index in bulk (by autovacuum, or by the insert that fills
it); a 64 MB list (instead of the 4 MB default) lets a large ingest or merge run at full speed
and pays the merge once, the way SQLite's search index is filled lazily after the write.
"""

from __future__ import annotations

PENDING_LIST_KB = 65536

TRIGRAM_INDEXES = {
    "idx_scraped_pairs_input_trgm": "input_text",
    "idx_scraped_pairs_output_trgm": "output_text",
}
# An old session's page is `WHERE session_id = %s ORDER BY id`; (session_id) alone makes
# PostgreSQL sort every pair of the session (SQLite's index already ends with the rowid).
SESSION_PAGE_INDEX = "idx_scraped_pairs_session_id_id"

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
    from django.db import DatabaseError

    try:
        cursor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    except DatabaseError as exc:
        raise TrigramUnavailable(NO_EXTENSION_MESSAGE.format(error=str(exc).strip().splitlines()[0])) from exc


def create_index_statements() -> list[str]:
    statements = [
        f"CREATE INDEX IF NOT EXISTS {name} ON scraped_pairs USING gin (UPPER({column}) gin_trgm_ops)"
        f" WITH (fastupdate = on, gin_pending_list_limit = {PENDING_LIST_KB})"
        for name, column in TRIGRAM_INDEXES.items()
    ]
    statements.append(f"CREATE INDEX IF NOT EXISTS {SESSION_PAGE_INDEX} ON scraped_pairs (session_id, id)")
    return statements


def drop_index_statements() -> list[str]:
    return [f"DROP INDEX IF EXISTS {name}" for name in (*TRIGRAM_INDEXES, SESSION_PAGE_INDEX)]


def trigram_index_names(connection) -> set[str]:
    """The trigram indexes that exist (for tests and `doctor`)."""
    if connection.vendor != "postgresql":
        return set()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename = 'scraped_pairs' AND indexname = ANY(%s)",
            [list(TRIGRAM_INDEXES)],
        )
        return {row[0] for row in cursor.fetchall()}
