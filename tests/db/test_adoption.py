"""Adopting a desktop finefoundry.db with `manage.py migrate`, and the desktop app's SQL afterwards.

These run the real command in a subprocess against database files in temp dirs.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from storage.db.schema import DESKTOP_TABLE_NAMES
from tests.helpers.desktop import DESKTOP_FIXTURES, load_desktop_fixture
from tests.helpers.processes import PROJECT_ROOT, child_env, manage

pytestmark = pytest.mark.sqlite_only("adopting a desktop SQLite file")


def dump_tables(db: Path) -> dict[str, list[tuple]]:
    connection = sqlite3.connect(db)
    try:
        return {
            table: connection.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall()
            for (table,) in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")
            if table in DESKTOP_TABLE_NAMES
        }
    finally:
        connection.close()


def columns(db: Path, table: str) -> list[tuple]:
    connection = sqlite3.connect(db)
    try:
        # name, declared type, notnull, default, pk
        return [row[1:] for row in connection.execute(f"PRAGMA table_info({table})")]
    finally:
        connection.close()


def test_adoption_keeps_every_row_and_value(desktop_db):
    before = dump_tables(desktop_db)
    result = manage(desktop_db, "migrate", "--no-input")
    assert result.returncode == 0, result.stderr
    after = dump_tables(desktop_db)
    for table, rows in before.items():
        # v1 gains scrape_sessions.name (NULL); every old column keeps its value.
        assert [row[: len(rows[0])] for row in after[table]] == rows if rows else after[table] == []
    if "evaluation_runs" not in before:
        assert after["evaluation_runs"] == []


def test_adoption_backs_up_first_and_says_where(desktop_db):
    original = dump_tables(desktop_db)
    result = manage(desktop_db, "migrate", "--no-input")
    assert result.returncode == 0, result.stderr
    backups = list(desktop_db.parent.glob("finefoundry.backup-*.db"))
    assert len(backups) == 1
    assert str(backups[0]) in result.stdout
    assert dump_tables(backups[0]) == original


def test_adoption_brings_both_generations_to_the_same_schema(tmp_path):
    adopted = {}
    for generation in DESKTOP_FIXTURES:
        db = load_desktop_fixture(generation, tmp_path / f"{generation}.db")
        assert manage(db, "migrate", "--no-input").returncode == 0
        adopted[generation] = {table: columns(db, table) for table in DESKTOP_TABLE_NAMES}
    fresh = tmp_path / "fresh.db"
    assert manage(fresh, "migrate", "--no-input").returncode == 0
    fresh_columns = {table: columns(fresh, table) for table in DESKTOP_TABLE_NAMES}
    # A fresh database has FineFoundry's init_db() NOT NULL on storage_path; adopted tables keep their own DDL.
    assert ("storage_path", "TEXT", 1, None, 0) in fresh_columns["training_runs"]
    fresh_columns["training_runs"] = [
        (name, kind, 0, default, pk) if name == "storage_path" else (name, kind, notnull, default, pk)
        for name, kind, notnull, default, pk in fresh_columns["training_runs"]
    ]
    assert adopted["v1"] == adopted["current"] == fresh_columns


def test_legacy_index_names_exist_after_adoption(desktop_db):
    manage(desktop_db, "migrate", "--no-input")
    connection = sqlite3.connect(desktop_db)
    names = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    connection.close()
    assert {
        "idx_scraped_pairs_session",
        "idx_app_logs_timestamp",
        "idx_app_logs_level",
        "idx_training_configs_target",
        "idx_training_runs_status",
        "idx_evaluation_runs_training",
        "idx_evaluation_runs_benchmark",
    } <= names


def test_pair_count_drift_is_repaired_on_adoption(desktop_db):
    connection = sqlite3.connect(desktop_db)
    connection.execute("UPDATE scrape_sessions SET pair_count = 3 WHERE id = 2")
    connection.execute("UPDATE scrape_sessions SET pair_count = NULL WHERE id = 3")
    connection.commit()
    connection.close()
    result = manage(desktop_db, "migrate", "--no-input")
    assert "pair_count repaired on 2 sessions" in result.stdout
    connection = sqlite3.connect(desktop_db)
    assert connection.execute("SELECT id, pair_count FROM scrape_sessions ORDER BY id").fetchall() == [
        (1, 12),
        (2, 12),
        (3, 12),
        (4, 12),
    ]
    connection.close()


def test_second_migrate_is_a_no_op(desktop_db):
    manage(desktop_db, "migrate", "--no-input")
    snapshot = dump_tables(desktop_db)
    result = manage(desktop_db, "migrate", "--no-input")
    assert result.returncode == 0
    assert "No migrations to apply" in result.stdout
    assert "backup" not in result.stdout
    assert len(list(desktop_db.parent.glob("finefoundry.backup-*"))) == 1
    assert dump_tables(desktop_db) == snapshot


def desktop_session(connection: sqlite3.Connection) -> None:
    """What FineFoundry's db module does, statement for statement (it enables foreign keys)."""
    connection.execute("PRAGMA foreign_keys = ON")
    cur = connection.execute(
        "INSERT INTO scrape_sessions (source, source_details, dataset_format, metadata_json) VALUES (?, ?, ?, ?)",
        ("reddit", "r/x", "standard", '{"a": 1}'),
    )
    session_id = cur.lastrowid
    connection.executemany(
        "INSERT INTO scraped_pairs (session_id, input_text, output_text, source_url, metadata_json) VALUES (?,?,?,?,?)",
        [(session_id, f"q{i}", f"a{i}", None, None) for i in range(3)],
    )
    connection.execute(
        "UPDATE scrape_sessions SET pair_count = (SELECT COUNT(*) FROM scraped_pairs WHERE session_id = ?) WHERE id = ?",
        (session_id, session_id),
    )
    row = connection.execute(
        "SELECT id, source, dataset_format, pair_count, created_at FROM scrape_sessions WHERE id = ?", (session_id,)
    ).fetchone()
    assert row[1:4] == ("reddit", "standard", 3)
    assert row[4] is not None
    cur = connection.execute(
        "INSERT INTO training_runs (name, status, base_model, dataset_source, dataset_id, storage_path, hp_json)"
        " VALUES (?, 'pending', ?, ?, ?, ?, ?)",
        ("r", "m", "database", str(session_id), "/tmp/x", "{}"),
    )
    run_id = cur.lastrowid
    connection.execute("INSERT INTO training_runs (name, storage_path) VALUES ('bare', '/tmp/bare')")
    assert connection.execute(
        "SELECT status, created_at IS NOT NULL FROM training_runs WHERE name='bare'"
    ).fetchone() == (
        "pending",
        1,
    )
    connection.execute(
        "INSERT INTO evaluation_runs (training_run_id, base_model, benchmark, metrics_json, is_base_eval)"
        " VALUES (?, 'm', 'hellaswag', '{}', 0)",
        (run_id,),
    )
    connection.execute(
        "INSERT INTO settings (key, value, updated_at) VALUES ('k', '1', datetime('now'))"
        " ON CONFLICT(key) DO UPDATE SET value = excluded.value, updated_at = datetime('now')"
    )
    connection.execute(
        "INSERT INTO training_configs (name, config_json, train_target, updated_at) VALUES ('c', '{}', 'Local', datetime('now'))"
        " ON CONFLICT(name) DO UPDATE SET config_json = excluded.config_json"
    )
    connection.execute(
        "INSERT INTO app_state (key, value) VALUES ('last_used_config', 'c')"
        " ON CONFLICT(key) DO UPDATE SET value = excluded.value"
    )
    connection.execute(
        "INSERT INTO app_logs (timestamp, level, logger, message, module, func_name, line_no, exc_info)"
        " VALUES (?, 'INFO', 'finefoundry.x', 'hello', 'm', 'f', 1, NULL)",
        ("2025-01-01T10:00:00.000001",),
    )
    connection.execute("INSERT INTO app_logs (level, message) VALUES ('INFO', 'defaulted')")
    # Deleting a session relies on ON DELETE CASCADE; deleting a run on ON DELETE SET NULL.
    connection.execute("DELETE FROM scrape_sessions WHERE id = ?", (session_id,))
    assert connection.execute("SELECT COUNT(*) FROM scraped_pairs WHERE session_id = ?", (session_id,)).fetchone() == (
        0,
    )
    connection.execute("DELETE FROM training_runs WHERE id = ?", (run_id,))
    assert connection.execute("SELECT training_run_id FROM evaluation_runs WHERE benchmark='hellaswag'").fetchall()[
        -1
    ] == (None,)
    connection.commit()


