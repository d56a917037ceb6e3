"""Merge scrape sessions into a new session with INSERT ... SELECT, leaving the sources as they are.

- concatenate: the sessions in the order given, each session's pairs in their order (by id).
- interleave: round robin, the first pair of every session (in the order given), then the
  second of every session, and so on; a session that runs out is skipped from then on.
The new session records where it came from: source "merge" and metadata
{"merged_from": [ids], "mode": mode}.
"""

from __future__ import annotations

import datetime as dt

from django.db import connections, transaction
from django.utils import timezone

from storage.db.write_batches import write_in_short_transactions
from storage.exceptions import InvalidInput
from storage.models import ScrapedPair, ScrapeSession
from storage.search import index as search_index
from storage.services.datasets import import_sessions
from storage.services.pair_counts import adjust_pair_counts, recount_pairs
from storage.services.sessions import existing_sessions, session_id_list
from storage.validation import optional_text

MODES = ("concatenate", "interleave")
ORDER_TABLE = "merge_pair_order"
COPY_COLUMNS = "input_text, output_text, source_url, metadata_json"
MAX_NAME_CHARS = 200
COPY_BATCH = 10_000


def default_name(sessions: list[ScrapeSession]) -> str:
    name = "Merge of " + " + ".join(session.label for session in sessions)
    return name if len(name) <= MAX_NAME_CHARS else name[: MAX_NAME_CHARS - 1] + "…"


def unique_name(*, session_ids: list[int], now: dt.datetime | None = None) -> str:
    """A name no session has yet, saying what was merged and when: "Merge of 3, 7 (2026-12-01 13:05)"."""
    stamp = timezone.localtime(now or timezone.now()).strftime("%Y-%m-%d %H:%M")
    base = f"Merge of {', '.join(map(str, session_ids))}"
    if len(base) > MAX_NAME_CHARS - 40:
        base = base[: MAX_NAME_CHARS - 41] + "…"
    name = f"{base} ({stamp})"
    taken = set(ScrapeSession.all_objects.filter(name__startswith=name).values_list("name", flat=True))
    number = 2
    candidate = name
    while candidate in taken:
        candidate, number = f"{name} #{number}", number + 1
    return candidate


