"""db.core as FineFoundry's main.py and its inference and training tabs use it, in FineFoundry-shaped processes."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from django.db import connections

from storage.exceptions import StorageError

from .conftest import import_db_package, run_as_finefoundry

SCHEMA = json.loads((Path(__file__).resolve().parents[1] / "fixtures" / "finefoundry_schema.json").read_text())


@pytest.fixture
def database(tmp_path) -> Path:
    return tmp_path / "finefoundry.db"


def test_get_connection_is_a_per_thread_sqlite_connection_with_djangos_pragmas(tmp_path, database):
    result = run_as_finefoundry(
        """
        import json, sqlite3, threading
        from db import init_db, get_connection, get_db_path
        from db.scraped_data import create_scrape_session, add_scraped_pairs

        init_db()
        session_id = create_scrape_session("reddit")
        add_scraped_pairs(session_id, [{"input": f"q{i}", "output": f"a{i}"} for i in range(7)])
        conn = get_connection()
        cursor = conn.cursor()
        cursor.execute(
            "SELECT input_text, output_text FROM scraped_pairs WHERE session_id = ? ORDER BY RANDOM() LIMIT ?",
            (int(session_id), 5),
        )
        rows = cursor.fetchall()
        pragmas = {p: conn.execute(f"PRAGMA {p}").fetchone()[0]
                   for p in ("journal_mode", "synchronous", "foreign_keys", "busy_timeout", "cache_size")}
        other = []
        worker = threading.Thread(target=lambda: other.append(get_connection()))
        worker.start(); worker.join()
        # main.py's "Clear scraped data": raw DELETE of the sessions; the pairs go by ON DELETE CASCADE.
        cur2 = get_connection().cursor()
        cur2.execute("DELETE FROM scrape_sessions")
        deleted = cur2.rowcount
        get_connection().commit()
        print(json.dumps({
            "is_sqlite": isinstance(conn, sqlite3.Connection),
            "row_keys": sorted(rows[0].keys()), "rows": len(rows), "inputs": [r["input_text"] for r in rows],
            "same_in_thread": get_connection() is conn, "other_thread_differs": other[0] is not conn,
            "pragmas": pragmas, "path": get_db_path(),
            "deleted": deleted, "pairs_left": conn.execute("SELECT COUNT(*) FROM scraped_pairs").fetchone()[0],
        }))
        """,
        workdir=tmp_path,
        database=database,
    )
    assert result["is_sqlite"] and result["row_keys"] == ["input_text", "output_text"] and result["rows"] == 5
    assert set(result["inputs"]) <= {f"q{i}" for i in range(7)}
    assert result["same_in_thread"] and result["other_thread_differs"]
    # The pragmas settings.DATABASES gives Django's own connections.
    assert result["pragmas"] == {
        "journal_mode": "wal", "synchronous": 1, "foreign_keys": 1, "busy_timeout": 30000, "cache_size": -32768
    }  # fmt: skip
    assert Path(result["path"]) == database
    assert (result["deleted"], result["pairs_left"]) == (1, 0)


def test_schema_version_lives_in_app_state(tmp_path, database):
    result = run_as_finefoundry(
        """
        import json
        from db.core import init_db, get_schema_version, set_schema_version, get_connection
        init_db(); init_db()
        before = get_schema_version()
        set_schema_version(3)
        set_schema_version(4)
        row = get_connection().execute("SELECT value FROM app_state WHERE key = 'schema_version'").fetchone()
        print(json.dumps([before, get_schema_version(), row["value"]]))
        """,
        workdir=tmp_path,
        database=database,
    )
    assert result == [0, 4, "4"]


def test_factory_reset_leaves_a_working_empty_database(tmp_path, database):
    """main.py's factory reset: close connections, delete the file and the storage root, init_db(), go on."""
    result = run_as_finefoundry(
        """
        import json, logging, os, shutil, threading
        import db
        from db.scraped_data import create_scrape_session, add_scraped_pairs, get_scrape_session
        from db.training_runs import create_training_run, list_training_runs
        from db.settings import set_hf_token, get_hf_token, get_all_settings
        from storage import api

        db.init_db()
        logger = logging.getLogger("ffapp.reset")
        logger.setLevel(logging.INFO)
        db.setup_database_logging(logging.INFO, "ffapp.reset")
        logger.info("before reset")
        session_id = create_scrape_session("reddit", name="old")
        add_scraped_pairs(session_id, [{"input": f"old question {i}", "output": "a"} for i in range(50)])
        create_training_run("old-run", "m", "database", str(session_id))
        set_hf_token("hf_oldtoken_0123456789")
        raw = db.get_connection()
        raw.execute("SELECT COUNT(*) FROM scraped_pairs").fetchone()
        # A thread with its own Django connection, left open, as a UI worker thread would.
        threading.Thread(target=lambda: get_scrape_session(session_id)).start()
        api.search_pairs("question")

        db_path, storage_root = db.get_db_path(), db.get_managed_storage_root()
        db.close_all_connections()
        os.remove(db_path)
        shutil.rmtree(storage_root)
        db.init_db()

        logger.info("after reset")
        new_session = create_scrape_session("stackexchange", name="new")
        added = add_scraped_pairs(new_session, [{"input": "new question", "output": "b"}])
        run = create_training_run("new-run", "m", "database", str(new_session))
        counts = {t: db.get_connection().execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
                  for t in ("scrape_sessions", "scraped_pairs", "training_runs", "settings")}
        hits = [p["input"] for p in api.search_pairs("question")]
        for handler in logging.getLogger("ffapp.reset").handlers:
            handler.flush()
        print(json.dumps({
            "sessions": [s["name"] for s in db.list_scrape_sessions()], "added": added,
            "runs": [r["name"] for r in list_training_runs()], "run_dir": os.path.isdir(run["storage_path"]),
            "token": get_hf_token(), "settings": get_all_settings(), "counts": counts, "hits": hits,
            "logs": [r["message"] for r in db.get_logs(logger="ffapp.reset")],
            "files": sorted(os.listdir(os.path.dirname(db_path))),
        }))
        """,
        workdir=tmp_path,
        database=database,
    )
    assert result["sessions"] == ["new"] and result["added"] == 1
    assert result["runs"] == ["new-run"] and result["run_dir"]
    assert result["token"] == "" and result["settings"] == {}
    assert result["counts"] == {"scrape_sessions": 1, "scraped_pairs": 1, "training_runs": 1, "settings": 0}
    assert result["hits"] == ["new question"]
    assert result["logs"] == ["after reset"]
    # Read with SQLite from outside: the new file holds the new rows (nothing went to the deleted one).
    with sqlite3.connect(database) as check:
        assert check.execute("SELECT name FROM scrape_sessions").fetchall() == [("new",)]
        assert check.execute("SELECT message FROM app_logs WHERE logger = 'ffapp.reset'").fetchall() == [
            ("after reset",)
        ]


