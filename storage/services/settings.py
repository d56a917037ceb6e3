"""Application settings: a key/value store of JSON values."""

from __future__ import annotations

import json
from typing import Any

from django.db.models.functions import Now
from django.views.decorators.debug import sensitive_variables

from storage.exceptions import InvalidInput
from storage.models import Setting
from storage.redaction import is_secret_setting, secrets_from_setting_values
from storage.validation import require_text, to_json


def decode_setting_value(raw: str) -> Any:
    """Parse a stored value; text that is not JSON (old desktop versions) comes back as it is."""
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, TypeError):
        return raw


def get_setting(*, key: str, default: Any = None) -> Any:
    require_text(key, name="key")
    raw = Setting.objects.filter(key=key).values_list("value", flat=True).first()
    return default if raw is None else decode_setting_value(raw)


@sensitive_variables("value", "encoded")  # a token being saved: hidden in error reports
def set_setting(*, key: str, value: Any) -> None:
    """Store `value` as JSON under `key`, creating or replacing it."""
    require_text(key, name="key")
    # NaN and infinities are kept as Python's json writes them (the column is text), as the desktop app does.
    encoded = to_json(value, name=f"value of setting {key!r}", allow_nan=True)
    Setting.objects.update_or_create(key=key, defaults={"value": encoded, "updated_at": Now()})


def get_all_settings() -> dict[str, Any]:
    return {key: decode_setting_value(raw) for key, raw in Setting.objects.values_list("key", "value")}


def delete_setting(*, key: str) -> bool:
    require_text(key, name="key")
    deleted, _ = Setting.objects.filter(key=key).delete()
    return deleted > 0


# The desktop app's named settings and their keys.
HF_TOKEN_KEY = "huggingface.token"
RUNPOD_API_KEY_KEY = "runpod.api_key"
OLLAMA_KEY = "ollama"
PROXY_KEY = "proxy"


def get_secret_text(*, key: str) -> str:
    """A token-like setting as text; "" when unset or empty."""
    return get_setting(key=key, default="") or ""


def set_secret_text(*, key: str, value: str) -> None:
    """Store a token-like setting with surrounding whitespace removed (pasted tokens often carry some)."""
    if not isinstance(value, str):
        raise InvalidInput(f"the value of setting {key!r} must be a string, not {type(value).__name__}")
    set_setting(key=key, value=value.strip())


def get_config_section(*, key: str) -> dict:
    """A dict-valued setting (ollama, proxy); {} when unset or empty."""
    return get_setting(key=key, default={}) or {}


def set_config_section(*, key: str, config: dict) -> None:
    set_setting(key=key, value=config)


def secret_values() -> list[str]:
    """The stored values of every secret setting (see redaction.is_secret_setting), for redaction.

    Read on every call, never cached: the desktop app writes settings with plain sqlite3, so no
    signal would tell a cache that a token changed, and the table holds a handful of rows.
    """
    rows = Setting.objects.values_list("key", "value")
    return list(secrets_from_setting_values(raw for key, raw in rows if is_secret_setting(key)))


def masked_value(value: Any) -> str:
    """Show a secret as bullets plus at most its last four characters (none when it is short)."""
    text = value if isinstance(value, str) else "" if value is None else json.dumps(value)
    text = text.strip()
    if not text:
        return ""
    # A short value would be mostly given away by its last four characters.
    return f"••••{text[-4:]}" if len(text) >= 12 else "••••"
