"""`{{ text|redacted }}`: text from the database, with stored secrets and token-shaped strings masked.

For text Django's own templates show verbatim, such as the object names kept in the admin history
(`django_admin_log.object_repr`), which may have been written before a secret was known as one.
"""

from __future__ import annotations

from django import template

from storage.redaction import redact
from storage.services.settings import secret_values

register = template.Library()


@register.filter
def redacted(text) -> str:
    return redact(str(text or ""), secrets=secret_values())