def test_a_fresh_database_has_finefoundrys_schema_where_it_is_stricter(tmp_path, database):
    run_as_finefoundry("import db; db.init_db(); print('{}')", workdir=tmp_path, database=database)
    with sqlite3.connect(database) as check:
        for table, spec in SCHEMA["tables"].items():
            columns = {
                row[1]: {"type": row[2], "notnull": bool(row[3]), "default": row[4], "pk": bool(row[5])}
                for row in check.execute(f"PRAGMA table_info({table})")
            }
            # Same columns, types, NOT NULLs, defaults and keys (scrape_sessions.name sits last here, see README).
            assert columns == spec["columns"], table
            keys = [
                {"column": row[3], "references": f"{row[2]}({row[4]})", "on_delete": row[6]}
                for row in check.execute(f"PRAGMA foreign_key_list({table})")
            ]
            assert keys == spec["foreign_keys"], table
            indexes = {row[1] for row in check.execute(f"PRAGMA index_list({table})")}
            assert set(spec["indexes"]) <= indexes, table  # ours may add indexes
        assert check.execute(
            "SELECT \"notnull\" FROM pragma_table_info('training_runs') WHERE name = 'storage_path'"
        ).fetchone() == (1,)


def test_get_connection_on_a_database_server_says_raw_sql_needs_sqlite(db, monkeypatch):
    package = import_db_package()
    monkeypatch.setattr(connections["default"], "vendor", "postgresql")  # PostgreSQL itself is not available here
    with pytest.raises(StorageError, match="raw SQL needs SQLite") as error:
        package.core.get_connection()
    assert isinstance(error.value, ValueError)
