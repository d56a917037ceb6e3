"""What a pair holds beyond its last exchange: a system prompt and the earlier turns of a conversation.

Imports keep them in metadata (records.py, importing.py), and exports write them back (formats.py):
- `system_prompt` (a non-blank string): a ChatML/ShareGPT system message, or an Alpaca
  instruction that came with a non-empty input. A prompt every record of an import shares is
  the session's metadata `system_prompt` instead; a pair's own wins over its session's, and an
  export's `--system-prompt` wins over both.
- `context` (a list of turns, each an object with `role`/`content` or `from`/`value` strings):
  the turns before the last user/assistant exchange.

Metadata that breaks these shapes (edited by hand, written by another program) is refused by the
admin's forms (`metadata_problem`); an export writes such a pair without the broken part and
counts it (`Conversations`), so an export never stops half-way over metadata.
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple

PROMPT_KEY = "system_prompt"
CONTEXT_KEY = "context"
# The keys of a turn, by shape: (role key, text key).
TURN_KEYS = {"chatml": ("role", "content"), "sharegpt": ("from", "value")}
# Quick test on the stored text before parsing it: most pairs have neither key.
PROMPT_MARKER, CONTEXT_MARKER = f'"{PROMPT_KEY}"', f'"{CONTEXT_KEY}"'


def may_hold_conversation(metadata_text: str | None) -> bool:
    """Whether a pair's stored metadata text can hold a system prompt or earlier turns (no parsing)."""
    return bool(metadata_text) and (PROMPT_MARKER in metadata_text or CONTEXT_MARKER in metadata_text)


class Conversation(NamedTuple):
    """The system prompt (None: none) and earlier turns as (role, text), as stored."""

    system_prompt: str | None
    context: tuple[tuple[str, str], ...] = ()


def _turn(turn: Any) -> tuple[str, str] | None:
    if isinstance(turn, dict):
        for role_key, text_key in TURN_KEYS.values():
            role, text = turn.get(role_key), turn.get(text_key)
            if isinstance(role, str) and isinstance(text, str):
                return role, text
    return None


def prompt_problem(value: Any) -> str | None:
    if isinstance(value, str) and value.strip():
        return None
    return f"metadata '{PROMPT_KEY}' must be a non-blank string"


def _context(value: Any) -> tuple[tuple[str, str], ...] | str:
    """The turns, or a sentence saying what is wrong."""
    if not isinstance(value, list):
        return f"metadata '{CONTEXT_KEY}' must be a list of turns"
    turns = []
    for index, item in enumerate(value):
        turn = _turn(item)
        if turn is None:
            return (
                f"metadata '{CONTEXT_KEY}[{index}]' must be an object with 'role' and 'content' "
                "(or 'from' and 'value') strings"
            )
        turns.append(turn)
    return tuple(turns)


def metadata_problem(metadata: Any, *, of_session: bool = False) -> str | None:
    """What makes a pair's (or a session's) metadata unusable by exports, or None (for forms)."""
    if not isinstance(metadata, dict):
        return None
    if PROMPT_KEY in metadata and (problem := prompt_problem(metadata[PROMPT_KEY])):
        return problem
    if CONTEXT_KEY in metadata and not of_session:
        context = _context(metadata[CONTEXT_KEY])
        if isinstance(context, str):
            return context
    return None


class Conversations:
    """Reads each pair's conversation from its stored metadata text while an export streams.

    The pair's own prompt wins over `default_prompt` (its session's); `forced_prompt` (the export's
    --system-prompt) wins over both. Unusable metadata is left out and counted: `ignored` times
    (pairs and sessions), the first described in `first_problem`.
    """

    def __init__(self, *, forced_prompt: str | None = None, with_context: bool = True):
        self.forced_prompt = forced_prompt
        self.with_context = with_context  # False for a format without earlier turns (alpaca)
        self.ignored = 0
        self.first_problem: str | None = None

    def _ignore(self, where: str, problem: str) -> None:
        self.ignored += 1
        if self.first_problem is None:
            self.first_problem = f"{where}: {problem}"

    def session_prompt(self, session_id: int, metadata: Any) -> str | None:
        """The prompt a session gives its pairs (None when the export forces one or it has none)."""
        if self.forced_prompt is not None or not isinstance(metadata, dict) or PROMPT_KEY not in metadata:
            return None
        value = metadata[PROMPT_KEY]
        if problem := prompt_problem(value):
            self._ignore(f"session {session_id}", problem)
            return None
        return value

    def of(self, pair_id: int, metadata_text: str | None, default_prompt: str | None) -> Conversation | None:
        """The pair's conversation, or None when it has nothing beyond what the export's renderer adds."""
        prompt = default_prompt
        context: tuple[tuple[str, str], ...] = ()
        if may_hold_conversation(metadata_text):
            try:
                metadata = json.loads(metadata_text)
            except ValueError:
                metadata = None
            if isinstance(metadata, dict):
                if PROMPT_KEY in metadata:
                    value = metadata[PROMPT_KEY]
                    if problem := prompt_problem(value):
                        self._ignore(f"pair {pair_id}", problem)
                    else:
                        prompt = value
                if CONTEXT_KEY in metadata and self.with_context:
                    turns = _context(metadata[CONTEXT_KEY])
                    if isinstance(turns, str):
                        self._ignore(f"pair {pair_id}", turns)
                    else:
                        context = turns
        if self.forced_prompt is not None:
            return Conversation(self.forced_prompt, context) if context else None
        if prompt is None and not context:
            return None
        return Conversation(prompt, context)
