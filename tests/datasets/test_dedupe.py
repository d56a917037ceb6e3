"""Removing duplicate pairs: exact and normalised, within and across sessions, the command and the API."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

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


@pytest.mark.sqlite_only("a plain sqlite3 connection (the desktop app) writes the file between the batches")
@pytest.mark.django_db(transaction=True)
def test_a_big_dedupe_commits_in_batches_and_what_changed_meanwhile_wins():
    import sqlite3

    session = ScrapeSession.objects.create(name="big", source="reddit")
    later = [{"input": "b", "output": "b"}, {"input": "c", "output": "c"}]
    sessions.add_scraped_pairs(session_id=session.pk, pairs=[{"input": "q", "output": "a"}] * 3001 + later)
    ids = dict(ScrapedPair.objects.filter(input_text__in=["b", "c"]).values_list("input_text", "id"))
    # The copies of b and c come last, so their deletes are planned for a later batch than the first.
    sessions.add_scraped_pairs(session_id=session.pk, pairs=later)
    desktop = sqlite3.connect(connection.settings_dict["NAME"], timeout=0)
    seen = []

    def desktop_app_writes_between_batches(done, total):
        seen.append((done, total, desktop.execute("SELECT count(*) FROM scraped_pairs").fetchone()[0]))
        if len(seen) == 1:
            with desktop:  # timeout=0: fails if dedupe still held the write lock
                desktop.execute("UPDATE scraped_pairs SET output_text = 'b, edited' WHERE id = ?", [ids["b"]])
                desktop.execute("DELETE FROM scraped_pairs WHERE id = ?", [ids["c"]])
                desktop.execute(
                    "INSERT INTO scraped_pairs (session_id, input_text, output_text) VALUES (?, 'q', 'a')",
                    [session.pk],
                )

    result = remove_duplicates(session_ids=[session.pk], progress=desktop_app_writes_between_batches)
    desktop.close()
    assert len(seen) >= 2 and seen[-1][:2] == (3002, 3002)
    assert seen[0][2] < 3005  # the first batch was committed, visible to the desktop app, before the rest ran
    assert (result.removed, result.changed) == (3000, 2)
    assert sorted(session.pairs.values_list("input_text", "output_text")) == [
        ("b", "b"),  # its kept pair was edited: no longer a duplicate
        ("b", "b, edited"),
        ("c", "c"),  # its kept pair was deleted: it is the only one left
        ("q", "a"),
        ("q", "a"),  # the desktop app's insert came after the plan: not touched
    ]
    assert pair_count(session) == 5


@pytest.mark.sqlite_only("traces SQLite's write transactions in the child process")
def test_the_command_finds_duplicates_without_the_write_lock_and_deletes_in_short_transactions(migrated_db, tmp_path):
    import json
    import sqlite3

    from tests.helpers.processes import PROJECT_ROOT, manage

    desktop = sqlite3.connect(migrated_db)
    with desktop:
        session = desktop.execute("INSERT INTO scrape_sessions (source, pair_count) VALUES ('reddit', 30001)").lastrowid
        desktop.executemany(
            "INSERT INTO scraped_pairs (session_id, input_text, output_text) VALUES (?, 'q', 'a')",
            [(session,)] * 30_001,
        )
    desktop.close()
    traces = tmp_path / "traces"
    traces.mkdir()
    tracing = PROJECT_ROOT / "tests" / "helpers" / "write_tracing"
    result = manage(
        migrated_db,
        "dedupe_pairs",
        str(session),
        env={"PYTHONPATH": str(tracing), "FINEFOUNDRY_WRITE_TRACE_DIR": str(traces)},
    )
    assert result.returncode == 0, result.stderr
    assert "Removed 30,000 duplicate pairs from 1 session." in result.stdout
    (trace,) = [json.loads(path.read_text()) for path in traces.glob("*.json")]
    # Old code: one transaction that began by reading the sessions and held the lock through the whole search.
    assert trace["transactions"] >= 3
    assert "dedupe_doomed_pairs (id, session_id, kept)" not in trace["longest_first_statement"]
