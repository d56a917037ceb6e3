"""Remove duplicate pairs (same input and output), keeping the earliest, in a few set-based statements.

Duplicates are found by one window function over the selected sessions: within each session,
or across all of them (`across_sessions`), every pair after the first (lowest id) with the same
comparison key goes. The key is the two texts as stored, or with `normalize` the texts as
`normalized` makes them: NFKC, case folded, runs of whitespace collapsed to one space, ends
trimmed ("Hello  World " and "hello world", "Straße" and "STRASSE", a non-breaking space and a
space are then duplicates). That one Python function is the definition on every engine:
SQLite calls it as a function registered on the connection; on PostgreSQL (whose lower() and
regex classes know neither ß→ss nor every Unicode space) the pairs are streamed through it
and the ids to delete are handed back to the same statements.
"""

from __future__ import annotations

import hashlib
import unicodedata
from dataclasses import dataclass, field

from django.db import connections, transaction

from storage.services.pair_counts import recount_pairs
from storage.services.sessions import existing_sessions, session_id_list

DOOMED_TABLE = "dedupe_doomed_pairs"
EXAMPLES = 5
NORMALIZE_FUNCTION = "finefoundry_normalized"


@dataclass(frozen=True)
class DedupeResult:
    """What went (or would go, on a dry run): the total and the count per session."""

    removed: int
    per_session: dict[int, int] = field(default_factory=dict)
    dry_run: bool = False
    # A few (kept pair id, duplicate pair id), lowest duplicate ids first: what a dry run shows as examples.
    examples: list[tuple[int, int]] = field(default_factory=list)


def normalized(text: str | None) -> str:
    """The normalised form of a text: NFKC, case folded, whitespace runs collapsed to one space, ends trimmed."""
    return " ".join(unicodedata.normalize("NFKC", text or "").casefold().split())


def key_sql(connection, *, normalize: bool) -> str | None:
    """The comparison key of a pair as SQL over scraped_pairs' columns; None: computed in Python."""
    if not normalize:
        return "input_text, output_text"
    if connection.vendor == "sqlite":
        connection.ensure_connection()
        connection.connection.create_function(NORMALIZE_FUNCTION, 1, normalized, deterministic=True)
        return f"{NORMALIZE_FUNCTION}(input_text), {NORMALIZE_FUNCTION}(output_text)"
    return None


def _normalized_duplicates(connection, ids: list[int], *, across_sessions: bool) -> list[tuple[int, int, int]]:
    """(id, session_id, kept id) of every pair repeating an earlier one under `normalized`, read in id order."""
    seen: dict[bytes, int] = {}
    doomed = []
    placeholders = ", ".join(["%s"] * len(ids))
    with connection.chunked_cursor() as cursor:
        cursor.execute(
            f"SELECT id, session_id, input_text, output_text FROM scraped_pairs WHERE session_id IN ({placeholders})"
            " ORDER BY id",
            ids,
        )
        while rows := cursor.fetchmany(5000):
            for pair_id, session_id, input_text, output_text in rows:
                key = hashlib.blake2b(digest_size=16)
                key.update(b"" if across_sessions else str(session_id).encode())
                for text in (input_text, output_text):
                    key.update(b"\0" + normalized(text).encode("utf-8", "surrogatepass"))
                digest = key.digest()
                if digest in seen:
                    doomed.append((pair_id, session_id, seen[digest]))
                else:
                    seen[digest] = pair_id
    return doomed


def remove_duplicates(
    *, session_ids: list[int], normalize: bool = False, across_sessions: bool = False, dry_run: bool = False
) -> DedupeResult:
    """Delete every pair that repeats an earlier pair of the same session (or of any selected session).

    "Earlier" is the lower pair id: across sessions, the pair stored first is kept, whichever session it is in
    and in whatever order the sessions are given.
    """
    ids = session_id_list(session_ids, repeats=True, required=True)
    connection = connections["default"]
    placeholders = ", ".join(["%s"] * len(ids))
    key = key_sql(connection, normalize=normalize)
    with transaction.atomic(), connection.cursor() as cursor:
        existing_sessions(ids)
        cursor.execute(f"DROP TABLE IF EXISTS {DOOMED_TABLE}")
        cursor.execute(
            f"CREATE TEMPORARY TABLE {DOOMED_TABLE} (id bigint PRIMARY KEY, session_id bigint NOT NULL, kept bigint)"
        )
        if key is None:
            cursor.executemany(
                f"INSERT INTO {DOOMED_TABLE} (id, session_id, kept) VALUES (%s, %s, %s)",
                _normalized_duplicates(connection, ids, across_sessions=across_sessions),
            )
        else:
            partition = f"{'' if across_sessions else 'session_id, '}{key}"
            cursor.execute(
                f"INSERT INTO {DOOMED_TABLE} (id, session_id, kept)"
                " SELECT id, session_id, kept FROM ("
                f"  SELECT id, session_id, row_number() OVER (PARTITION BY {partition} ORDER BY id) AS position,"
                f"  first_value(id) OVER (PARTITION BY {partition} ORDER BY id) AS kept"
                f"  FROM scraped_pairs WHERE session_id IN ({placeholders})"
                ") ranked WHERE position > 1",
                ids,
            )
        cursor.execute(f"SELECT session_id, count(*) FROM {DOOMED_TABLE} GROUP BY session_id ORDER BY session_id")
        found = dict(cursor.fetchall())
        cursor.execute(f"SELECT kept, id FROM {DOOMED_TABLE} ORDER BY id LIMIT {EXAMPLES}")
        examples = [tuple(row) for row in cursor.fetchall()]
        if found and not dry_run:
            cursor.execute(f"DELETE FROM scraped_pairs WHERE id IN (SELECT id FROM {DOOMED_TABLE})")
            # Recount rather than subtract: the affected sessions end up exact even if they had drifted.
            recount_pairs(found, using=connection.alias)
        cursor.execute(f"DROP TABLE {DOOMED_TABLE}")
    per_session = {sid: found.get(sid, 0) for sid in sorted(ids)}
    return DedupeResult(removed=sum(found.values()), per_session=per_session, dry_run=dry_run, examples=examples)
