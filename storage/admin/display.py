"""Small HTML pieces the ModelAdmins share: pretty JSON, badges, sizes, text previews."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from django import forms
from django.utils.html import format_html
from django.utils.safestring import SafeString

from storage.redaction import redact
from storage.services.settings import secret_values

PREVIEW_CHARS = 100
# What is cut in SQL for a preview: past the shown characters, so a token or an address that the
# preview's end would split is still found whole by the scan and masked (pair_findings.masked_head).
PREVIEW_SCAN_CHARS = PREVIEW_CHARS + 256

STATUS_COLOURS = {
    "pending": "grey",
    "running": "blue",
    "completed": "green",
    "failed": "red",
    "cancelled": "amber",
}
LEVEL_COLOURS = {
    "DEBUG": "grey",
    "INFO": "blue",
    "WARNING": "amber",
    "ERROR": "red",
    "CRITICAL": "purple",
}


def badge(text: str | None, colour: str) -> SafeString:
    return format_html('<span class="ff-badge ff-badge-{}">{}</span>', colour, text or "—")


def status_badge(status: str | None) -> SafeString:
    return badge(status or "unknown", STATUS_COLOURS.get(status or "", "grey"))


def level_badge(level: str | None) -> SafeString:
    return badge(level, LEVEL_COLOURS.get(level or "", "grey"))


def pretty_json(value: Any) -> SafeString:
    """A JSON value as an indented, escaped <pre>; raw legacy text is shown as it is."""
    if value is None or value == {}:
        return format_html('<span class="ff-muted">{}</span>', "—")
    text = value if isinstance(value, str) else json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True)
    # Hyperparameters and metadata may hold a key an older desktop version wrote in plain text.
    return format_html('<pre class="ff-json">{}</pre>', redact(text, secrets=secret_values()))


def preview(text: str | None, *, limit: int = PREVIEW_CHARS) -> str:
    """One line of at most `limit` characters; `text` may already be cut short in SQL (PREVIEW_SCAN_CHARS)."""
    if not text:
        return ""
    line = " ".join(text.split())
    return line if len(line) <= limit and len(text) <= limit else line[:limit].rstrip() + "…"


# bool before int: True is an int too. Django's JSONField hands back strings as a str subclass.
JSON_KINDS = {list: "a list", str: "a string", bool: "true or false", int: "a number", float: "a number"}


class PrettyJSONField(forms.JSONField):
    """A JSON form field shown indented in a monospace textarea."""

    def __init__(
        self,
        *args: Any,
        rows: int = 12,
        object_only: bool = False,
        problem: Callable[[Any], str | None] | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("widget", forms.Textarea(attrs={"rows": rows, "class": "ff-code", "spellcheck": "false"}))
        super().__init__(*args, **kwargs)
        # Metadata is read back as a dict (storage.api): anything else would silently come back as {}.
        self.object_only = object_only
        # A service's rule for the value (e.g. what exports read from metadata): a sentence, or None when fine.
        self.problem = problem

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, forms.fields.InvalidJSONInput):
            return value
        # Empty rather than "null": an empty field reads back as None anyway.
        if value is None:
            return ""
        return json.dumps(value, indent=2, ensure_ascii=False, cls=self.encoder)

    def to_python(self, value: Any) -> Any:
        if isinstance(value, str) and value.strip():
            try:
                json.loads(value)
            except json.JSONDecodeError as exc:
                # Say where: a config is dozens of lines long.
                raise forms.ValidationError(
                    "Not valid JSON: %(problem)s (line %(line)s, column %(column)s).",
                    code="invalid",
                    params={"problem": exc.msg, "line": exc.lineno, "column": exc.colno},
                ) from exc
        value = super().to_python(value)
        if self.object_only and value is not None and not isinstance(value, dict):
            raise forms.ValidationError(
                'Must be a JSON object ({"key": value, …}), not %(kind)s.',
                code="not_an_object",
                params={"kind": next((kind for t, kind in JSON_KINDS.items() if isinstance(value, t)), "a value")},
            )
        if self.problem is not None and (problem := self.problem(value)):
            raise forms.ValidationError(
                "%(problem)s.", code="unusable", params={"problem": problem[0].upper() + problem[1:]}
            )
        return value
