"""transfer_database: SQLite → PostgreSQL → SQLite keeps every export byte for byte; refusals write nothing."""

from __future__ import annotations

import hashlib
import sqlite3
import subprocess
import sys
from urllib.parse import urlsplit, urlunsplit

import pytest

from tests.conftest import child_database_url
from tests.helpers.desktop import load_desktop_fixture
from tests.helpers.processes import PROJECT_ROOT, child_env, manage

pytestmark = [pytest.mark.postgresql_only, pytest.mark.django_db]


@pytest.fixture
def scratch_postgres(django_db_setup):
    """A PostgreSQL database of the test's own, beside the test database, dropped afterwards."""
    import psycopg

    base = child_database_url()
    name = f"{urlsplit(base).path.lstrip('/')}_transfer"
    admin = psycopg.connect(base.replace("postgres://", "postgresql://", 1), autocommit=True)
    admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.execute(f'CREATE DATABASE "{name}"')
    yield urlunsplit(urlsplit(base)._replace(path="/" + name))
    admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.close()


def exports(db_file, *, url: str | None = None) -> dict[int, str]:
    """sha256 of `export_session --format json` of every session: of `db_file`, or of the PostgreSQL `url`."""
    env = {"DATABASE_URL": url} if url else {}
    code = (
        "from storage.models import ScrapeSession as S; print(*S.objects.order_by('id').values_list('id', flat=True))"
    )
    listed = manage(db_file, "shell", "-v", "0", "-c", code, env=env)
    assert listed.returncode == 0, listed.stderr
    digests = {}
    for session_id in listed.stdout.split():
        result = manage(db_file, "export_session", session_id, "--format", "json", "-o", "-", env=env)
        assert result.returncode == 0, result.stderr
        digests[int(session_id)] = hashlib.sha256(result.stdout.encode()).hexdigest()
    return digests


def transfer(source: str, target: str, *extra: str, cwd_db):
    return manage(cwd_db, "transfer_database", "--from", source, "--to", target, *extra)


@pytest.mark.parametrize("generation", ["v1", "current"])
def test_desktop_fixture_round_trips_with_identical_exports(tmp_path, scratch_postgres, generation):
    desktop = load_desktop_fixture(generation, tmp_path / "finefoundry.db")
    assert manage(desktop, "migrate", "--no-input").returncode == 0
    before = exports(desktop)
    assert before

    there = transfer(str(desktop), scratch_postgres, cwd_db=desktop)
    assert there.returncode == 0, there.stderr
    assert "Transferred and verified" in there.stdout
    back_file = tmp_path / "back" / "finefoundry.db"
    back_file.parent.mkdir()
    back = transfer(scratch_postgres, str(back_file), cwd_db=desktop)
    assert back.returncode == 0, back.stderr

    assert exports(desktop, url=scratch_postgres) == before
    assert exports(back_file) == before
    # Sequences were set: a new session on PostgreSQL gets the id after the largest copied one.
    source_max = sqlite3.connect(desktop).execute("SELECT max(id) FROM scrape_sessions").fetchone()[0]
    code = "from storage import api; print(api.create_scrape_session('x'))"
    created = manage(desktop, "shell", "-v", "0", "-c", code, env={"DATABASE_URL": scratch_postgres})
    assert created.returncode == 0, created.stderr
    assert int(created.stdout) == source_max + 1


def test_a_non_empty_target_is_refused_unless_replaced(tmp_path, scratch_postgres):
    desktop = load_desktop_fixture("current", tmp_path / "finefoundry.db")
    assert manage(desktop, "migrate", "--no-input").returncode == 0
    assert transfer(str(desktop), scratch_postgres, cwd_db=desktop).returncode == 0
    again = transfer(str(desktop), scratch_postgres, cwd_db=desktop)
    assert again.returncode != 0
    assert "the target is not empty" in again.stderr and "--replace" in again.stderr
    assert transfer(str(desktop), scratch_postgres, "--replace", cwd_db=desktop).returncode == 0


def test_a_replacing_transfer_empties_what_the_target_derived_from_its_old_pairs(tmp_path, scratch_postgres):
    desktop = load_desktop_fixture("current", tmp_path / "finefoundry.db")
    assert manage(desktop, "migrate", "--no-input").returncode == 0
    assert transfer(str(desktop), scratch_postgres, cwd_db=desktop).returncode == 0
    on_postgres = {"DATABASE_URL": scratch_postgres}
    for command in (("scan_pairs", "--all", "--store"), ("near_duplicates", "--all")):
        result = manage(desktop, *command, env=on_postgres)
        assert result.returncode == 0, result.stderr
    derived = ("storage_scans", "storage_pair_signatures")

    def counts() -> list[int]:
        import psycopg

        with psycopg.connect(scratch_postgres.replace("postgres://", "postgresql://", 1)) as target:
            return [target.execute(f"SELECT count(*) FROM {table}").fetchone()[0] for table in derived]

    assert all(counts())
    # The copied pairs may reuse ids that old findings and signatures name: those rows go with the old pairs.
    assert transfer(str(desktop), scratch_postgres, "--replace", cwd_db=desktop).returncode == 0
    assert counts() == [0, 0]


def test_values_postgresql_cannot_hold_are_reported_before_anything_is_written(tmp_path, scratch_postgres):
    desktop = load_desktop_fixture("current", tmp_path / "finefoundry.db")
    assert manage(desktop, "migrate", "--no-input").returncode == 0
    connection = sqlite3.connect(desktop)
    with connection:
        connection.execute(
            "UPDATE scraped_pairs SET output_text = ? WHERE id = (SELECT min(id) FROM scraped_pairs)", ("bad\x00byte",)
        )
        connection.execute(
            "UPDATE app_logs SET message = ? WHERE id = (SELECT max(id) FROM app_logs)", ("also\x00bad",)
        )
    connection.close()
    result = transfer(str(desktop), scratch_postgres, cwd_db=desktop)
    assert result.returncode != 0
    assert "scraped_pairs.output_text" in result.stderr and "NUL character" in result.stderr
    assert "app_logs.message" in result.stderr
    import psycopg

    with psycopg.connect(scratch_postgres.replace("postgres://", "postgresql://", 1)) as target:
        assert target.execute("SELECT count(*) FROM scraped_pairs").fetchone()[0] == 0


