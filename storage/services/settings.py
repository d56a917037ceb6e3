"""Application settings: a key/value store of JSON values."""

from __future__ import annotations

import json
from typing import Any

from django.db.models.functions import Now
from django.views.decorators.debug import sensitive_variables

from storage.models import Setting
from storage.redaction import is_secret_setting, secrets_from_setting_values
from storage.services.inputs import require_text, to_json


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
    encoded = to_json(value, name=f"value of setting {key!r}")
    Setting.objects.update_or_create(key=key, defaults={"value": encoded, "updated_at": Now()})


def get_all_settings() -> dict[str, Any]:
    return {key: decode_setting_value(raw) for key, raw in Setting.objects.values_list("key", "value")}


def delete_setting(*, key: str) -> bool:
    require_text(key, name="key")
    deleted, _ = Setting.objects.filter(key=key).delete()
    return deleted > 0


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
