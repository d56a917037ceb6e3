"""Scrape sessions and their pairs: creating, adding (the scrapers' hot path), reading, deleting."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from typing import Any

from django.conf import settings
from django.db import connection, transaction

from storage.exceptions import InvalidInput, NotFound
from storage.models import ImportInProgress, ScrapedPair, ScrapeSession
from storage.search import index as search_index
from storage.services.datasets import import_sessions
from storage.services.pair_counts import adjust_pair_counts
from storage.services.pair_insert import INSERT_PAIR_SQL as INSERT_PAIR_SQL  # where callers have found it
from storage.services.pair_insert import copy_pair_chunks, insert_pair_rows
from storage.validation import (
    LONE_SURROGATE,
    check_characters,
    optional_json_object,
    optional_text,
    require_int,
    require_text,
    to_json,
)

PAIR_CORE_KEYS = frozenset({"input", "output", "source_url"})
# PostgreSQL: pairs validated per chunk while the COPY stores the chunk before (add_scraped_pairs).
PAIR_CHUNK = 5_000


def max_text_chars() -> int:
    return getattr(settings, "FINEFOUNDRY_MAX_TEXT_CHARS", 1_000_000)


def create_scrape_session(
    *,
    source: str,
    source_details: str | None = None,
    dataset_format: str = ScrapeSession.DatasetFormat.STANDARD,
    metadata: dict | None = None,
    name: str | None = None,
) -> ScrapeSession:
    require_text(source, name="source")
    optional_text(source_details, name="source_details")
    require_text(dataset_format, name="dataset_format")
    optional_json_object(metadata, name="metadata")
    optional_text(name, name="name")
    return ScrapeSession.objects.create(
        source=source,
        source_details=source_details,
        dataset_format=dataset_format,
        # The desktop app stores NULL, not "{}", for no metadata.
        metadata=metadata or None,
        name=name,
    )


def check_pair_text(text: Any, *, side: str, limit: int | None = None) -> str:
    """Return `text` if it can be one side of a pair; else raise InvalidInput saying why."""
    limit = max_text_chars() if limit is None else limit
    if not isinstance(text, str):
        raise InvalidInput(f"'{side}' must be a string, not {type(text).__name__}")
    if len(text) > limit:
        raise InvalidInput(f"'{side}' is {len(text):,} characters; the limit is {limit:,}")
    return check_characters(text, name=f"'{side}'")


def _present(value: Any) -> bool:
    return value is not None and not (isinstance(value, str) and not value.strip())


def pair_row(session_id: int, pair: Any, *, position: int, limit: int) -> tuple | None:
    """Turn one incoming pair into an INSERT row; None when a side is missing (skipped)."""
    if not isinstance(pair, dict):
        raise InvalidInput(f"pair {position} must be a dict with 'input' and 'output', not {type(pair).__name__}")
    input_text = pair.get("input")
    output_text = pair.get("output")
    if not (_present(input_text) and _present(output_text)):
        return None
    for side, text in (("input", input_text), ("output", output_text)):
        try:
            check_pair_text(text, side=side, limit=limit)
        except InvalidInput as exc:
            raise InvalidInput(f"pair {position}: {exc}") from None
    source_url = pair.get("source_url")
    if source_url is not None and not isinstance(source_url, str):
        raise InvalidInput(f"pair {position}: 'source_url' must be a string, not {type(source_url).__name__}")
    if source_url is not None:
        check_characters(source_url, name=f"pair {position}: 'source_url'")
    extra = {key: value for key, value in pair.items() if key not in PAIR_CORE_KEYS}
    metadata_json = to_json(extra, name=f"pair {position} metadata") if extra else None
    return (session_id, input_text, output_text, source_url, metadata_json)


def pair_rows(session_id: int, pairs: Iterable[Any], *, limit: int, start: int = 0) -> list[tuple]:
    """Validate every pair and return the INSERT rows; raise InvalidInput on the first bad pair.

    The common pair (two non-blank strings, maybe a source_url, no extra keys) takes a short
    path: on the scrapers' hot path the checks would otherwise cost a fifth of the insert.
    Anything else goes through pair_row, which also words the error. `start` is the position of the
    first of `pairs` (errors name a pair by its position in the whole call).
    """
    rows = []
    append = rows.append
    for position, pair in enumerate(pairs, start):
        if type(pair) is dict:
            input_text = pair.get("input")
            output_text = pair.get("output")
            source_url = pair.get("source_url")
            if (
                type(input_text) is str
                and type(output_text) is str
                and (source_url is None or type(source_url) is str)
                and len(pair) == 2 + ("source_url" in pair)
                and len(input_text) <= limit
                and len(output_text) <= limit
                and input_text
                and output_text
                and not input_text.isspace()
                and not output_text.isspace()
                and "\x00" not in input_text
                and "\x00" not in output_text
                and (input_text.isascii() or not LONE_SURROGATE.search(input_text))
                and (output_text.isascii() or not LONE_SURROGATE.search(output_text))
                and (source_url is None or source_url.isascii())
            ):
                append((session_id, input_text, output_text, source_url, None))
                continue
        row = pair_row(session_id, pair, position=position, limit=limit)
        if row is not None:
            append(row)
    return rows


def _pair_chunks(session_id: int, pairs: Iterable[Any], *, limit: int) -> Iterator[list[tuple]]:
    """pair_rows of PAIR_CHUNK pairs at a time, in order (so the first bad pair is the one reported)."""
    pairs = iter(pairs)
    start = 0
    while chunk := list(itertools.islice(pairs, PAIR_CHUNK)):
        yield pair_rows(session_id, chunk, limit=limit, start=start)
        start += len(chunk)


def add_scraped_pairs(*, session_id: int, pairs: Iterable[dict]) -> int:
    """Add pairs to a session, all or nothing; pairs missing a side are skipped. Return how many were added.

    Extra keys of a pair become its metadata. One transaction holds one bulk insert
    (storage.services.pair_insert) and one pair_count update. On SQLite every pair is validated
    before the write (its write lock is held only for the insert). On PostgreSQL, which has no such
    lock, pairs of an existing session are validated a chunk at a time while the COPY stores the
    chunks before (the checks' time overlaps the server's): a bad pair raises the same error and
    aborts the COPY, and the rollback leaves nothing written. A session that does not exist takes
    the first path, so a bad pair is still reported before the missing session.
    """
    require_int(session_id, name="session_id", minimum=1)
    if isinstance(pairs, (str, bytes, dict)) or not isinstance(pairs, Iterable):
        raise InvalidInput(f"pairs must be a list of dicts, not {type(pairs).__name__}")
    if connection.vendor == "postgresql":
        with transaction.atomic():
            if ScrapeSession.objects.filter(pk=session_id).exists():
                added = copy_pair_chunks(_pair_chunks(session_id, pairs, limit=max_text_chars()))
                if added:
                    adjust_pair_counts({session_id: added})
                    search_index.after_pairs_added()
                return added
    rows = pair_rows(session_id, pairs, limit=max_text_chars())
    if not rows:
        # Nothing to add is 0 whatever the session, as in the desktop app (which only fails on an insert).
        return 0
    with transaction.atomic():
        if not ScrapeSession.objects.filter(pk=session_id).exists():
            raise NotFound(f"scrape session {session_id} does not exist")
        insert_pair_rows(rows)
        adjust_pair_counts({session_id: len(rows)})
        search_index.after_pairs_added()
    return len(rows)


def flatten_pair(input_text: str, output_text: str, source_url: str | None, metadata: Any) -> dict:
    """The desktop app's pair shape: input, output, source_url if set, metadata keys merged in."""
    pair: dict[str, Any] = {"input": input_text, "output": output_text}
    if source_url:
        pair["source_url"] = source_url
    if isinstance(metadata, dict):
        pair.update(metadata)
    return pair


