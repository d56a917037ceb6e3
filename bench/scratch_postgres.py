"""A scratch PostgreSQL database for bench scripts: created beside the URL's, migrated, dropped."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

from bench.scratch_django import ROOT


def with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path="/" + name))


def conninfo(url: str) -> str:
    """psycopg accepts postgres:// URLs, except the `postgresql+driver` spellings Django's parser allows."""
    return url.replace("postgres://", "postgresql://", 1)


def drop_database(admin, name: str) -> None:
    """DROP DATABASE, ending our own leftover connections to it.

    WITH (FORCE) refuses when an autovacuum worker is in the database (a superuser process, which a
    plain role may not signal); plain DROP DATABASE then asks autovacuum to leave and waits for it.
    """
    import psycopg

    try:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    except psycopg.errors.InsufficientPrivilege:
        for attempt in range(10):
            try:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
                return
            except psycopg.errors.ObjectInUse:
                if attempt == 9:
                    raise
                time.sleep(1)


@contextlib.contextmanager
def scratch_database(url: str, name: str, *, migrate: bool = True) -> Iterator[str]:
    """Yield the URL of a new database `name` (migrated), dropping it afterwards."""
    import psycopg

    admin = psycopg.connect(conninfo(url), autocommit=True)
    try:
        drop_database(admin, name)
        admin.execute(f'CREATE DATABASE "{name}"')
        scratch = with_database(url, name)
        if migrate:
            env = {**os.environ, "DATABASE_URL": scratch}
            subprocess.run(
                [sys.executable, "manage.py", "migrate", "--no-input", "-v", "0"], cwd=ROOT, env=env, check=True
            )
        yield scratch
    finally:
        drop_database(admin, name)
        admin.close()
