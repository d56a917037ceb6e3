"""Settings for the test suite: the production settings, plus what only tests want.

pytest-django loads this module (pyproject.toml), so production settings carry no test branch.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

if not os.environ.get("FINEFOUNDRY_DB"):
    # Set before the production settings read it: under pytest nothing may reach the user's database,
    # not even a log record emitted before pytest-django switches to the test database.
    os.environ["FINEFOUNDRY_DB"] = str(Path(tempfile.gettempdir()) / f"finefoundry-pytest-{os.getpid()}-unused.db")

from finefoundry.settings import *  # noqa: F403

# The real hasher takes a noticeable part of a second per user; tests make many users.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