def test_desktop_sql_works_on_an_adopted_database(desktop_db):
    assert manage(desktop_db, "migrate", "--no-input").returncode == 0
    connection = sqlite3.connect(desktop_db)
    desktop_session(connection)
    connection.close()


def test_desktop_sql_works_on_a_fresh_database(tmp_path):
    db = tmp_path / "finefoundry.db"
    assert manage(db, "migrate", "--no-input").returncode == 0
    connection = sqlite3.connect(db)
    desktop_session(connection)
    connection.close()


def test_our_api_reads_what_the_desktop_app_wrote(desktop_db):
    assert manage(desktop_db, "migrate", "--no-input").returncode == 0
    code = (
        "from storage import api; import json; "
        "print(json.dumps([api.get_scrape_session(2)['pair_count'], len(api.get_pairs_for_session(1)), "
        "api.get_pairs_for_session(1)[1]['thread_id'], api.get_setting('ollama')['enabled'], "
        "api.get_training_run(2)['logs'][0], api.get_last_used_config(), api.get_log_count()]))"
    )
    env = child_env(desktop_db)
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == '[12, 12, 77777869, true, "step 0 loss 2.500", "local_llama.json", 50]'


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"this is not a database at all" * 100, "is not an SQLite database"),
        (b"SQLite format 3\x00" + b"\xff" * 4000, "its header is damaged"),
    ],
)
def test_migrate_refuses_a_file_that_is_not_a_usable_database(tmp_path, content, message):
    db = tmp_path / "finefoundry.db"
    db.write_bytes(content)
    result = manage(db, "migrate", "--no-input")
    assert result.returncode == 1
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert db.read_bytes() == content
    assert not list(tmp_path.glob("finefoundry.db-*"))  # no WAL or journal left beside it


def test_an_empty_file_is_an_empty_database(tmp_path):
    db = tmp_path / "finefoundry.db"
    db.touch()
    assert manage(db, "migrate", "--no-input").returncode == 0
