"""The full-text index stays in step with pairs written by every path, and doctor checks and repairs it."""

from __future__ import annotations

import sqlite3
import time
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.urls import reverse

from storage.models import ScrapedPair
from storage.search import health as search_index_health
from storage.search import index as search_index
from storage.search.queries import search_pairs, search_queryset
from storage.services import pair_edits, sessions
from tests.helpers.processes import manage

pytestmark = pytest.mark.sqlite_only(
    "the FTS5 search index (PostgreSQL's pg_trgm counterpart: test_search_postgres.py)"
)


def found(query: str, **kwargs) -> list[str]:
    return [pair.input_text for pair in search_pairs(query=query, **kwargs)]


def add(session, *inputs: str) -> None:
    sessions.add_scraped_pairs(session_id=session.pk, pairs=[{"input": i, "output": "answer"} for i in inputs])


def index_state() -> tuple[int, int]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT indexed_through FROM {search_index.STATE_TABLE}")
        mark = cursor.fetchone()[0]
        cursor.execute(f"SELECT count(*) FROM {search_index.FTS_TABLE}_docsize")
        return mark, cursor.fetchone()[0]


def doctor(*args: str) -> str:
    out = StringIO()
    call_command("doctor", "--check", "search-index", *args, stdout=out)
    return out.getvalue()


def test_a_search_right_after_adding_pairs_finds_them_and_indexes_them(session_factory):
    session = session_factory()
    add(session, "alpha lemur", "beta lemur")
    highest = ScrapedPair.objects.order_by("-id").first().pk
    assert index_state()[0] < highest
    assert found("lemur") == ["alpha lemur", "beta lemur"]
    assert index_state()[0] == highest


def test_pairs_beyond_what_one_search_indexes_are_still_found(monkeypatch, session_factory):
    monkeypatch.setattr(search_index, "CATCH_UP_CHUNK", 2)
    monkeypatch.setattr(search_index, "SEARCH_CATCH_UP_SECONDS", 0)
    session = session_factory()
    add(session, *(f"lemur {i}" for i in range(7)))
    mark_before = index_state()[0]
    assert found("lemur") == [f"lemur {i}" for i in range(7)]
    indexed_now = ScrapedPair.objects.filter(pk__gt=mark_before, pk__lte=index_state()[0]).count()
    assert indexed_now == 2


@pytest.mark.django_db(transaction=True)
def test_what_a_search_leaves_pending_is_indexed_in_the_background(monkeypatch, session_factory):
    monkeypatch.setattr(search_index, "CATCH_UP_CHUNK", 2)
    monkeypatch.setattr(search_index, "SEARCH_CATCH_UP_SECONDS", 0)
    # The index table is not a model: entries an earlier transactional test left stay; count from here.
    search_index.wait_for_background(timeout=30)
    indexed_before = index_state()[1]
    session = session_factory()
    add(session, *(f"lemur {i}" for i in range(9)))
    assert len(found("lemur")) == 9
    search_index.wait_for_background(timeout=30)
    assert index_state() == (ScrapedPair.objects.order_by("-id").first().pk, indexed_before + 9)


@pytest.mark.django_db(transaction=True)
def test_merged_pairs_are_indexed_in_the_background(session_factory):
    from storage.services.merge import merge_sessions

    first, second = session_factory(), session_factory()
    add(first, "merged lemur")
    add(second, "merged wombat")
    found("merged")
    merged = merge_sessions(session_ids=[first.pk, second.pk])
    search_index.wait_for_background(timeout=30)
    assert index_state()[0] == merged.pairs.order_by("-id").first().pk


