"""PostgreSQL's counterpart of the FTS5 search index: the lazy pg_trgm index (storage.search.postgres)."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from storage.models import ScrapedPair
from storage.search import index as search_index
from storage.search import postgres
from storage.search.queries import search_pairs, search_queryset

pytestmark = pytest.mark.postgresql_only


def plan(queryset) -> str:
    """The plan of `queryset` with plain scans disabled, so a usable index must show up in it."""
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_indexscan = off")
    return queryset.explain()


def test_migration_made_the_lazy_index_and_the_session_page_index(db):
    assert postgres.trigram_index_names(connection) == set(postgres.TRIGRAM_INDEXES)
    assert search_index.installed(connection)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname FROM pg_indexes WHERE indexname = ANY(%s)", [list(postgres.OLD_TRIGRAM_INDEXES)]
        )
        assert cursor.fetchall() == [], "scraped_pairs itself carries no trigram index (it cost ingest 8x)"
        cursor.execute("SELECT 1 FROM pg_indexes WHERE indexname = %s", [postgres.SESSION_PAGE_INDEX])
        assert cursor.fetchone()
        cursor.execute("SELECT data_type FROM information_schema.columns WHERE column_name = 'config_json'")
        assert cursor.fetchone() == ("text",)


def indexed(session_factory, texts: list[str]):
    """A session holding `texts` as inputs, all of them indexed (below the mark)."""
    from storage.services import sessions

    session = session_factory()
    sessions.add_scraped_pairs(session_id=session.pk, pairs=[{"input": t, "output": "x"} for t in texts])
    search_index.index_pending()
    return session


def test_the_sql_search_generates_uses_the_trigram_indexes(session_factory):
    indexed(session_factory, [f"question {i}" for i in range(50)])
    queryset = search_queryset(ScrapedPair.objects.all(), "quokka").order_by("id")
    assert postgres.TABLE in str(queryset.query)
    explained = plan(queryset)
    for name in postgres.TRIGRAM_INDEXES:
        assert name in explained, explained


def test_old_session_pages_use_the_session_id_index(session_factory):
    session = session_factory(pairs=30)
    # A page in id order read straight from an index, no sort: only the (session_id, id) index gives that.
    # (With sorting allowed, a test-sized table's statistics may pick either session index and sort.)
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_bitmapscan = off")
        cursor.execute("SET LOCAL enable_sort = off")
    explained = ScrapedPair.objects.filter(session_id=session.pk).order_by("id")[20:30].explain()
    assert postgres.SESSION_PAGE_INDEX in explained and "Sort" not in explained, explained


def test_results_are_exactly_icontains(session_factory):
    from storage.services import sessions

    session = session_factory()
    texts = ["The QUOKKA smiles", "quokkas", "no match here", "ÜBER quokka", "Straße", "straße"]
    sessions.add_scraped_pairs(session_id=session.pk, pairs=[{"input": t, "output": "x"} for t in texts])
    for term in ("quokka", "QuOkKa", "über", "straße", "ok"):
        expected = [p.pk for p in ScrapedPair.objects.filter(input_text__icontains=term).order_by("id")]
        assert [p.pk for p in search_pairs(query=term)] == expected, term


def icontains(term: str) -> list[int]:
    return [p.pk for p in ScrapedPair.objects.filter(input_text__icontains=term).order_by("id")]


def found(term: str) -> list[int]:
    return [p.pk for p in search_pairs(query=term, limit=1000)]


def mark() -> int:
    with connection.cursor() as cursor:
        return search_index.state(cursor)[0]


def test_pairs_added_after_the_mark_are_found_at_once_by_the_tail_scan(session_factory):
    from storage.services import sessions

    session = indexed(session_factory, ["an old quokka", "nothing"])
    before = mark()
    sessions.add_scraped_pairs(session_id=session.pk, pairs=[{"input": "a new Quokka", "output": "y"}])
    assert mark() == before, "inserts are not indexed when they happen"
    assert found("quokka") == icontains("quokka") and len(icontains("quokka")) == 2
    assert search_index.index_pending() == 1
    assert mark() > before and found("quokka") == icontains("quokka")


def test_an_edited_pair_is_found_by_its_new_text_and_not_its_old(session_factory):
    session = indexed(session_factory, ["the platypus", "other"])
    pair = ScrapedPair.objects.filter(session=session).order_by("id").first()
    assert pair.pk <= mark()
    ScrapedPair.objects.filter(pk=pair.pk).update(input_text="the wombat")
    assert found("wombat") == [pair.pk]
    assert found("platypus") == []
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT input_upper FROM {postgres.TABLE} WHERE pair_id = %s", [pair.pk])
        assert cursor.fetchone() == ("THE WOMBAT",)


def test_a_deleted_pair_is_never_found_and_doctor_prunes_its_entry(session_factory):
    session = indexed(session_factory, ["a numbat", "a numbat too"])
    doomed = ScrapedPair.objects.filter(session=session).order_by("id").first()
    doomed.delete()
    assert found("numbat") == icontains("numbat") and len(found("numbat")) == 1
    with connection.cursor() as cursor:
        assert postgres.coverage(cursor, mark())[2] == 1
        assert postgres.prune(cursor) == 1
        assert postgres.coverage(cursor, mark())[2] == 0


def test_doctor_reports_missing_entries_and_fixes_them_on_postgresql(session_factory):
    indexed(session_factory, ["a bilby", "a bilby again"])
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {postgres.TABLE}")
    assert found("bilby") == [], "entries lost below the mark: search cannot find them"
    out = io.StringIO()
    with pytest.raises(CommandError):
        call_command("doctor", "--check", "search-index", stdout=out)
    assert "2 pairs are missing from the search index" in out.getvalue(), out.getvalue()
    out = io.StringIO()
    call_command("doctor", "--check", "search-index", "--fix", stdout=out)
    assert found("bilby") == icontains("bilby") and len(found("bilby")) == 2
    call_command("doctor", "--check", "search-index", stdout=io.StringIO())


@pytest.mark.parametrize(
    "term", ["quokka", "QuOkKa", "über", "straße", "ok", "50%", "a_b", "smiles quokka", "'the quokka'"]
)
def test_results_are_icontains_indexed_or_pending(session_factory, term):
    from storage.services import sessions

    texts = ["The QUOKKA smiles", "quokkas", "no match here", "ÜBER quokka", "Straße", "50% off", "a_b", "axb"]
    session = indexed(session_factory, texts)
    sessions.add_scraped_pairs(session_id=session.pk, pairs=[{"input": t, "output": "tail"} for t in texts])
    with_index = [p.pk for p in search_queryset(ScrapedPair.objects.all(), term).order_by("id")]
    search_index.uninstall(connection)  # now plain icontains
    assert with_index == [p.pk for p in search_queryset(ScrapedPair.objects.all(), term).order_by("id")]
