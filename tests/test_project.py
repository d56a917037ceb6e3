"""The project itself: SQLite set up for concurrency, the admin account, checks, shell_plus."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connection

from tests.helpers.processes import child_env

PROJECT_ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.sqlite_only("the SQLite connection's PRAGMAs")
@pytest.mark.django_db
def test_sqlite_connection_uses_wal_normal_sync_busy_timeout_and_foreign_keys():
    with connection.cursor() as cursor:
        assert cursor.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert cursor.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
        assert cursor.execute("PRAGMA busy_timeout").fetchone()[0] >= 5000
        assert cursor.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert connection.transaction_mode == "IMMEDIATE"


@pytest.mark.sqlite_only("the test database is a file only on SQLite (PostgreSQL: the test below)")
@pytest.mark.django_db
def test_tests_run_on_a_real_file_not_the_users_database(settings):
    name = Path(connection.settings_dict["NAME"])
    assert name.is_file()
    assert name != settings.FINEFOUNDRY_DB


@pytest.mark.postgresql_only
@pytest.mark.django_db
def test_tests_and_their_child_processes_use_the_test_database_not_the_one_database_url_names():
    import os

    name = connection.settings_dict["NAME"]
    assert name.startswith("test_")
    # What every child process inherits names the test database, not the user's.
    assert os.environ["DATABASE_URL"].endswith(f"/{name}")
    assert child_env()["DATABASE_URL"].endswith(f"/{name}")
    assert "DATABASE_URL" not in child_env(Path("/tmp/x.db"))


@pytest.mark.django_db
def test_ensure_admin_generates_a_password_printed_once(monkeypatch, capsys):
    monkeypatch.delenv("DJANGO_SUPERUSER_USERNAME", raising=False)
    monkeypatch.delenv("DJANGO_SUPERUSER_PASSWORD", raising=False)
    call_command("ensure_admin")
    out = capsys.readouterr().out
    password = out.split("password: ")[1].split()[0]
    user = get_user_model().objects.get(username="admin")
    assert user.is_superuser and user.is_staff
    assert user.check_password(password)
    assert len(password) >= 12
    call_command("ensure_admin")
    assert password not in capsys.readouterr().out
    assert get_user_model().objects.count() == 1


@pytest.mark.django_db
def test_ensure_admin_takes_credentials_from_the_environment(monkeypatch, capsys):
    monkeypatch.setenv("DJANGO_SUPERUSER_USERNAME", "curator")
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "a long passphrase 42")
    call_command("ensure_admin")
    assert "a long passphrase 42" not in capsys.readouterr().out
    assert get_user_model().objects.get(username="curator").check_password("a long passphrase 42")


def test_two_generated_installs_never_share_a_secret_key(tmp_path):
    from finefoundry.settings import load_or_create_secret_key

    first = load_or_create_secret_key(tmp_path / "a")
    assert load_or_create_secret_key(tmp_path / "a") == first
    assert load_or_create_secret_key(tmp_path / "b") != first
    assert oct((tmp_path / "a").stat().st_mode & 0o777) == "0o600"


def test_system_checks_are_clean():
    call_command("check", fail_level="WARNING")


def test_shell_plus_loads_the_storage_models(tmp_path):
    env = child_env(tmp_path / "x.db")
    result = subprocess.run(
        [sys.executable, "manage.py", "shell_plus", "--quiet-load", "-c", "print(ScrapedPair._meta.db_table)"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("scraped_pairs")


def test_pytest_never_points_at_the_users_database(settings):
    assert settings.FINEFOUNDRY_DB != PROJECT_ROOT / "finefoundry.db"


def test_tests_have_their_own_settings_and_production_keeps_the_real_hasher(settings, tmp_path):
    assert os.environ["DJANGO_SETTINGS_MODULE"] == "finefoundry.settings_test"
    assert settings.PASSWORD_HASHERS == ["django.contrib.auth.hashers.MD5PasswordHasher"]
    # What a user's `manage.py` gets: the production module, Django's default (slow, strong) hasher.
    env = {**os.environ, "FINEFOUNDRY_DB": str(tmp_path / "x.db"), "DJANGO_SETTINGS_MODULE": "finefoundry.settings"}
    result = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "shell",
            "-c",
            "from django.conf import settings; print(settings.PASSWORD_HASHERS[0])",
        ],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "django.contrib.auth.hashers.PBKDF2PasswordHasher"


def test_pair_count_is_written_only_by_its_owner():
    """Every writer adjusts scrape_sessions.pair_count through services/pair_counts.py, never by hand."""
    storage = Path(__file__).resolve().parent.parent / "storage"
    by_hand = re.compile(r"pair_count\s*=\s*(COALESCE|\(SELECT|F\()|update\(\s*pair_count\s*=")
    offenders = [
        str(path.relative_to(storage))
        for path in sorted(storage.rglob("*.py"))
        if "migrations" not in path.parts and path.name != "pair_counts.py" and by_hand.search(path.read_text())
    ]
    assert offenders == []