def test_edits_are_found_by_their_new_text_only(session_factory):
    session = session_factory()
    add(session, "old wombat text", "other")
    assert found("wombat") == ["old wombat text"]  # indexed now
    pair = ScrapedPair.objects.get(input_text="old wombat text")
    pair.input_text = "new quokka text"
    pair_edits.save_pair(pair, previous_session_id=session.pk)
    with connection.cursor() as cursor:  # the desktop app's kind of edit
        cursor.execute("UPDATE scraped_pairs SET output_text = 'platypus' WHERE input_text = 'other'")
    assert found("quokka") == ["new quokka text"]
    assert found("wombat") == []
    assert found("platypus") == ["other"]


def test_deleted_pairs_are_never_found_again(session_factory):
    first = session_factory()
    second = session_factory()
    add(first, "numbat one", "numbat two")
    add(second, "numbat three", "numbat four")
    assert len(found("numbat")) == 4
    pair_edits.delete_pairs(ScrapedPair.objects.filter(input_text="numbat one"))
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM scraped_pairs WHERE input_text = 'numbat two'")
    sessions.delete_scrape_session(session_id=second.pk)
    assert found("numbat") == []
    add(first, "numbat one")
    assert found("numbat") == ["numbat one"]


def test_pairs_reusing_ids_after_a_sequence_reset_are_found(session_factory):
    session = session_factory()
    add(session, "first echidna", "second echidna")
    assert len(found("echidna")) == 2
    mark = index_state()[0]
    with connection.cursor() as cursor:  # what `manage.py flush` does
        cursor.execute("DELETE FROM scraped_pairs")
        cursor.execute("UPDATE sqlite_sequence SET seq = 0 WHERE name = 'scraped_pairs'")
    add(session, "reused bilby")
    assert ScrapedPair.objects.get().pk <= mark  # an id the index already had, with other text
    assert found("bilby") == ["reused bilby"]
    assert found("echidna") == []


@pytest.mark.django_db(transaction=True)
def test_the_desktop_apps_own_sql_is_seen_by_search(session_factory):
    """Another process (the desktop app) writes with plain sqlite3 on the same file, foreign keys on."""
    session = session_factory()
    add(session, "django cassowary")
    desktop = sqlite3.connect(connection.settings_dict["NAME"], isolation_level=None)
    try:
        desktop.execute("PRAGMA foreign_keys = ON")
        desktop_session = desktop.execute("INSERT INTO scrape_sessions (source) VALUES ('desktop')").lastrowid
        desktop.executemany(
            "INSERT INTO scraped_pairs (session_id, input_text, output_text) VALUES (?, ?, ?)",
            [(desktop_session, "desktop cassowary", "a"), (desktop_session, "desktop dingo", "b")],
        )
        assert found("cassowary") == ["django cassowary", "desktop cassowary"]
        desktop.execute("UPDATE scraped_pairs SET input_text = 'desktop kiwi' WHERE input_text = 'desktop dingo'")
        assert found("kiwi") == ["desktop kiwi"]
        # Deleting the session deletes its pairs through ON DELETE CASCADE, with no trigger of ours involved.
        desktop.execute("DELETE FROM scrape_sessions WHERE id = ?", [desktop_session])
        assert found("desktop") == []
        assert found("cassowary") == ["django cassowary"]
    finally:
        desktop.close()


