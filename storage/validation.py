"""Checks for values coming in from callers, with messages that name the offending argument."""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

from django.utils import timezone
from django.utils.dateparse import parse_datetime

from storage.exceptions import InvalidInput

# SQLite's INTEGER is 64-bit signed: a larger id, limit or offset cannot even be sent to it.
MAX_INTEGER = 2**63 - 1
# Far deeper than any real metadata, hyperparameters or config, and well below the depth at which
# json.dumps / json.loads hit Python's recursion limit (about 1,000, less inside a deep call stack).
MAX_JSON_DEPTH = 100
# A Python str may hold surrogate code points; UTF-8 (and so SQLite) cannot.
LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def check_characters(text: str, *, name: str) -> str:
    """Refuse text SQLite cannot store as given: NUL characters and lone surrogates (not UTF-8)."""
    if "\x00" in text:
        raise InvalidInput(f"{name} contains a NUL character")
    if not text.isascii() and (surrogate := LONE_SURROGATE.search(text)):
        raise InvalidInput(f"{name} contains a lone surrogate (U+{ord(surrogate[0]):04X})")
    return text


def require_text(value: Any, *, name: str, allow_empty: bool = False) -> str:
    """Return `value` if it is a usable string, else raise InvalidInput naming it."""
    if not isinstance(value, str):
        raise InvalidInput(f"{name} must be a string, not {type(value).__name__}")
    if not allow_empty and not value.strip():
        raise InvalidInput(f"{name} must not be empty")
    return check_characters(value, name=name)


def optional_text(value: Any, *, name: str) -> str | None:
    if value is None:
        return None
    return require_text(value, name=name, allow_empty=True)


def require_int(value: Any, *, name: str, minimum: int | None = None, maximum: int = MAX_INTEGER) -> int:
    # bool is an int subclass; True as an id is always a bug.
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(f"{name} must be an integer, not {type(value).__name__}")
    if minimum is not None and value < minimum:
        raise InvalidInput(f"{name} must be at least {minimum}, got {_short(value)}")
    if value > maximum:
        raise InvalidInput(f"{name} must be at most {maximum}, got {_short(value)}")
    return value


def _short(value: int) -> str:
    # str() of an int over 4,300 digits raises ValueError; a message never needs that many.
    return str(value) if value.bit_length() < 256 else f"a number of {value.bit_length()} bits"


def optional_int(value: Any, *, name: str, minimum: int | None = None, maximum: int = MAX_INTEGER) -> int | None:
    return None if value is None else require_int(value, name=name, minimum=minimum, maximum=maximum)


def check_json_depth(value: Any, *, name: str) -> None:
    """Refuse containers nested deeper than MAX_JSON_DEPTH (walked without recursion)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, (list, tuple)):
            children = item
        else:
            continue
        if depth > MAX_JSON_DEPTH:
            raise InvalidInput(f"{name} is nested more than {MAX_JSON_DEPTH} levels deep")
        stack.extend((child, depth + 1) for child in children)


def to_json(value: Any, *, name: str, **dumps_options: Any) -> str:
    """Serialise `value` to JSON text or raise InvalidInput saying why it cannot be."""
    check_json_depth(value, name=name)
    try:
        text = json.dumps(value, ensure_ascii=False, **{"allow_nan": False, **dumps_options})
    except (TypeError, ValueError, RecursionError) as exc:
        raise InvalidInput(f"{name} is not JSON-serialisable: {exc}") from exc
    return check_characters(text, name=name)


def require_json_object(value: Any, *, name: str) -> dict:
    """Return `value` if it is a dict that survives a JSON round trip."""
    if not isinstance(value, dict):
        raise InvalidInput(f"{name} must be a dict, not {type(value).__name__}")
    to_json(value, name=name)
    return value


def optional_json_object(value: Any, *, name: str) -> dict | None:
    return None if value is None else require_json_object(value, name=name)


def parse_timestamp(value: Any, *, name: str) -> dt.datetime | None:
    """Accept a datetime or an ISO-8601 string; naive values are taken as UTC."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            parsed = parse_datetime(value.strip())
        except ValueError:
            parsed = None
        if parsed is None:
            raise InvalidInput(f"{name} must be an ISO-8601 date and time, got {value!r}")
        value = parsed
    if not isinstance(value, dt.datetime):
        raise InvalidInput(f"{name} must be a datetime or ISO-8601 string, not {type(value).__name__}")
    if timezone.is_naive(value):
        value = timezone.make_aware(value, dt.UTC)
    return value
