"""The pairs list's length and metadata filters read their index (migration 0012), on each engine.

Every query the page runs with the filter on is EXPLAINed as the engine would run it: a query that
filters on the expression must name the expression's index, so a filter matching few pairs or none
never walks the table (measured in bench/admin.py).
"""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from storage.admin.pair_filters import EMPTY_METADATA

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:storage_scrapedpair_changelist")
FILTERS = [
    ({"input_length": "long"}, "scraped_pairs_input_size"),
    ({"input_length": "short"}, "scraped_pairs_input_size"),
    ({"output_length": "long"}, "scraped_pairs_output_size"),
    ({"output_length": "medium"}, "scraped_pairs_output_size"),
    ({"has_metadata": "yes"}, "scraped_pairs_holds_metadata"),
    ({"has_metadata": "no"}, "scraped_pairs_holds_metadata"),
]


def plan(sql: str) -> str:
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # A test table is tiny, so PostgreSQL would rightly read it whole: ask whether the index CAN serve.
            cursor.execute("SET LOCAL enable_seqscan = off")
            cursor.execute(f"EXPLAIN {sql}")
        else:
            cursor.execute(f"EXPLAIN QUERY PLAN {sql}")
        return "\n".join(" ".join(map(str, row)) for row in cursor.fetchall())


@pytest.mark.parametrize(("params", "index"), FILTERS, ids=["=".join(*p.items()) for p, _ in FILTERS])
def test_each_filter_query_uses_its_index(admin_client, session_factory, params, index):
    session_factory(pairs=30)
    with CaptureQueriesContext(connection) as queries:
        response = admin_client.get(CHANGELIST, params)
    assert response.status_code == 200
    filtered = [q["sql"] for q in queries.captured_queries if "CASE WHEN" in q["sql"] and "scraped_pairs" in q["sql"]]
    assert len(filtered) >= 2  # the capped count and the page's rows
    for sql in filtered:
        explained = plan(sql)
        assert index in explained, f"{sql}\n{explained}"
        if connection.vendor == "sqlite":
            assert "SCAN scraped_pairs\n" not in explained + "\n" and "TEMP B-TREE" not in explained, explained


def test_the_metadata_expression_lists_every_empty_form():
    """The migration indexes the same empty forms the filter compares with (a change needs a new index)."""
    import importlib

    migration = importlib.import_module("storage.migrations.0012_pair_filter_indexes")
    assert all(f"'{text}'" in migration.HOLDS_METADATA for text in EMPTY_METADATA)


@pytest.mark.parametrize("matches", [0, 3])
def test_a_rare_domain_is_found_in_the_url_index_and_read_by_id(admin_client, session_factory, matches):
    from storage.models import ScrapedPair

    session = session_factory(pairs=30)
    ScrapedPair.objects.filter(pk__in=ScrapedPair.objects.filter(session=session).values("pk")[:matches]).update(
        source_url="https://old.example.org/thread/1"
    )
    ScrapedPair.objects.filter(source_url__isnull=True).update(source_url="https://reddit.com/r/x/1")
    with CaptureQueriesContext(connection) as queries:
        response = admin_client.get(CHANGELIST, {"domain": "example.org"})
    assert response.status_code == 200
    assert len(response.context["cl"].result_list) == matches
    probes = [q["sql"] for q in queries.captured_queries if "IS NOT NULL" in q["sql"] and "source_url" in q["sql"]]
    assert len(probes) == 1
    assert "scraped_pairs_source_url" in plan(probes[0]), plan(probes[0])
    # The page and its count then read those ids only: no text-bearing row is walked.
    listed = [q["sql"] for q in queries.captured_queries if "example" in q["sql"]]
    assert listed == probes


@pytest.mark.sqlite_only("the desktop app writes the SQLite file with plain sqlite3")
def test_the_desktop_app_writes_through_the_indexes_with_plain_sqlite3(tmp_path):
    """The indexed expressions use SQLite's built-ins only: a plain sqlite3 connection inserts, updates, checks."""
    import sqlite3
    from contextlib import closing

    from tests.helpers.processes import manage

    db = tmp_path / "finefoundry.db"
    assert manage(db, "migrate", "-v", "0").returncode == 0
    with closing(sqlite3.connect(db)) as conn, conn:
        session_id = conn.execute("INSERT INTO scrape_sessions (source) VALUES ('desktop')").lastrowid
        conn.executemany(
            "INSERT INTO scraped_pairs (session_id, input_text, output_text, source_url, metadata_json)"
            " VALUES (?, ?, ?, ?, ?)",
            [(session_id, "q" * n, "a" * (n * 10), f"https://example.org/{n}", "{}") for n in (1, 199, 200, 201)],
        )
        conn.execute("UPDATE scraped_pairs SET output_text = 'short', metadata_json = '{\"k\": 1}' WHERE id = 1")
        indexes = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
        long_ids = conn.execute(
            "SELECT id FROM scraped_pairs WHERE (CASE WHEN length(output_text) < 200 THEN 0"
            " WHEN length(output_text) <= 2000 THEN 1 ELSE 2 END) = 2 ORDER BY id"
        ).fetchall()
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert {"scraped_pairs_input_size", "scraped_pairs_output_size", "scraped_pairs_holds_metadata"} <= indexes
    assert "scraped_pairs_source_url" in indexes
    assert long_ids == [(4,)]