@pytest.mark.django_db(transaction=True)
def test_a_search_does_not_wait_while_another_connection_writes(session_factory):
    session = session_factory()
    add(session, "locked gecko")
    mark = index_state()[0]
    other = sqlite3.connect(connection.settings_dict["NAME"], isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")  # holds the write lock, as a long import would
        assert found("gecko") == ["locked gecko"]  # scanned: the index could not be brought up to date
        assert index_state()[0] == mark
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA busy_timeout")
            assert cursor.fetchone()[0] == 30000
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert found("gecko") == ["locked gecko"]
    # The search indexes what it can at once and leaves the rest to the background indexer.
    deadline = time.monotonic() + 30
    while index_state()[0] <= mark and time.monotonic() < deadline:
        time.sleep(0.05)
    assert index_state()[0] > mark


def test_admin_pair_search_takes_phrases_and_the_session_filter(admin_client, session_factory):
    first = session_factory()
    second = session_factory()
    add(first, "the learning rate is high", "rate of learning")
    add(second, "the learning rate is low")
    changelist = reverse("admin:storage_scrapedpair_changelist")
    page = admin_client.get(changelist, {"q": '"learning rate"', "session__id__exact": first.pk})
    assert [pair.input_text for pair in page.context["cl"].result_list] == ["the learning rate is high"]
    page = admin_client.get(changelist, {"q": "learning rate"})
    assert len(page.context["cl"].result_list) == 3


def test_doctor_is_quiet_about_a_healthy_index(session_factory):
    add(session_factory(), "healthy")
    found("healthy")
    assert "ok Search index covers every pair" in doctor("--full")


def test_doctor_finds_and_fixes_pairs_missing_from_the_index(session_factory):
    session = session_factory()
    add(session, "first", "second", "third")
    found("third")  # indexes all three
    middle = ScrapedPair.objects.get(input_text="second")
    with connection.cursor() as cursor:
        # A pair below the mark that the index has never seen: an id written explicitly into a gap.
        cursor.execute("DELETE FROM scraped_pairs WHERE id = %s", [middle.pk])
        cursor.execute(f"DELETE FROM {search_index.FTS_TABLE}_docsize WHERE id = %s", [middle.pk])
        cursor.execute(
            "INSERT INTO scraped_pairs (id, session_id, input_text, output_text) VALUES (%s, %s, 'restored tapir', 'x')",
            [middle.pk, session.pk],
        )
    with pytest.raises(CommandError, match="doctor found 1 problem"):
        doctor()
    out = doctor("--fix")
    assert "1 pairs are missing from the search index" in out and "rebuilt the index" in out
    assert found("tapir") == ["restored tapir"]
    assert search_index_health.inspect().problems() == []


def test_doctor_builds_a_missing_index(session_factory):
    add(session_factory(), "rebuilt wallaby")
    search_index.uninstall(connection)
    with pytest.raises(CommandError):
        doctor()
    assert "the search index is missing" in doctor("--fix")
    assert search_index.installed(connection)
    assert index_state() == (ScrapedPair.objects.get().pk, 1)


def test_doctor_reclaims_entries_of_deleted_pairs_and_indexes_a_backlog(monkeypatch, session_factory):
    monkeypatch.setattr(search_index_health, "STALE_WORTH_FIXING", (2, 0.5))
    monkeypatch.setattr(search_index_health, "PENDING_WORTH_FIXING", 3)
    session = session_factory()
    add(session, *(f"pair {i}" for i in range(4)))
    found("pair")
    ScrapedPair.objects.filter(input_text__in=["pair 0", "pair 1", "pair 2"]).delete()
    health = search_index_health.inspect()
    assert (health.stale, health.indexed) == (3, 4)
    assert "3 of 4 index entries belong to deleted pairs" in doctor("--fix")
    assert search_index_health.inspect().stale == 0
    add(session, "new 1", "new 2", "new 3")
    assert "3 new pairs are not indexed yet (normal after a large insert; searches scan them); indexed 3" in doctor(
        "--fix"
    )
    assert search_index_health.inspect().pending == 0


def test_doctor_full_finds_a_damaged_index(session_factory):
    add(session_factory(), *(f"some text {i}" for i in range(50)))
    found("text")
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {search_index.FTS_TABLE}_data SET block = x'0102030405' WHERE id > 10")
    assert search_index_health.inspect().problems() == []  # only the thorough check reads the whole index
    assert search_index_health.inspect(thorough=True).damage
    assert "FTS5 integrity-check failed" in doctor("--full", "--fix")
    assert search_index_health.inspect(thorough=True).damage is None


def test_without_fts5_search_scans_and_doctor_skips_the_check(monkeypatch, session_factory):
    monkeypatch.setattr(search_index, "fts5_trigram_available", lambda: False)
    add(session_factory(), "no index platypus")
    query = search_queryset(ScrapedPair.objects.all(), "platypus")
    assert search_index.FTS_TABLE not in str(query.query)
    assert [pair.input_text for pair in query] == ["no index platypus"]
    assert search_index.install(connection) is False
    assert "Search index covers every pair: skipped, needs PostgreSQL or SQLite with FTS5" in doctor()


@pytest.fixture
def adopted_db(desktop_db):
    result = manage(desktop_db, "migrate", "--no-input")
    assert result.returncode == 0, result.stderr
    return desktop_db


def test_adopting_a_desktop_database_builds_a_complete_index(adopted_db):
    db = sqlite3.connect(adopted_db)
    try:
        pairs, highest = db.execute("SELECT count(*), max(id) FROM scraped_pairs").fetchone()
        assert pairs > 0
        assert db.execute(f"SELECT count(*) FROM {search_index.FTS_TABLE}_docsize").fetchone() == (pairs,)
        assert db.execute(f"SELECT indexed_through FROM {search_index.STATE_TABLE}").fetchone() == (highest,)
        # Exactly the pairs' text, checked by FTS5 itself against the table.
        db.execute(
            f"INSERT INTO {search_index.FTS_TABLE} ({search_index.FTS_TABLE}, rank) VALUES ('integrity-check', 1)"
        )
        matched = db.execute(
            f'SELECT count(*) FROM {search_index.FTS_TABLE} WHERE {search_index.FTS_TABLE} MATCH \'"wha" AND "hat"\''
        ).fetchone()[0]
        assert matched == db.execute("SELECT count(*) FROM scraped_pairs WHERE input_text LIKE '%what%'").fetchone()[0]
    finally:
        db.close()


def test_the_desktop_app_keeps_working_on_an_adopted_database(adopted_db):
    desktop = sqlite3.connect(adopted_db, isolation_level=None)
    try:
        desktop.execute("PRAGMA foreign_keys = ON")
        session = desktop.execute("INSERT INTO scrape_sessions (source) VALUES ('desktop')").lastrowid
        desktop.execute(
            "INSERT INTO scraped_pairs (session_id, input_text, output_text) VALUES (?, 'desktop aardvark', 'a')",
            [session],
        )
        desktop.execute("UPDATE scraped_pairs SET output_text = 'edited' WHERE session_id = 1")
        desktop.execute("DELETE FROM scrape_sessions WHERE id = 2")
    finally:
        desktop.close()
    script = (
        "from storage import api; "
        "print(len(api.search_pairs('aardvark')), len(api.search_pairs('edited')), "
        "len(api.search_pairs('edited', session_id=1)))"
    )
    result = manage(adopted_db, "shell", "-v", "0", "-c", script)
    assert result.returncode == 0, result.stderr
    pairs_in_session_1 = (
        sqlite3.connect(adopted_db).execute("SELECT count(*) FROM scraped_pairs WHERE session_id = 1").fetchone()[0]
    )
    assert result.stdout.split() == ["1", str(pairs_in_session_1), str(pairs_in_session_1)]
    assert manage(adopted_db, "doctor", "--check", "search-index").returncode == 0


def test_the_migration_can_be_reversed_and_applied_again(migrated_db):
    assert manage(migrated_db, "migrate", "storage", "0001", "--no-input").returncode == 0
    db = sqlite3.connect(migrated_db)
    names = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
    db.execute("INSERT INTO scrape_sessions (source) VALUES ('x')")
    db.execute("INSERT INTO scraped_pairs (session_id, input_text, output_text) VALUES (1, 'while away', 'y')")
    db.commit()
    db.close()
    assert not names & set(search_index.INDEX_OBJECTS)
    assert manage(migrated_db, "migrate", "--no-input").returncode == 0
    result = manage(
        migrated_db, "shell", "-v", "0", "-c", "from storage import api; print(api.search_pairs('away')[0]['input'])"
    )
    assert result.stdout.strip() == "while away"