def iter_pairs(*, session_id: int, limit: int | None = None, offset: int = 0, chunk_size: int = 2000) -> Iterator[dict]:
    """Yield a session's pairs in insertion order without loading them all at once."""
    require_int(session_id, name="session_id")
    limit = None if limit is None else require_int(limit, name="limit", minimum=0)
    offset = require_int(offset, name="offset", minimum=0)
    rows = (
        ScrapedPair.objects.filter(session_id=session_id)
        .order_by("id")
        .values_list("input_text", "output_text", "source_url", "metadata")
    )
    # limit=0 means "no limit", as in the desktop app.
    rows = rows[offset : offset + limit] if limit else rows[offset:]
    for row in rows.iterator(chunk_size=chunk_size):
        yield flatten_pair(*row)


def get_scrape_session(*, session_id: int) -> ScrapeSession | None:
    require_int(session_id, name="session_id")
    return ScrapeSession.objects.filter(pk=session_id).first()


def list_scrape_sessions(*, source: str | None = None, limit: int = 100, offset: int = 0) -> list[ScrapeSession]:
    """Sessions newest first; sessions created in the same second come back newest id first."""
    require_int(limit, name="limit", minimum=0)
    require_int(offset, name="offset", minimum=0)
    sessions = ScrapeSession.objects.all()
    if source:
        sessions = sessions.filter(source=source)
    return list(sessions[offset : offset + limit])


