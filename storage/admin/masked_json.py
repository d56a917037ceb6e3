"""Editable JSON columns (session and pair metadata, configs) shown with their secrets masked.

A desktop version may have left a token in plain text inside a JSON document. The form shows the
document with stored secrets and token-shaped text replaced by [REDACTED]; saving it unchanged
keeps the stored document as it is, and saving an edit that still holds [REDACTED] is refused
(the masked text must not overwrite the secret).
"""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.db.models import JSONField

from storage.redaction import REDACTED, redact
from storage.services.settings import secret_values


def masked_document(value: Any, secrets: list[str]) -> Any | None:
    """`value` with its secrets masked, or None when it holds none (or masking breaks its JSON)."""
    text = json.dumps(value, ensure_ascii=False)
    shown = redact(text, secrets=secrets)
    if shown == text:
        return None
    try:
        return json.loads(shown)
    except json.JSONDecodeError:
        return {"masked": "this document holds a secret and cannot be shown here"}


class MaskedJSONForm(forms.ModelForm):
    """Mixed into an admin's form: JSON fields of the model show masked, and keep their secrets on save."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.masked: dict[str, tuple[Any, Any]] = {}
        if self.instance.pk is None:
            return
        secrets = secret_values()
        for field in self.instance._meta.concrete_fields:
            if isinstance(field, JSONField) and field.name in self.fields:
                stored = getattr(self.instance, field.name)
                shown = masked_document(stored, secrets)
                if shown is not None:
                    self.masked[field.name] = (stored, shown)
                    self.initial[field.name] = shown

    def _clean_fields(self) -> None:
        super()._clean_fields()
        for name, (stored, shown) in self.masked.items():
            if name not in self.cleaned_data:
                continue
            value = self.cleaned_data[name]
            if value == shown:
                self.cleaned_data[name] = stored
            elif REDACTED in json.dumps(value, ensure_ascii=False):
                self.add_error(
                    name,
                    f"Still holds {REDACTED} where a secret was: type the value, or remove it, before saving.",
                )
