"""Removing duplicate pairs: exact and normalised, within and across sessions, the command and the API."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command

from storage import api
from storage.exceptions import InvalidInput, NotFound
from storage.models import ScrapedPair, ScrapeSession
from storage.search.queries import search_pairs
from storage.services import sessions
from storage.services.dedupe import normalized, remove_duplicates


def make_session(session_factory, pairs: list[tuple[str, str]], **kwargs) -> ScrapeSession:
    session = session_factory(**kwargs)
    sessions.add_scraped_pairs(session_id=session.pk, pairs=[{"input": i, "output": o} for i, o in pairs])
    session.refresh_from_db()
    return session


def texts(session: ScrapeSession) -> list[tuple[str, str]]:
    return list(session.pairs.order_by("id").values_list("input_text", "output_text"))


def pair_count(session: ScrapeSession) -> int:
    session.refresh_from_db()
    return session.pair_count


def test_exact_duplicates_go_and_the_earliest_stays(session_factory):
    session = make_session(session_factory, [("q", "a"), ("q", "b"), ("q", "a"), ("Q", "a"), ("q", "a")])
    first_id = session.pairs.order_by("id").first().pk
    result = remove_duplicates(session_ids=[session.pk])
    assert (result.removed, result.per_session) == (2, {session.pk: 2})
    assert texts(session) == [("q", "a"), ("q", "b"), ("Q", "a")]
    assert session.pairs.order_by("id").first().pk == first_id
    assert pair_count(session) == 3


@pytest.mark.parametrize(
    ("second", "duplicate"),
    [
        (("  Hello   World ", "Fine,\tthanks"), True),
        (("HELLO WORLD", "FINE, THANKS"), True),
        (("hello world", "Fine,\nthanks"), True),
        (("Straße", "x"), False),
        (("hello world", "fine thanks"), False),  # the comma differs
        (("hello world!", "Fine, thanks"), False),
    ],
)
def test_normalize_ignores_case_and_whitespace_in_input_and_output(session_factory, second, duplicate):
    session = make_session(session_factory, [("hello world", "Fine, thanks"), second])
    assert remove_duplicates(session_ids=[session.pk]).removed == 0
    assert remove_duplicates(session_ids=[session.pk], normalize=True).removed == int(duplicate)
    assert texts(session)[0] == ("hello world", "Fine, thanks")


def test_normalize_folds_case_beyond_ascii():
    assert normalized("  STRASSE\u00a0Übung ") == normalized("straße übung") == "strasse übung"


def test_across_sessions_removes_later_copies_from_other_sessions(session_factory):
    first = make_session(session_factory, [("q1", "a1"), ("q2", "a2")])
    second = make_session(session_factory, [("q1", "a1"), ("q3", "a3"), ("q3", "a3")])
    within = remove_duplicates(session_ids=[first.pk, second.pk], dry_run=True)
    assert within.per_session == {first.pk: 0, second.pk: 1}
    result = remove_duplicates(session_ids=[second.pk, first.pk], across_sessions=True)
    assert result.per_session == {first.pk: 0, second.pk: 2}
    assert texts(first) == [("q1", "a1"), ("q2", "a2")]
    assert texts(second) == [("q3", "a3")]
    assert (pair_count(first), pair_count(second)) == (2, 1)


def test_sessions_not_selected_are_never_touched(session_factory):
    kept = make_session(session_factory, [("q", "a"), ("q", "a")])
    cleaned = make_session(session_factory, [("q", "a"), ("q", "a")])
    remove_duplicates(session_ids=[cleaned.pk], across_sessions=True)
    assert (len(texts(kept)), len(texts(cleaned))) == (2, 1)


def test_dry_run_counts_and_deletes_nothing(session_factory):
    session = make_session(session_factory, [("q", "a")] * 4)
    result = remove_duplicates(session_ids=[session.pk], dry_run=True)
    assert (result.removed, result.dry_run) == (3, True)
    assert len(texts(session)) == 4 and pair_count(session) == 4


def test_pair_count_ends_exact_even_if_it_had_drifted(session_factory):
    session = make_session(session_factory, [("q", "a")] * 3)
    ScrapeSession.objects.filter(pk=session.pk).update(pair_count=99)
    remove_duplicates(session_ids=[session.pk])
    assert pair_count(session) == 1


def test_removed_pairs_are_no_longer_found_by_search(session_factory):
    session = make_session(session_factory, [("find me", "a")] * 3)
    assert len(search_pairs(query="find me")) == 3
    remove_duplicates(session_ids=[session.pk])
    assert [p.pk for p in search_pairs(query="find me")] == [session.pairs.get().pk]


@pytest.mark.parametrize(
    ("session_ids", "error", "message"),
    [
        ([], InvalidInput, "at least one session"),
        ("1", InvalidInput, "must be a list"),
        ([1.5], InvalidInput, "session id must be an integer"),
        ([0], InvalidInput, "at least 1"),
    ],
)
def test_bad_session_ids_are_refused(db, session_ids, error, message):
    with pytest.raises(error, match=message):
        remove_duplicates(session_ids=session_ids)


def test_an_unknown_session_is_refused_and_nothing_is_removed(session_factory):
    session = make_session(session_factory, [("q", "a")] * 2)
    with pytest.raises(NotFound, match="999999"):
        remove_duplicates(session_ids=[session.pk, 999_999])
    assert len(texts(session)) == 2


def test_command_reports_per_session(session_factory):
    first = make_session(session_factory, [("q", "a")] * 3, name="first")
    second = make_session(session_factory, [("Q ", "A")], name="second")
    out = call_command_output("dedupe_pairs", str(first.pk), str(second.pk), "--dry-run")
    assert f"session {first.pk} (first): 2" in out
    assert "Would remove 2 duplicate pairs from 2 sessions (nothing deleted: dry run)." in out
    assert len(texts(first)) == 3
    out = call_command_output("dedupe_pairs", "--all", "--normalize", "--across-sessions")
    assert "Removed 3 duplicate pairs" in out
    assert (len(texts(first)), len(texts(second))) == (1, 0)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "Give one or more SESSION_IDs, or --all"),
        (("1", "--all"), "Give one or more SESSION_IDs, or --all"),
        (("999999",), "scrape session 999999 does not exist"),
    ],
)
def test_command_refuses_bad_arguments(db, args, message):
    with pytest.raises(CommandError, match=message):
        call_command("dedupe_pairs", *args)


def test_api_dedupe_functions(session_factory):
    first = make_session(session_factory, [("q", "a")] * 2)
    second = make_session(session_factory, [("q", "a")] * 2)
    assert api.dedupe_session(first.pk, dry_run=True) == 1
    assert api.dedupe_sessions([first.pk, second.pk], across_sessions=True) == {first.pk: 1, second.pk: 2}
    assert ScrapedPair.objects.filter(session__in=[first, second]).count() == 1


def call_command_output(*args) -> str:
    from io import StringIO

    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (("Straße", "Grüße"), ("STRASSE", "GRÜSSE")),
        (("hello\u00a0world", "ok"), ("hello world", "ok")),
        (("ﬁne", "①"), ("fine", "1")),  # NFKC: ligature, circled digit
    ],
)
def test_normalized_dedupe_is_the_same_on_every_engine(session_factory, first, second):
    """The database removes exactly what `normalized` calls equal, whether SQLite or PostgreSQL runs it."""
    assert normalized(first[0]) == normalized(second[0]) and normalized(first[1]) == normalized(second[1])
    session = make_session(session_factory, [first, second, ("other", "pair")])
    assert remove_duplicates(session_ids=[session.pk], normalize=True).removed == 1
    assert texts(session) == [first, ("other", "pair")]
