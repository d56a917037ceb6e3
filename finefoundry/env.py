"""Numbers read from the environment: one rule for Django's settings and gunicorn's."""

from __future__ import annotations

import os

from django.core.exceptions import ImproperlyConfigured


def env_int(name: str, default: int, *, minimum: int = 0) -> int:
    """A whole-number variable; a bad value stops the process with an error that names the variable."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, not {raw!r}") from None
    if value < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, not {value}")
    return value
