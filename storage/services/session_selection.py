"""Checking a list of session ids that an operation over several sessions (dedupe, merge) was given."""

from __future__ import annotations

from typing import Any

from storage.exceptions import InvalidInput, NotFound
from storage.models import ScrapeSession
from storage.services.inputs import require_int


def session_id_list(value: Any, *, repeats: bool) -> list[int]:
    """The ids in the order given; a repeated id is dropped, or refused when `repeats` is False."""
    if isinstance(value, (str, bytes, dict)) or not hasattr(value, "__iter__"):
        raise InvalidInput(f"session_ids must be a list of session ids, not {type(value).__name__}")
    ids = [require_int(sid, name="session id", minimum=1) for sid in value]
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