def delete_scrape_session(*, session_id: int) -> bool:
    """Delete a session and all its pairs; False if it did not exist (or is still being imported).

    One commit hides the session (import_sessions.hide_for_deletion), then its pairs are deleted in
    transactions of about write_batches.TARGET_SECONDS each, lowering pair_count with every batch,
    and the last one deletes the session: other writers never wait for the whole session. A delete
    that dies leaves the session hidden; the next delete of it, the next import or `doctor --fix`
    finishes it. Called inside a transaction (the admin's delete view), the batches run once it commits.
    """
    require_int(session_id, name="session_id")
    with transaction.atomic():
        exists = ScrapeSession.objects.filter(pk=session_id).exists()
        if exists:
            import_sessions.hide_for_deletion(session_id)
            transaction.on_commit(lambda: import_sessions.discard(session_id))
    return exists or _finish_abandoned_delete(session_id)


def _finish_abandoned_delete(session_id: int) -> bool:
    """Finish an earlier delete of this session that died half-way; False when there is none."""
    for abandoned in import_sessions.abandoned_imports():
        if abandoned.session_id == session_id and abandoned.state == ImportInProgress.State.DELETING:
            return import_sessions.recover(abandoned) is not None
    return False


def total_pair_count() -> int:
    return ScrapedPair.objects.count()


def random_inputs(*, session_id: int, count: int = 5) -> list[str]:
    """Up to `count` input texts of a session picked at random (for trying a model); [] when it has none."""
    require_int(session_id, name="session_id")
    require_int(count, name="count", minimum=0)
    return list(
        ScrapedPair.objects.filter(session_id=session_id).order_by("?").values_list("input_text", flat=True)[:count]
    )


def session_id_list(value: Any, *, repeats: bool, required: bool = False) -> list[int]:
    """The ids in the order given; a repeated id is dropped, or refused when `repeats` is False.

    The one check of every operation over several sessions (merge, dedupe, export); `required`
    refuses an empty list.
    """
    if isinstance(value, (str, bytes, dict)) or not hasattr(value, "__iter__"):
        raise InvalidInput(f"session_ids must be a list of session ids, not {type(value).__name__}")
    ids = [require_int(sid, name="session id", minimum=1) for sid in value]
    if required and not ids:
        raise InvalidInput("give at least one session id")
    repeated = sorted({sid for sid in ids if ids.count(sid) > 1})
    if repeated and not repeats:
        raise InvalidInput(f"session {', '.join(map(str, repeated))} given more than once")
    return list(dict.fromkeys(ids))


def existing_sessions(ids: list[int]) -> dict[int, ScrapeSession]:
    """The sessions by id; NotFound naming every id that does not exist."""
    sessions = ScrapeSession.objects.in_bulk(ids)
    missing = [sid for sid in ids if sid not in sessions]
    if len(missing) == 1:
        raise NotFound(f"scrape session {missing[0]} does not exist")
    if missing:
        raise NotFound(f"scrape sessions {', '.join(map(str, missing))} do not exist")
    return sessions
