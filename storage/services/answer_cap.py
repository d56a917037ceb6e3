"""Keep at most N answers per prompt: pairs with the same normalised input beyond the first N (by id) go."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from django.db import connections

from storage.exceptions import InvalidInput
from storage.services.dedupe import normalized
from storage.services.near_duplicates import remove_pairs
from storage.services.sessions import existing_sessions, session_id_list
from storage.validation import require_int


@dataclass(frozen=True)
class AnswerCap:
    """Prompts with more than `max_answers` answers, and the pairs over the cap (deleted unless a dry run)."""

    prompts_over: int
    removed: list[int]
    per_session: dict[int, int] = field(default_factory=dict)
    dry_run: bool = False


def cap_answers_per_prompt(*, session_ids: list[int], max_answers: int, dry_run: bool = False) -> AnswerCap:
    """Across the given sessions, keep the first `max_answers` pairs (lowest ids) of each normalised input."""
    max_answers = require_int(max_answers, name="max_answers", minimum=1)
    ids = session_id_list(session_ids, repeats=False)
    if not ids:
        raise InvalidInput("give at least one session id")
    existing_sessions(ids)
    # Streamed in id order through the one normalisation (dedupe.normalized), on every engine alike.
    seen: dict[bytes, int] = {}
    over: list[tuple[int, int]] = []
    with connections["default"].chunked_cursor() as cursor:
        cursor.execute(
            f"SELECT id, session_id, input_text FROM scraped_pairs WHERE session_id IN ({', '.join(['%s'] * len(ids))})"
            " ORDER BY id",
            ids,
        )
        while rows := cursor.fetchmany(5000):
            for pair_id, session_id, input_text in rows:
                key = hashlib.blake2b(normalized(input_text).encode("utf-8", "surrogatepass"), digest_size=16).digest()
                seen[key] = seen.get(key, 0) + 1
                if seen[key] > max_answers:
                    over.append((pair_id, session_id))
    per_session: dict[int, int] = {}
    for _, session_id in over:
        per_session[session_id] = per_session.get(session_id, 0) + 1
    removed = [pair_id for pair_id, _ in over]
    if removed and not dry_run:
        per_session = remove_pairs(pair_ids=removed)
    prompts_over = sum(1 for count in seen.values() if count > max_answers)
    return AnswerCap(
        prompts_over=prompts_over, removed=removed, per_session=dict(sorted(per_session.items())), dry_run=dry_run
    )
