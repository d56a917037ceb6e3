"""Checks for values coming in from callers, with messages that name the offending argument."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from django.utils import timezone
from django.utils.dateparse import parse_datetime

from storage.exceptions import InvalidInput


def require_text(value: Any, *, name: str, allow_empty: bool = False) -> str:
    """Return `value` if it is a usable string, else raise InvalidInput naming it."""
    if not isinstance(value, str):
        raise InvalidInput(f"{name} must be a string, not {type(value).__name__}")
    if not allow_empty and not value.strip():
        raise InvalidInput(f"{name} must not be empty")
    if "\x00" in value:
        raise InvalidInput(f"{name} contains a NUL character")
    return value


def optional_text(value: Any, *, name: str) -> str | None:
    if value is None:
        return None
    return require_text(value, name=name, allow_empty=True)


def require_int(value: Any, *, name: str, minimum: int | None = None) -> int:
    # bool is an int subclass; True as an id is always a bug.
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(f"{name} must be an integer, not {type(value).__name__}")
    if minimum is not None and value < minimum:
        raise InvalidInput(f"{name} must be at least {minimum}, got {value}")
    return value


def optional_int(value: Any, *, name: str, minimum: int | None = None) -> int | None:
    return None if value is None else require_int(value, name=name, minimum=minimum)


def to_json(value: Any, *, name: str, **dumps_options: Any) -> str:
    """Serialise `value` to JSON text or raise InvalidInput saying why it cannot be."""
    try:
        return json.dumps(value, ensure_ascii=False, **{"allow_nan": False, **dumps_options})
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"{name} is not JSON-serialisable: {exc}") from exc


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
