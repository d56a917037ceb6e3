"""export_session and import_pairs never write over, or read as data, the live database or the run artefacts."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from tests.helpers.processes import manage

pytestmark = pytest.mark.reliability


@pytest.fixture
def live_db(migrated_db) -> Path:
    connection = sqlite3.connect(migrated_db)
    connection.execute("INSERT INTO scrape_sessions (source, pair_count) VALUES ('reddit', 1)")
    connection.execute("INSERT INTO scraped_pairs (session_id, input_text, output_text) VALUES (1, 'Q?', 'A.')")
    connection.commit()
    connection.close()
    return migrated_db


def database_is_intact(db: Path) -> None:
    connection = sqlite3.connect(db)
    assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert connection.execute("SELECT input_text FROM scraped_pairs").fetchall() == [("Q?",)]
    connection.close()


def symlink_to_db(db: Path) -> Path:
    link = db.parent.parent / "innocent.jsonl"
    link.symlink_to(db)
    return link


def hard_link_to_db(db: Path) -> Path:
    link = db.parent.parent / "copy.jsonl"
    os.link(db, link)  # no descriptor of the database is opened
    return link


@pytest.mark.parametrize(
    "make_target",
    [
        pytest.param(lambda db: db, id="the database"),
        pytest.param(lambda db: Path(f"{db}-wal"), id="its -wal"),
        pytest.param(lambda db: Path(f"{db}-shm"), id="its -shm"),
        pytest.param(lambda db: Path(f"{db}-journal"), id="its -journal"),
        pytest.param(lambda db: db.parent / "sub" / ".." / db.name, id="the database via .."),
        pytest.param(symlink_to_db, id="a symlink to the database"),
        pytest.param(hard_link_to_db, id="a hard link to the database"),
    ],
)
def test_export_refuses_to_write_over_the_live_database(live_db, make_target):
    target = make_target(live_db)
    # A connection stays open the whole time, as the desktop app's would.
    holder = sqlite3.connect(live_db)
    holder.execute("PRAGMA journal_mode=WAL")
    holder.execute("SELECT COUNT(*) FROM scraped_pairs").fetchall()
    before = {p.name: p.stat().st_ino for p in live_db.parent.iterdir()}
    result = manage(live_db, "export_session", "1", "--format", "jsonl", "-o", str(target), "--force")
    assert result.returncode == 1
    assert "it is the live database file" in result.stderr and "Traceback" not in result.stderr
    assert {p.name: p.stat().st_ino for p in live_db.parent.iterdir()} == before  # no temp file, nothing replaced
    assert holder.execute("SELECT input_text FROM scraped_pairs").fetchall() == [("Q?",)]
    holder.close()
    database_is_intact(live_db)


def test_export_refuses_targets_inside_the_storage_root(live_db):
    run_directory = live_db.parent / "training_outputs" / "llama_20240101_093000"
    (run_directory / "outputs").mkdir(parents=True)
    (run_directory / "dataset.json").write_text("[]")
    result = manage(
        live_db, "export_session", "1", "--format", "json", "-o", str(run_directory / "dataset.json"), "--force"
    )
    assert result.returncode == 1
    assert "inside the storage root" in result.stderr
    assert (run_directory / "dataset.json").read_text() == "[]"


def test_import_refuses_to_read_the_live_database(live_db):
    for source in (live_db, symlink_to_db(live_db)):
        result = manage(live_db, "import_pairs", str(source))
        assert result.returncode == 1
        assert "it is the live database file" in result.stderr
    database_is_intact(live_db)


def test_an_ordinary_target_still_works(live_db, tmp_path):
    target = tmp_path / "out.jsonl"
    assert manage(live_db, "export_session", "1", "--format", "jsonl", "-o", str(target)).returncode == 0
    assert target.read_text() == '{"input": "Q?", "output": "A."}\n'
