"""The server's error page: a database that must not be opened, or is damaged, is named, not hidden behind a 500."""

from __future__ import annotations

import sys
from pathlib import Path

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils.html import escape
from django.views import defaults

from storage.db.files import damaged_database_error


def server_error(request: HttpRequest) -> HttpResponse:
    error = damaged_database_error(sys.exc_info()[1], Path(settings.FINEFOUNDRY_DB))
    if error is not None:
        return HttpResponse(
            "<!doctype html><title>Database unavailable</title>"
            f"<h1>FineFoundry Storage cannot open its database</h1><p>{escape(str(error))}</p>",
            status=503,
        )
    return defaults.server_error(request)
