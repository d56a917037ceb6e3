"""The desktop app's databases (tests/fixtures, copies of ../shared/fixtures), written to a file."""

from __future__ import annotations

import sqlite3
from pathlib import Path

# Copies of the two desktop databases in ../shared/fixtures, so a clone anywhere can run the suite.
FIXTURES_DIR = Path(__file__).resolve().parent.parent / "fixtures"


DESKTOP_FIXTURES = {"v1": FIXTURES_DIR / "desktop-v1.sql", "current": FIXTURES_DIR / "desktop-current.sql"}


def load_desktop_fixture(generation: str, path: Path) -> Path:
    """Write one of the desktop databases (tests/fixtures, from ../shared/fixtures) to `path`."""
    connection = sqlite3.connect(path)
    try:
        connection.executescript(DESKTOP_FIXTURES[generation].read_text(encoding="utf-8"))
        connection.commit()
    finally:
        connection.close()
    return path
