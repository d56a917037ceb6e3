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

import contextlib
import hashlib
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from django.db import connections, transaction

from storage.db.write_batches import write_in_steps
from storage.services.pair_counts import adjust_pair_counts, recount_pairs
from storage.services.sessions import existing_sessions, session_id_list

DOOMED_TABLE = "dedupe_doomed_pairs"
EXAMPLES = 5
# A batch's ids (twice: the duplicates and the pairs they repeat) are bound parameters: below SQLite's 32,766.
MAX_BATCH_IDS = 10_000
NORMALIZE_FUNCTION = "finefoundry_normalized"


@dataclass(frozen=True)
class DedupeResult:
    """What went (or would go, on a dry run): the total and the count per session."""

    removed: int
    per_session: dict[int, int] = field(default_factory=dict)
    dry_run: bool = False
    # A few (kept pair id, duplicate pair id), lowest duplicate ids first: what a dry run shows as examples.
    examples: list[tuple[int, int]] = field(default_factory=list)
    # Planned duplicates left alone because they (or the pair they repeat) changed or went while dedupe ran.
    changed: int = 0


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
    *,
    session_ids: list[int],
    normalize: bool = False,
    across_sessions: bool = False,
    dry_run: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> DedupeResult:
    """Delete every pair that repeats an earlier pair of the same session (or of any selected session).

    "Earlier" is the lower pair id: across sessions, the pair stored first is kept, whichever session it is in
    and in whatever order the sessions are given.

    Finding the duplicates reads the sessions without holding the write lock (a temporary table holds
    the plan); the deletes then go in short transactions of about write_batches.TARGET_SECONDS, so
    the desktop app and the log writer never wait long, even for a million pairs. Each batch deletes
    a planned pair only if it and the pair it repeats are still there and still alike (an edit or a
    delete by someone else in between wins). A dedupe that dies part way has removed some of the
    duplicates, each batch whole: running it again removes the rest. `progress(done, total)` hears
    about every batch.
    """
    ids = session_id_list(session_ids, repeats=True, required=True)
    existing_sessions(ids)
    connection = connections["default"]
    with _planned(connection, ids, normalize=normalize, across_sessions=across_sessions) as cursor:
        cursor.execute(f"SELECT session_id, count(*) FROM {DOOMED_TABLE} GROUP BY session_id ORDER BY session_id")
        found = dict(cursor.fetchall())
        cursor.execute(f"SELECT kept, id FROM {DOOMED_TABLE} ORDER BY id LIMIT {EXAMPLES}")
        examples = [tuple(row) for row in cursor.fetchall()]
        if dry_run or not found:
            removed, changed = found, 0
        else:
            removed = _delete_planned(
                connection, ids, normalize=normalize, across_sessions=across_sessions, progress=progress
            )
            changed = sum(found.values()) - sum(removed.values())
            with transaction.atomic():
                # Recount rather than trust the adjustments: the sessions end up exact even if they had drifted.
                recount_pairs(found, using=connection.alias)
    per_session = {sid: removed.get(sid, 0) for sid in sorted(ids)}
    return DedupeResult(
        removed=sum(per_session.values()), per_session=per_session, dry_run=dry_run, examples=examples, changed=changed
    )


@contextlib.contextmanager
def _planned(connection, ids: list[int], *, normalize: bool, across_sessions: bool) -> Iterator:
    """A cursor with DOOMED_TABLE (id, session_id, kept) filled: every duplicate and the pair it repeats.

    Only reads the pairs (the temporary table is this connection's own), so it runs outside any write transaction.
    """
    placeholders = ", ".join(["%s"] * len(ids))
    key = key_sql(connection, normalize=normalize)
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {DOOMED_TABLE}")
        cursor.execute(
            f"CREATE TEMPORARY TABLE {DOOMED_TABLE} (id bigint PRIMARY KEY, session_id bigint NOT NULL, kept bigint)"
        )
        try:
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
            yield cursor
        finally:
            cursor.execute(f"DROP TABLE IF EXISTS {DOOMED_TABLE}")


def _delete_planned(
    connection, ids: list[int], *, normalize: bool, across_sessions: bool, progress: Callable[[int, int], None] | None
) -> dict[int, int]:
    """Delete the planned duplicates that still are duplicates, in short transactions; return how many per session."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {DOOMED_TABLE}")
        (total,) = cursor.fetchone()
    removed: Counter[int] = Counter()
    done = last = 0

    def delete(size: int) -> tuple[int, bool]:
        nonlocal done, last
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT id, kept FROM {DOOMED_TABLE} WHERE id > %s ORDER BY id LIMIT %s", [last, size])
            planned = cursor.fetchall()
            if not planned:
                return 0, False
            last = planned[-1][0]
            doomed = _still_duplicates(cursor, planned, ids, normalize=normalize, across_sessions=across_sessions)
            if doomed:
                cursor.execute(
                    f"DELETE FROM scraped_pairs WHERE id IN ({', '.join(['%s'] * len(doomed))})", list(doomed)
                )
                batch = Counter(doomed.values())
                adjust_pair_counts({sid: -count for sid, count in batch.items()}, using=connection.alias)
                removed.update(batch)
        done += len(planned)
        return len(planned), done < total

    if total:
        write_in_steps(
            delete,
            using=connection.alias,
            maximum=MAX_BATCH_IDS,
            committed=None if progress is None else lambda: progress(done, total),
        )
    return dict(removed)


def _still_duplicates(
    cursor, planned: list[tuple[int, int]], ids: list[int], *, normalize: bool, across_sessions: bool
) -> dict[int, int]:
    """{pair id: session id} of the planned pairs still repeating their kept pair, read in the delete's transaction."""
    wanted = sorted({pair_id for row in planned for pair_id in row})
    placeholders = ", ".join(["%s"] * len(wanted))
    cursor.execute(
        f"SELECT id, session_id, input_text, output_text FROM scraped_pairs WHERE id IN ({placeholders})", wanted
    )
    current = {pair_id: (session_id, texts) for pair_id, session_id, *texts in cursor.fetchall()}
    selected = set(ids)

    def key(texts: list) -> tuple:
        return tuple(normalized(text) for text in texts) if normalize else tuple(texts)

    doomed = {}
    for pair_id, kept_id in planned:
        pair, kept = current.get(pair_id), current.get(kept_id)
        if pair is None or kept is None or pair[0] not in selected or kept[0] not in selected:
            continue
        if (across_sessions or pair[0] == kept[0]) and key(pair[1]) == key(kept[1]):
            doomed[pair_id] = pair[0]
    return doomed
