"""Error reports (Django's debug page with DJANGO_DEBUG=1, error e-mails) that never show a secret.

Django cleanses the variables and POST fields marked with `sensitive_variables` /
`sensitive_post_parameters` only when DEBUG is off, and never the exception's own text. Here:

- the filter is always active, so marked variables and fields are hidden with DEBUG on too;
- every POST field of a secret setting form, and every value typed into one, counts as a secret;
- the finished report is redacted with the stored secret values (every setting that
  `redaction.is_secret_setting` calls secret), the typed ones and token-shaped text, in the forms
  they take in HTML and in Python reprs.
"""

from __future__ import annotations

import html
import logging

from django.views.debug import ExceptionReporter, SafeExceptionReporterFilter

from storage.redaction import redact, usable_secrets

logger = logging.getLogger("finefoundry.error_reports")


class SecretsReporterFilter(SafeExceptionReporterFilter):
    def is_active(self, request) -> bool:
        # Django's own is active only with DEBUG off: exactly when nobody sees the debug page.
        return True


def typed_secrets(request) -> list[str]:
    """Values of the POST fields the view marked sensitive (a token being saved is not stored yet)."""
    if request is None:
        return []
    marked = getattr(request, "sensitive_post_parameters", None)
    post = getattr(request, "POST", None)
    if not marked or post is None:
        return []
    names = list(post) if marked == "__ALL__" else marked
    return [value for name in names for value in post.getlist(name)]


def stored_secrets() -> list[str]:
    """The stored secrets, or none when the database itself is what failed."""
    from storage.services.settings import secret_values

    try:
        return secret_values()
    except Exception as exc:  # a report must still be written when the database is the problem
        logger.warning("error report written without stored secret values: %r", exc)
        return []


def shown_forms(secrets: list[str]) -> list[str]:
    """A secret as written raw, HTML-escaped, and inside a Python repr (how a debug page shows it)."""
    forms = []
    for secret in usable_secrets(secrets):
        inner = repr(secret)[1:-1]
        forms += [secret, html.escape(secret), inner, html.escape(inner)]
    return forms


class RedactingExceptionReporter(ExceptionReporter):
    def _secrets(self) -> list[str]:
        return shown_forms([*stored_secrets(), *typed_secrets(self.request)])

    def get_traceback_html(self):
        return redact(str(super().get_traceback_html()), secrets=self._secrets())

    def get_traceback_text(self):
        return redact(str(super().get_traceback_text()), secrets=self._secrets())