def merge_sessions(*, session_ids: list[int], mode: str = "concatenate", name: str | None = None) -> ScrapeSession:
    """Copy the pairs of two or more sessions into a new session; return it.

    Up to import_sessions.ATOMIC_MOVE_ROWS pairs are copied in one transaction. A bigger merge
    writes into a session hidden as an import is (storage.services.datasets.import_sessions), in
    short transactions, and shows it whole with its last commit: the desktop app keeps writing
    meanwhile, and a merge that dies leaves nothing visible; the next import or merge, or
    `doctor --fix`, removes what it wrote.
    """
    ids = session_id_list(session_ids, repeats=False)
    if len(ids) < 2:
        raise InvalidInput(f"merging needs at least two sessions, got {len(ids)}")
    if mode not in MODES:
        raise InvalidInput(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    optional_text(name, name="name")
    sessions = existing_sessions(ids)
    ordered = [sessions[sid] for sid in ids]
    formats = {session.dataset_format for session in ordered}
    fields = {
        "source": "merge",
        "source_details": f"{mode} of sessions {', '.join(map(str, ids))}",
        "dataset_format": formats.pop() if len(formats) == 1 else ScrapeSession.DatasetFormat.STANDARD,
        "metadata": {"merged_from": ids, "mode": mode},
        "name": name if name and name.strip() else default_name(ordered),
    }
    if ScrapedPair.objects.filter(session_id__in=ids).count() <= import_sessions.ATOMIC_MOVE_ROWS:
        with transaction.atomic():
            existing_sessions(ids)  # none went since we looked
            merged = ScrapeSession.objects.create(**fields)
            with connections["default"].cursor() as cursor:
                fill_order(cursor, ids, mode)
                copy_in_order(cursor, merged.pk)
            recount_pairs([merged.pk])
    else:
        merged = _merge_in_batches(ids, mode, fields)
    merged.refresh_from_db(fields=["pair_count"])
    # The copies are new pairs for the search index; index them without holding up the caller.
    search_index.index_in_background()
    return merged


def _merge_in_batches(ids: list[int], mode: str, fields: dict) -> ScrapeSession:
    import_sessions.recover_abandoned_imports()
    hidden = import_sessions.begin(
        session=lambda: ScrapeSession.objects.create(**fields),
        path=import_sessions.MERGE_PATH_PREFIX + ", ".join(map(str, ids)),
        target_session_id=None,
    )
    connection = connections["default"]
    try:
        with connection.cursor() as cursor:
            # The order of every pair, read in one statement (no write lock: the table is this connection's own).
            fill_order(cursor, ids, mode)
            cursor.execute(f"SELECT count(*) FROM {ORDER_TABLE}")
            (total,) = cursor.fetchone()

        def copy(positions: range) -> None:
            with connection.cursor() as cursor:
                copied = copy_in_order(cursor, hidden.pk, after=positions.start, up_to=positions.stop)
                adjust_pair_counts({hidden.pk: copied})
                import_sessions.heartbeat(cursor, hidden.pk)

        write_in_short_transactions(range(total), copy)
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS {ORDER_TABLE}")
        import_sessions.publish(hidden.pk)
    except Exception:
        import_sessions.discard(hidden.pk)
        raise
    return hidden


def fill_order(cursor, ids: list[int], mode: str) -> None:
    """ORDER_TABLE (position from 1, pair_id): the pairs of sessions `ids` in the order the merge copies them."""
    rank = "CASE session_id " + " ".join(["WHEN %s THEN %s"] * len(ids)) + " END"
    rank_params = [value for position, sid in enumerate(ids) for value in (sid, position)]
    placeholders = ", ".join(["%s"] * len(ids))
    order = "session_rank, id" if mode == "concatenate" else "turn, session_rank"
    turn = "row_number() OVER (PARTITION BY session_id ORDER BY id)" if mode == "interleave" else "0"
    cursor.execute(f"DROP TABLE IF EXISTS {ORDER_TABLE}")
    cursor.execute(f"CREATE TEMPORARY TABLE {ORDER_TABLE} (position integer PRIMARY KEY, pair_id bigint NOT NULL)")
    # Order the ids first (small rows sort fast), then copy the texts in that order.
    cursor.execute(
        f"INSERT INTO {ORDER_TABLE} (position, pair_id)"
        f" SELECT row_number() OVER (ORDER BY {order}), id FROM ("
        f"  SELECT id, {turn} AS turn, {rank} AS session_rank"
        f"  FROM scraped_pairs WHERE session_id IN ({placeholders})"
        ") ranked",
        [*rank_params, *ids],
    )


def copy_pairs_by_id(cursor, target_id: int, pair_ids: list[int]) -> None:
    """Copy the pairs `pair_ids` into session `target_id`, in that order, and set its pair_count."""
    cursor.execute(f"DROP TABLE IF EXISTS {ORDER_TABLE}")
    cursor.execute(f"CREATE TEMPORARY TABLE {ORDER_TABLE} (position integer PRIMARY KEY, pair_id bigint NOT NULL)")
    for start in range(0, len(pair_ids), COPY_BATCH):
        batch = pair_ids[start : start + COPY_BATCH]
        cursor.executemany(
            f"INSERT INTO {ORDER_TABLE} (position, pair_id) VALUES (%s, %s)",
            [(start + offset, pair_id) for offset, pair_id in enumerate(batch)],
        )
    copy_in_order(cursor, target_id)
    recount_pairs([target_id])


def copy_in_order(cursor, target_id: int, *, after: int = 0, up_to: int | None = None) -> int:
    """Copy the pairs listed in ORDER_TABLE (those at positions after..up_to, or all) into `target_id` in its order.

    Return how many were copied (a pair deleted since ORDER_TABLE was filled is skipped). Copying all drops the table.
    """
    columns = ", ".join("p." + c for c in COPY_COLUMNS.split(", "))
    window, params = ("", []) if up_to is None else (" WHERE o.position > %s AND o.position <= %s", [after, up_to])
    cursor.execute(
        f"INSERT INTO scraped_pairs (session_id, {COPY_COLUMNS}) SELECT %s, {columns}"
        f" FROM {ORDER_TABLE} o JOIN scraped_pairs p ON p.id = o.pair_id{window} ORDER BY o.position",
        [target_id, *params],
    )
    copied = cursor.rowcount
    if up_to is None:
        cursor.execute(f"DROP TABLE {ORDER_TABLE}")
    return copied
