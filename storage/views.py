"""The server's error page: a database that must not be opened, or is damaged, is named, not hidden behind a 500."""

from __future__ import annotations

import sys
from pathlib import Path

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string
from django.views import defaults

from storage.db.files import damaged_database_error


def server_error(request: HttpRequest) -> HttpResponse:
    error = damaged_database_error(sys.exc_info()[1], Path(settings.FINEFOUNDRY_DB))
    if error is not None:
        # Rendered without a request: no context processor runs, so nothing touches the database.
        return HttpResponse(render_to_string("storage/database_unavailable.html", {"error": str(error)}), status=503)
    return defaults.server_error(request)
