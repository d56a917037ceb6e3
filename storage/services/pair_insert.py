"""The one place pairs are written in bulk: executemany on SQLite, COPY on PostgreSQL.

Callers (add_scraped_pairs, imports) validate the rows and call this inside their own
transaction, so all-or-nothing is theirs; this only moves checked rows into the table as fast
as the engine allows. On PostgreSQL, COPY streams the rows in one statement instead of one round
trip (and one plan execution) per row: several times the rows per second of executemany.
copy_pair_chunks takes the rows in chunks as the caller validates them, so PostgreSQL stores one
chunk while the next is checked; a chunk that raises aborts the COPY and the caller's transaction.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence

from django.db import connections

# Columns in the order of the rows: (session_id, input_text, output_text, source_url, metadata_json).
PAIR_COLUMNS = ("session_id", "input_text", "output_text", "source_url", "metadata_json")
INSERT_PAIR_SQL = (
    f"INSERT INTO scraped_pairs ({', '.join(PAIR_COLUMNS)}) VALUES ({', '.join(['%s'] * len(PAIR_COLUMNS))})"
)
COPY_PAIR_SQL = f"COPY scraped_pairs ({', '.join(PAIR_COLUMNS)}) FROM STDIN"


def insert_pair_rows(rows: Sequence[tuple], *, using: str = "default") -> int:
    """Insert validated pair rows; return how many. Must run inside the caller's transaction."""
    if not rows:
        return 0
    connection = connections[using]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # Django's cursor wraps psycopg's; COPY runs on the same connection and transaction.
            with cursor.cursor.copy(COPY_PAIR_SQL) as copy:
                write_row = copy.write_row
                for row in rows:
                    write_row(row)
        else:
            cursor.executemany(INSERT_PAIR_SQL, rows)
    return len(rows)


def copy_pair_chunks(chunks: Iterable[Sequence[tuple]], *, using: str = "default") -> int:
    """PostgreSQL: COPY the rows of each chunk as it comes, one COPY in all; return how many.

    Must run inside the caller's transaction. An exception from `chunks` ends the COPY with an
    error (psycopg sends CopyFail) and propagates, so the caller's rollback leaves nothing written.
    No COPY is started until the first non-empty chunk.
    """
    chunks = iter(chunks)
    first = next((chunk for chunk in chunks if chunk), None)
    if first is None:
        return 0
    written = 0
    with connections[using].cursor() as cursor, cursor.cursor.copy(COPY_PAIR_SQL) as copy:
        write_row = copy.write_row
        for chunk in itertools.chain((first,), chunks):
            for row in chunk:
                write_row(row)
            written += len(chunk)
    return written
