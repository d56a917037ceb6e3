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

from storage.exceptions import InvalidInput
from storage.models import ScrapeSession
from storage.search import index as search_index
from storage.services.pair_counts import recount_pairs
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
    """Copy the pairs of two or more sessions into a new session, in one transaction; return it."""
    ids = session_id_list(session_ids, repeats=False)
    if len(ids) < 2:
        raise InvalidInput(f"merging needs at least two sessions, got {len(ids)}")
    if mode not in MODES:
        raise InvalidInput(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    optional_text(name, name="name")
    with transaction.atomic():
        sessions = existing_sessions(ids)
        ordered = [sessions[sid] for sid in ids]
        formats = {session.dataset_format for session in ordered}
        merged = ScrapeSession.objects.create(
            source="merge",
            source_details=f"{mode} of sessions {', '.join(map(str, ids))}",
            dataset_format=formats.pop() if len(formats) == 1 else ScrapeSession.DatasetFormat.STANDARD,
            metadata={"merged_from": ids, "mode": mode},
            name=name if name and name.strip() else default_name(ordered),
        )
        with connections["default"].cursor() as cursor:
            if mode == "concatenate":
                copy_concatenated(cursor, merged.pk, ids)
            else:
                copy_interleaved(cursor, merged.pk, ids)
        recount_pairs([merged.pk])
        merged.refresh_from_db(fields=["pair_count"])
        # The copies are new pairs for the search index; index them without holding up the caller.
        search_index.index_in_background()
    return merged


def copy_concatenated(cursor, target_id: int, ids: list[int]) -> None:
    for source_id in ids:
        cursor.execute(
            f"INSERT INTO scraped_pairs (session_id, {COPY_COLUMNS})"
            f" SELECT %s, {COPY_COLUMNS} FROM scraped_pairs WHERE session_id = %s ORDER BY id",
            [target_id, source_id],
        )


def copy_interleaved(cursor, target_id: int, ids: list[int]) -> None:
    # Order the ids first (small rows sort fast), then copy the texts in that order.
    rank = "CASE session_id " + " ".join(["WHEN %s THEN %s"] * len(ids)) + " END"
    rank_params = [value for position, sid in enumerate(ids) for value in (sid, position)]
    placeholders = ", ".join(["%s"] * len(ids))
    cursor.execute(f"DROP TABLE IF EXISTS {ORDER_TABLE}")
    cursor.execute(f"CREATE TEMPORARY TABLE {ORDER_TABLE} (position integer PRIMARY KEY, pair_id bigint NOT NULL)")
    cursor.execute(
        f"INSERT INTO {ORDER_TABLE} (position, pair_id)"
        " SELECT row_number() OVER (ORDER BY turn, session_rank), id FROM ("
        "  SELECT id, row_number() OVER (PARTITION BY session_id ORDER BY id) AS turn,"
        f"  {rank} AS session_rank"
        f"  FROM scraped_pairs WHERE session_id IN ({placeholders})"
        ") ranked",
        [*rank_params, *ids],
    )
    copy_in_order(cursor, target_id)


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


def copy_in_order(cursor, target_id: int) -> None:
    """Copy the pairs listed in ORDER_TABLE into `target_id` in its order, then drop it."""
    cursor.execute(
        f"INSERT INTO scraped_pairs (session_id, {COPY_COLUMNS})"
        f" SELECT %s, {', '.join('p.' + c for c in COPY_COLUMNS.split(', '))}"
        f" FROM {ORDER_TABLE} o JOIN scraped_pairs p ON p.id = o.pair_id ORDER BY o.position",
        [target_id],
    )
    cursor.execute(f"DROP TABLE {ORDER_TABLE}")
