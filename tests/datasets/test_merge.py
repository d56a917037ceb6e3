"""Merging sessions into a new one: order, what is copied, what is recorded, and what is refused."""

from __future__ import annotations

import pytest

from storage import api
from storage.exceptions import InvalidInput, NotFound
from storage.models import ImportInProgress, ScrapedPair, ScrapeSession
from storage.search.queries import search_pairs
from storage.services import sessions
from storage.services.datasets import import_sessions
from storage.services.merge import merge_sessions


def make_session(session_factory, prefix: str, count: int, **kwargs) -> ScrapeSession:
    session = session_factory(**kwargs)
    pairs = [{"input": f"{prefix}{i}", "output": f"answer {prefix}{i}"} for i in range(count)]
    sessions.add_scraped_pairs(session_id=session.pk, pairs=pairs)
    session.refresh_from_db()
    return session


def inputs(session: ScrapeSession) -> list[str]:
    return list(session.pairs.order_by("id").values_list("input_text", flat=True))


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("concatenate", ["b0", "a0", "a1", "a2", "c0", "c1"]),
        ("interleave", ["b0", "a0", "c0", "a1", "c1", "a2"]),
    ],
)
def test_pairs_come_in_the_order_of_the_mode_and_of_the_ids_given(session_factory, mode, expected):
    a = make_session(session_factory, "a", 3)
    b = make_session(session_factory, "b", 1)
    c = make_session(session_factory, "c", 2)
    merged = merge_sessions(session_ids=[b.pk, a.pk, c.pk], mode=mode)
    assert inputs(merged) == expected
    assert merged.pair_count == 6 == merged.pairs.count()


@pytest.mark.parametrize("mode", ["concatenate", "interleave"])
def test_a_merge_too_big_for_one_transaction_gives_the_same_session(session_factory, mode):
    a = make_session(session_factory, "a", 15_000)
    b = make_session(session_factory, "b", 9_000)
    c = make_session(session_factory, "c", 1)
    assert a.pair_count + b.pair_count + c.pair_count > import_sessions.ATOMIC_MOVE_ROWS  # written in batches
    merged = merge_sessions(session_ids=[c.pk, a.pk, b.pk], mode=mode, name="big")
    if mode == "concatenate":
        expected = inputs(c) + inputs(a) + inputs(b)
    else:
        turns = [["c0", "a0", "b0"]] + [[f"a{i}"] + ([f"b{i}"] if i < 9_000 else []) for i in range(1, 15_000)]
        expected = [text for turn in turns for text in turn]
    assert inputs(merged) == expected
    assert merged.pair_count == 24_001 == merged.pairs.count()
    assert (merged.name, merged.source, merged.metadata) == (
        "big",
        "merge",
        {"merged_from": [c.pk, a.pk, b.pk], "mode": mode},
    )
    assert ImportInProgress.objects.count() == 0
    assert api.get_scrape_session(merged.pk)["pair_count"] == 24_001


def test_the_new_session_records_its_sources_and_the_sources_stay(session_factory):
    a = make_session(session_factory, "a", 2, name="Reddit run")
    b = make_session(session_factory, "b", 2, source="synthetic")
    merged = merge_sessions(session_ids=[a.pk, b.pk], mode="interleave")
    merged.refresh_from_db()
    assert merged.source == "merge"
    assert merged.metadata == {"merged_from": [a.pk, b.pk], "mode": "interleave"}
    assert merged.name == f"Merge of Reddit run + synthetic #{b.pk}"
    assert (inputs(a), inputs(b)) == (["a0", "a1"], ["b0", "b1"])
    a.refresh_from_db()
    assert a.pair_count == 2


def test_source_url_and_metadata_are_copied(session_factory):
    a = session_factory()
    b = session_factory()
    sessions.add_scraped_pairs(
        session_id=a.pk, pairs=[{"input": "q", "output": "a", "source_url": "https://x.org/1", "thread_id": 7}]
    )
    merged = merge_sessions(session_ids=[a.pk, b.pk], name="Mine")
    pair = merged.pairs.get()
    assert (pair.source_url, pair.metadata, merged.name) == ("https://x.org/1", {"thread_id": 7}, "Mine")


@pytest.mark.parametrize(
    ("formats", "expected"),
    [(["chatml", "chatml"], "chatml"), (["chatml", "standard"], "standard")],
)
def test_dataset_format_is_kept_when_the_sources_agree(session_factory, formats, expected):
    ids = [session_factory(dataset_format=fmt).pk for fmt in formats]
    assert merge_sessions(session_ids=ids).dataset_format == expected


def test_merged_pairs_are_found_by_search_at_once(session_factory):
    a = make_session(session_factory, "needle", 1)
    b = make_session(session_factory, "hay", 1)
    merged = merge_sessions(session_ids=[a.pk, b.pk])
    assert [p.input_text for p in search_pairs(query="needle", session_id=merged.pk)] == ["needle0"]


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"session_ids": [1]}, InvalidInput, "at least two sessions, got 1"),
        ({"session_ids": []}, InvalidInput, "at least two sessions, got 0"),
        ({"session_ids": [1, 1]}, InvalidInput, "session 1 given more than once"),
        ({"session_ids": "12"}, InvalidInput, "must be a list"),
        ({"session_ids": [1, "2"]}, InvalidInput, "session id must be an integer"),
        ({"session_ids": [1, 2], "mode": "zip"}, InvalidInput, "mode must be one of concatenate, interleave"),
        ({"session_ids": [1, 2], "name": 5}, InvalidInput, "name must be a string"),
    ],
)
def test_bad_arguments_are_refused_before_anything_is_written(db, kwargs, error, message):
    with pytest.raises(error, match=message):
        merge_sessions(**kwargs)
    assert not ScrapeSession.objects.filter(source="merge").exists()


def test_unknown_sessions_are_named_and_nothing_is_created(session_factory):
    a = make_session(session_factory, "a", 2)
    with pytest.raises(NotFound, match="scrape sessions 999998, 999999 do not exist"):
        merge_sessions(session_ids=[a.pk, 999_998, 999_999])
    assert ScrapeSession.objects.count() == 1
    assert ScrapedPair.objects.count() == 2


def test_api_merge_sessions_returns_the_new_id(session_factory):
    a = make_session(session_factory, "a", 1)
    b = make_session(session_factory, "b", 1)
    merged_id = api.merge_sessions([a.pk, b.pk], mode="interleave", name="Both")
    assert api.get_scrape_session(merged_id)["pair_count"] == 2
    assert [p["input"] for p in api.get_pairs_for_session(merged_id)] == ["a0", "b0"]