def test_migrate_on_postgresql_says_a_desktop_file_is_not_adopted(tmp_path, scratch_postgres):
    desktop = load_desktop_fixture("current", tmp_path / "finefoundry.db")
    before = desktop.read_bytes()
    result = manage(desktop, "migrate", "--no-input", env={"DATABASE_URL": scratch_postgres})
    assert result.returncode == 0, result.stderr
    assert f"FINEFOUNDRY_DB={desktop} is not adopted" in result.stdout
    assert "transfer_database --from" in result.stdout
    assert desktop.read_bytes() == before  # no backup, no adoption, not even opened
    assert not list(tmp_path.glob("finefoundry.backup-*"))


KILLED_PAIRS = 200_000  # two progress lines' worth (one every 100,000 rows): the kill lands mid-load


def postgres_schema(url: str) -> tuple[set, set]:
    """The target's indexes and constraints (what the load drops and rebuilds), by name and definition."""
    import psycopg

    with psycopg.connect(url.replace("postgres://", "postgresql://", 1)) as connection:
        indexes = set(connection.execute("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'"))
        constraints = set(
            connection.execute(
                "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint"
                " WHERE connamespace = 'public'::regnamespace"
            )
        )
    return indexes, constraints


def postgres_counts(url: str) -> tuple[int, int]:
    import psycopg

    with psycopg.connect(url.replace("postgres://", "postgresql://", 1)) as connection:
        return tuple(
            connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            for table in ("scrape_sessions", "scraped_pairs")
        )


def sqlite_state(path) -> tuple[set, tuple[int, int], str]:
    connection = sqlite3.connect(path)
    try:
        schema = set(connection.execute("SELECT type, name, sql FROM sqlite_master"))
        counts = tuple(
            connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            for table in ("scrape_sessions", "scraped_pairs")
        )
        return schema, counts, connection.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        connection.close()


def kill_mid_load(source: str, target: str, cwd_db) -> str:
    """Start transfer_database, kill it (SIGKILL) once it has read 100,000 pairs; return its output so far."""
    process = subprocess.Popen(
        [sys.executable, "manage.py", "transfer_database", "--from", source, "--to", target],
        cwd=PROJECT_ROOT,
        env=child_env(cwd_db, PYTHONUNBUFFERED="1"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    seen = []
    try:
        for line in process.stdout:
            seen.append(line)
            if f"scraped_pairs: 100,000 / {KILLED_PAIRS:,}" in line:
                break
    finally:
        process.kill()
        process.wait(timeout=60)
        process.stdout.close()
    output = "".join(seen)
    assert f"scraped_pairs: 100,000 / {KILLED_PAIRS:,}" in output, output
    assert "Transferred and verified" not in output
    return output


def test_a_transfer_killed_mid_load_leaves_the_target_as_it_was(tmp_path, scratch_postgres):
    """The load drops indexes and foreign keys, truncates and COPYs FREEZE on PostgreSQL, drops indexes on
    SQLite: all inside the one transaction, so a SIGKILL half way leaves the empty migrated target, schema
    intact, and the next transfer (no --replace) goes through."""
    source = tmp_path / "finefoundry.db"
    assert manage(source, "migrate", "--no-input").returncode == 0
    connection = sqlite3.connect(source)
    with connection:
        for session in (1, 2):
            connection.execute("INSERT INTO scrape_sessions (id, source) VALUES (?, 'killed')", (session,))
            connection.executemany(
                "INSERT INTO scraped_pairs (session_id, input_text, output_text) VALUES (?, ?, ?)",
                ((session, f"question {i}", f"answer {i}") for i in range(KILLED_PAIRS // 2)),
            )
    connection.close()

    # SQLite -> PostgreSQL, killed: the migrated target keeps every index and constraint and no row.
    assert manage(source, "migrate", "--no-input", env={"DATABASE_URL": scratch_postgres}).returncode == 0
    migrated = postgres_schema(scratch_postgres)
    assert any("idx_scraped_pairs_session" in name for name, _ in migrated[0])
    kill_mid_load(str(source), scratch_postgres, source)
    assert postgres_counts(scratch_postgres) == (0, 0)
    assert postgres_schema(scratch_postgres) == migrated
    again = transfer(str(source), scratch_postgres, cwd_db=source)
    assert again.returncode == 0, again.stderr
    assert postgres_counts(scratch_postgres) == (2, KILLED_PAIRS)
    assert postgres_schema(scratch_postgres) == migrated

    # PostgreSQL -> a new SQLite file, killed: the file is the migrated, empty, intact database.
    copy = tmp_path / "copy" / "finefoundry.db"
    copy.parent.mkdir()
    kill_mid_load(scratch_postgres, str(copy), source)
    reference = tmp_path / "reference" / "finefoundry.db"
    reference.parent.mkdir()
    assert manage(reference, "migrate", "--no-input").returncode == 0
    schema, counts, integrity = sqlite_state(copy)
    assert (schema, counts, integrity) == (sqlite_state(reference)[0], (0, 0), "ok")
    back = transfer(scratch_postgres, str(copy), cwd_db=source)
    assert back.returncode == 0, back.stderr
    assert sqlite_state(copy) == (schema, (2, KILLED_PAIRS), "ok")
