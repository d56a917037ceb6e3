"""Turning one record of a dataset file into one pair, or saying exactly what is wrong with it.

Record shapes, named like the export formats that write them:
- standard (json, jsonl, csv): `input`, `output`, optional `source_url`; other keys become the
  pair's metadata.
- alpaca: `instruction`, `input` (may be empty) and `output`. With an empty input the
  instruction is the pair's input; otherwise `input` is, and the instruction is kept as the
  pair's system prompt (conversations.py), which the alpaca export writes back as `instruction`.
- chatml (`messages` of `role`/`content`) and sharegpt (`conversations` of `from`/`value`):
  an optional system message first, then turns ending with a user message and an assistant
  message, which become the pair. Earlier turns (FineFoundry's multi-turn ChatML) are kept in
  the pair's metadata as `context`, exactly as they were; the chat exports write them back.
Other keys (a record's, a turn's) are kept in metadata where they can be, and no export writes
them: `unwritten` names them, and the import says so.
Texts must be non-blank strings of at most max_text_chars() characters, without NUL characters
or unpaired surrogates.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from storage.exceptions import InvalidInput
from storage.services.datasets.conversations import TURN_KEYS
from storage.services.sessions import PAIR_CORE_KEYS, check_pair_text
from storage.validation import to_json

SHAPES = ("standard", "alpaca", "chatml", "sharegpt")
CHAT_KEYS = {
    # shape: (list key, role key, text key, user roles, assistant roles)
    "chatml": ("messages", *TURN_KEYS["chatml"], {"user"}, {"assistant"}),
    "sharegpt": ("conversations", *TURN_KEYS["sharegpt"], {"human", "user"}, {"gpt", "assistant"}),
}


class RecordError(ValueError):
    """One record is unusable; the message says why, the caller adds where."""


class ImportedPair(NamedTuple):
    input: str
    output: str
    source_url: str | None
    metadata: dict | None
    system_prompt: str | None
    # Keys of the record no export writes back (said at import): the record's own, and a turn's as "messages[].name".
    unwritten: tuple[str, ...] = ()


def json_type(value: Any) -> str:
    """The JSON name of a Python value's type, for messages."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    return {dict: "an object", list: "a list", str: "a string"}.get(type(value), type(value).__name__)


def detect_shape(record: Any) -> str:
    """The shape a record has by its keys; anything unrecognised is checked as standard."""
    if isinstance(record, dict):
        for key, shape in (("messages", "chatml"), ("conversations", "sharegpt"), ("instruction", "alpaca")):
            if key in record:
                return shape
    return "standard"


def check_text(value: Any, field: str, limit: int) -> str:
    if value is None:
        raise RecordError(f"'{field}' is null")
    if not isinstance(value, str):
        raise RecordError(f"'{field}' must be a string, not {json_type(value)}")
    if not value.strip():
        raise RecordError(f"'{field}' is empty")
    try:
        # The pair rule (inputs.check_characters) also refuses lone surrogates, which SQLite cannot store.
        check_pair_text(value, side=field, limit=limit)
    except InvalidInput as exc:
        raise RecordError(str(exc)) from None
    return value


def _object(record: Any) -> dict:
    if not isinstance(record, dict):
        raise RecordError(f"must be an object, not {json_type(record)}")
    return record


def _required(record: dict, key: str, shape: str) -> Any:
    if key not in record:
        found = ", ".join(map(repr, record)) or "none"
        raise RecordError(f"has no '{key}' (a {shape} record needs it; keys found: {found})")
    return record[key]


def _metadata(extra: dict) -> dict | None:
    if not extra:
        return None
    try:
        to_json(extra, name="the other keys")
    except ValueError as exc:
        raise RecordError(str(exc)) from None
    return extra


def standard_pair(record: Any, limit: int) -> ImportedPair:
    record = _object(record)
    input_text = check_text(_required(record, "input", "standard"), "input", limit)
    output_text = check_text(_required(record, "output", "standard"), "output", limit)
    source_url = record.get("source_url")
    if source_url is not None and not isinstance(source_url, str):
        raise RecordError(f"'source_url' must be a string, not {json_type(source_url)}")
    extra = {k: v for k, v in record.items() if k not in PAIR_CORE_KEYS}
    unwritten = tuple(k for k in record if k not in ("input", "output"))
    return ImportedPair(input_text, output_text, source_url or None, _metadata(extra), None, unwritten)


def alpaca_pair(record: Any, limit: int) -> ImportedPair:
    record = _object(record)
    instruction = check_text(_required(record, "instruction", "alpaca"), "instruction", limit)
    output_text = check_text(_required(record, "output", "alpaca"), "output", limit)
    given = record.get("input")
    if given is not None and not isinstance(given, str):
        raise RecordError(f"'input' must be a string, not {json_type(given)}")
    extra = _metadata({k: v for k, v in record.items() if k not in ("instruction", "input", "output")})
    unwritten = tuple(extra or ())
    if given and given.strip():
        return ImportedPair(check_text(given, "input", limit), output_text, None, extra, instruction, unwritten)
    return ImportedPair(instruction, output_text, None, extra, None, unwritten)


def chat_pair(record: Any, limit: int, *, shape: str) -> ImportedPair:
    list_key, role_key, text_key, user_roles, assistant_roles = CHAT_KEYS[shape]
    record = _object(record)
    turns = _required(record, list_key, shape)
    if not isinstance(turns, list):
        raise RecordError(f"'{list_key}' must be a list, not {json_type(turns)}")
    for index, turn in enumerate(turns):
        if not isinstance(turn, dict):
            raise RecordError(f"'{list_key}[{index}]' must be an object, not {json_type(turn)}")
        for key in (role_key, text_key):
            if not isinstance(turn.get(key), str):
                problem = "is missing" if key not in turn else f"must be a string, not {json_type(turn[key])}"
                raise RecordError(f"'{list_key}[{index}].{key}' {problem}")
    start = 0
    system_prompt = None
    if turns and turns[0][role_key] == "system":
        system_prompt = check_text(turns[0][text_key], f"{list_key}[0].{text_key}", limit)
        start = 1
    end = len(turns)
    if end - start < 2 or turns[-2][role_key] not in user_roles or turns[-1][role_key] not in assistant_roles:
        roles = [turn[role_key] for turn in turns]
        raise RecordError(
            f"'{list_key}' must end with a {'/'.join(sorted(user_roles))} turn followed by a"
            f" {'/'.join(sorted(assistant_roles))} turn; the roles are {roles}"
        )
    input_text = check_text(turns[-2][text_key], f"{list_key}[{end - 2}].{text_key}", limit)
    output_text = check_text(turns[-1][text_key], f"{list_key}[{end - 1}].{text_key}", limit)
    extra = {k: v for k, v in record.items() if k != list_key}
    unwritten = (
        *extra,
        *sorted({f"{list_key}[].{k}" for turn in turns for k in turn if k not in (role_key, text_key)}),
    )
    if end - start > 2:
        extra["context"] = turns[start : end - 2]
    return ImportedPair(input_text, output_text, None, _metadata(extra), system_prompt, unwritten)


def to_pair(record: Any, shape: str, limit: int) -> ImportedPair:
    """The pair a record of `shape` holds; raise RecordError saying what is wrong with it."""
    if shape == "standard":
        return standard_pair(record, limit)
    if shape == "alpaca":
        return alpaca_pair(record, limit)
    return chat_pair(record, limit, shape=shape)
