"""`scan_pairs --store` as users run it: manage.py on a real database file; offsets stored, never the text."""

from __future__ import annotations

import json
import sqlite3

import pytest

from tests.helpers.datasets import add_pairs_directly, copy_test_database, manage

pytestmark = pytest.mark.django_db(transaction=True)

TOKEN = "hf_StoredByTheCommandAbcdef012345"


def rows(db) -> list[tuple]:
    connection = sqlite3.connect(db)
    try:
        return connection.execute(
            """SELECT f.pair_id, f.side, f.kind, f.start, f."end" FROM storage_scan_findings f
            JOIN storage_scans s ON s.id = f.scan_id WHERE s.status = 'current' ORDER BY f.pair_id, f.start"""
        ).fetchall()
    finally:
        connection.close()


def test_store_keeps_exactly_the_json_findings_and_replaces_them(tmp_path):
    db = copy_test_database(tmp_path / "store.db")
    session_id = add_pairs_directly(db, [("mail jane.doe@example.com", f"token {TOKEN}"), ("clean", "text")])
    stored = manage(db, "scan_pairs", str(session_id), "--store", text=True)
    assert stored.returncode == 0, stored.stderr
    assert f"Session {session_id}: scanned 2 pairs, stored 2 findings in 1 pairs" in stored.stdout
    listed = manage(db, "scan_pairs", str(session_id), "--json", text=True)
    expected = [tuple(f.values()) for f in json.loads(listed.stdout)["findings"]]
    assert rows(db) == sorted(expected, key=lambda r: (r[0], r[3]))
    connection = sqlite3.connect(db)
    try:
        ours = [
            connection.execute(f"SELECT * FROM {table}").fetchall()
            for table in ("storage_scan_findings", "storage_scans")
        ]
    finally:
        connection.close()
    assert TOKEN not in repr(ours) and "jane.doe" not in repr(ours)
    again = manage(db, "scan_pairs", str(session_id), "--store", text=True)
    assert again.returncode == 0 and len(rows(db)) == 2
    refused = manage(db, "scan_pairs", str(session_id), "--store", "--json", text=True)
    assert refused.returncode != 0 and "--store prints a summary" in refused.stderr
