"""PostgreSQL's counterpart of the FTS5 search index: pg_trgm GIN indexes under Django's icontains SQL."""

from __future__ import annotations

import pytest
from django.db import connection

from storage.models import ScrapedPair
from storage.search import postgres
from storage.search.queries import search_pairs, search_queryset

pytestmark = pytest.mark.postgresql_only


def plan(queryset) -> str:
    """The plan of `queryset` with plain scans disabled, so a usable index must show up in it."""
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_indexscan = off")
    return queryset.explain()


def test_migration_made_the_trigram_and_session_page_indexes(db):
    assert postgres.trigram_index_names(connection) == set(postgres.TRIGRAM_INDEXES)
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_indexes WHERE indexname = %s", [postgres.SESSION_PAGE_INDEX])
        assert cursor.fetchone()
        cursor.execute("SELECT data_type FROM information_schema.columns WHERE column_name = 'config_json'")
        assert cursor.fetchone() == ("text",)


def test_the_sql_search_generates_uses_the_trigram_indexes(session_factory):
    session_factory(pairs=50)
    queryset = search_queryset(ScrapedPair.objects.all(), "quokka").order_by("id")
    assert 'UPPER("scraped_pairs"."input_text"::text) LIKE UPPER(' in str(queryset.query)
    explained = plan(queryset)
    for name in postgres.TRIGRAM_INDEXES:
        assert name in explained, explained


def test_old_session_pages_use_the_session_id_index(session_factory):
    session = session_factory(pairs=30)
    explained = plan(ScrapedPair.objects.filter(session_id=session.pk).order_by("id")[20:30])
    assert postgres.SESSION_PAGE_INDEX in explained, explained


def test_results_are_exactly_icontains(session_factory):
    from storage.services import sessions

    session = session_factory()
    texts = ["The QUOKKA smiles", "quokkas", "no match here", "ÜBER quokka", "Straße", "straße"]
    sessions.add_scraped_pairs(session_id=session.pk, pairs=[{"input": t, "output": "x"} for t in texts])
    for term in ("quokka", "QuOkKa", "über", "straße", "ok"):
        expected = [p.pk for p in ScrapedPair.objects.filter(input_text__icontains=term).order_by("id")]
        assert [p.pk for p in search_pairs(query=term)] == expected, term
