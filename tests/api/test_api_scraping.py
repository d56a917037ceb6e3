"""storage.api scrape sessions and pairs: FineFoundry's shapes, all-or-nothing writes, exact counts."""

from __future__ import annotations

import json

import pytest
from django.db import connection

from storage import api
from storage.exceptions import InvalidInput, NotFound
from storage.models import ScrapedPair, ScrapeSession

pytestmark = pytest.mark.django_db


def pair_rows() -> list[tuple]:
    return list(ScrapedPair.objects.order_by("id").values_list("session_id", "input_text", "output_text"))


def test_create_session_returns_int_and_stores_fields():
    session_id = api.create_scrape_session("4chan", "boards=pol", metadata={"boards": ["pol"]}, name="pol dump ✓")
    assert isinstance(session_id, int)
    session = api.get_scrape_session(session_id)
    assert session["source"] == "4chan"
    assert session["source_details"] == "boards=pol"
    assert session["dataset_format"] == "standard"
    assert session["pair_count"] == 0
    assert session["metadata"] == {"boards": ["pol"]}
    assert session["name"] == "pol dump ✓"
    # Filled by the database default, in the space-separated family that sorts with SQLite's own.
    assert session["created_at"][10] == " "


@pytest.mark.parametrize(
    ("pair", "stored"),
    [
        ({"input": "Q", "output": "A"}, 1),
        ({"input": "Q", "output": ""}, 0),
        ({"input": "", "output": "A"}, 0),
        ({"output": "A"}, 0),
        ({"input": "Q", "output": None}, 0),
        ({"input": "   ", "output": "A"}, 0),
    ],
)
def test_add_scraped_pairs_skips_pairs_missing_a_side(session_factory, pair, stored):
    session = session_factory()
    assert api.add_scraped_pairs(session.pk, [pair]) == stored
    session.refresh_from_db()
    assert session.pair_count == stored


def test_extra_keys_become_metadata_and_are_flattened_back(session_factory):
    session = session_factory()
    pairs = [
        {"input": "Q1", "output": "A1", "source_url": "https://x/1", "thread_id": 7, "tags": ["a", "ü"]},
        {"input": "Q2", "output": "A2"},
    ]
    api.add_scraped_pairs(session.pk, pairs)
    assert api.get_pairs_for_session(session.pk) == pairs
    stored = ScrapedPair.objects.order_by("id").values_list("source_url", "metadata")
    assert list(stored) == [("https://x/1", {"thread_id": 7, "tags": ["a", "ü"]}), (None, None)]
    with connection.cursor() as cursor:
        cursor.execute("SELECT metadata_json FROM scraped_pairs ORDER BY id LIMIT 1")
        # UTF-8 unescaped, as the desktop app writes it.
        assert json.loads(cursor.fetchone()[0]) == {"thread_id": 7, "tags": ["a", "ü"]}


def test_pair_count_is_exact_across_batches(session_factory):
    session = session_factory()
    api.add_scraped_pairs(session.pk, [{"input": f"q{i}", "output": f"a{i}"} for i in range(150)])
    api.add_scraped_pairs(session.pk, [{"input": "q", "output": "a"}, {"input": "", "output": "a"}])
    assert api.get_scrape_session(session.pk)["pair_count"] == 151 == ScrapedPair.objects.count()


def test_add_scraped_pairs_accepts_a_generator(session_factory):
    session = session_factory()
    assert api.add_scraped_pairs(session.pk, ({"input": f"q{i}", "output": "a"} for i in range(3))) == 3


@pytest.mark.parametrize(
    ("pairs", "message"),
    [
        ([{"input": "ok", "output": "ok"}, {"input": 5, "output": "A"}], "pair 1: 'input' must be a string, not int"),
        ([{"input": "Q", "output": ["A"]}], "pair 0: 'output' must be a string, not list"),
        ([{"input": "Q", "output": "A", "extra": object()}], "pair 0 metadata is not JSON-serialisable"),
        ([{"input": "Q", "output": "A", "source_url": 3}], "pair 0: 'source_url' must be a string"),
        ([{"input": "Q\x00", "output": "A"}], "pair 0: 'input' contains a NUL character"),
        ([{"input": "Q" * 1_000_001, "output": "A"}], "pair 0: 'input' is 1,000,001 characters"),
        ([("Q", "A")], "pair 0 must be a dict"),
        ("not a list", "pairs must be a list of dicts"),
        ({"input": "Q", "output": "A"}, "pairs must be a list of dicts"),
    ],
)
def test_add_scraped_pairs_is_all_or_nothing(session_factory, pairs, message):
    session = session_factory(pairs=2)
    before = pair_rows()
    with pytest.raises(InvalidInput, match=message):
        api.add_scraped_pairs(session.pk, pairs)
    assert pair_rows() == before
    session.refresh_from_db()
    assert session.pair_count == 2


@pytest.mark.parametrize("bad", [{"input": "Q", "output": "A\x00"}, {"input": "Q", "output": 7}])
def test_a_bad_pair_after_thousands_of_good_ones_writes_nothing(session_factory, bad):
    """On PostgreSQL pairs stream into the COPY a chunk at a time (sessions.PAIR_CHUNK) while later
    chunks are still being checked: a bad pair chunks after the first must still leave nothing written."""
    from storage.services.sessions import PAIR_CHUNK

    session = session_factory(pairs=2)
    before = pair_rows()
    position = 2 * PAIR_CHUNK + 17
    pairs = ({"input": f"q{i}", "output": "a"} if i != position else bad for i in range(3 * PAIR_CHUNK))
    with pytest.raises(InvalidInput, match=f"pair {position}: 'output'"):
        api.add_scraped_pairs(session.pk, pairs)
    assert pair_rows() == before
    session.refresh_from_db()
    assert session.pair_count == 2
    assert api.add_scraped_pairs(session.pk, [{"input": "after", "output": "the failure"}]) == 1


def test_many_pairs_for_a_missing_session_report_the_bad_pair_first():
    pairs = [{"input": f"q{i}", "output": "a"} for i in range(PAIRS_FOR_ORDER)] + [{"input": 1, "output": "a"}]
    with pytest.raises(InvalidInput, match=f"pair {PAIRS_FOR_ORDER}: 'input'"):
        api.add_scraped_pairs(999, pairs)
    with pytest.raises(NotFound, match="scrape session 999 does not exist"):
        api.add_scraped_pairs(999, pairs[:-1])
    assert ScrapedPair.objects.count() == 0


PAIRS_FOR_ORDER = 12_000


@pytest.mark.parametrize("session_id", [999, "1", None, True, -1])
def test_add_scraped_pairs_to_unknown_or_malformed_session_id(session_id):
    with pytest.raises(ValueError):
        api.add_scraped_pairs(session_id, [{"input": "Q", "output": "A"}])
    assert ScrapedPair.objects.count() == 0


def test_add_scraped_pairs_to_missing_session_names_it():
    with pytest.raises(NotFound, match="scrape session 999 does not exist"):
        api.add_scraped_pairs(999, [{"input": "Q", "output": "A"}])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"source": ""}, "source must not be empty"),
        ({"source": 4}, "source must be a string"),
        ({"source": "x", "metadata": ["not", "a dict"]}, "metadata must be a dict"),
        ({"source": "x", "metadata": {"f": {1}}}, "metadata is not JSON-serialisable"),
        ({"source": "x", "source_details": 5}, "source_details must be a string"),
    ],
)
def test_create_scrape_session_rejects_bad_input(kwargs, message):
    with pytest.raises(InvalidInput, match=message):
        api.create_scrape_session(**kwargs)
    assert ScrapeSession.objects.count() == 0


def test_get_pairs_for_session_limit_and_offset_in_insertion_order(session_factory):
    session = session_factory(pairs=10)
    page = api.get_pairs_for_session(session.pk, limit=3, offset=4)
    assert [p["input"] for p in page] == ["question 4", "question 5", "question 6"]
    # limit 0 or None means all, as in the desktop app.
    assert len(api.get_pairs_for_session(session.pk, limit=0)) == 10
    assert len(api.get_pairs_for_session(session.pk)) == 10


@pytest.mark.parametrize(("limit", "offset"), [(-1, 0), (5, -2), ("5", 0)])
def test_get_pairs_for_session_rejects_negative_or_non_int_paging(session_factory, limit, offset):
    session = session_factory(pairs=1)
    with pytest.raises(InvalidInput):
        api.get_pairs_for_session(session.pk, limit=limit, offset=offset)


def test_list_sessions_newest_first_with_stable_tie_break(session_factory):
    first = session_factory(source="reddit")
    second = session_factory(source="4chan")
    third = session_factory(source="reddit")
    # All three were created within the same second: id breaks the tie.
    with connection.cursor() as cursor:
        cursor.execute("UPDATE scrape_sessions SET created_at = '2025-01-01 10:00:00'")
    assert [s["id"] for s in api.list_scrape_sessions()] == [third.pk, second.pk, first.pk]
    assert [s["id"] for s in api.list_scrape_sessions(source="reddit")] == [third.pk, first.pk]
    assert [s["id"] for s in api.list_scrape_sessions(limit=1)] == [third.pk]


def test_list_sessions_orders_across_both_timestamp_formats(session_factory):
    older = session_factory()
    newer = session_factory()
    with connection.cursor() as cursor:
        # Same day: as text, 'T' sorts after ' ', which would put the older row first.
        cursor.execute("UPDATE scrape_sessions SET created_at = '2025-01-01T09:00:00.000001' WHERE id = %s", [older.pk])
        cursor.execute("UPDATE scrape_sessions SET created_at = '2025-01-01 10:00:00' WHERE id = %s", [newer.pk])
    assert [s["id"] for s in api.list_scrape_sessions()] == [newer.pk, older.pk]
    assert api.get_scrape_session(older.pk)["created_at"] == "2025-01-01 09:00:00.000001"


def test_get_scrape_session_missing_returns_none():
    assert api.get_scrape_session(12345) is None


def test_delete_session_deletes_its_pairs_only(session_factory):
    keep = session_factory(pairs=3)
    drop = session_factory(pairs=5)
    assert api.delete_scrape_session(drop.pk) is True
    assert api.delete_scrape_session(drop.pk) is False
    assert set(ScrapedPair.objects.values_list("session_id", flat=True)) == {keep.pk}
    assert ScrapedPair.objects.count() == 3


def test_export_session_to_json_matches_finefoundry_bytes(session_factory, tmp_path):
    session = session_factory()
    pairs = [{"input": "Grüß dich\n", "output": 'He said "hi" 🚀', "thread_id": 1}, {"input": "Q", "output": "A"}]
    api.add_scraped_pairs(session.pk, pairs)
    target = tmp_path / "out.json"
    assert api.export_session_to_json(session.pk, str(target)) == 2
    expected = json.dumps([{"input": p["input"], "output": p["output"]} for p in pairs], ensure_ascii=False, indent=2)
    assert target.read_bytes() == expected.encode("utf-8")


def test_export_empty_session_writes_empty_list(session_factory, tmp_path):
    session = session_factory()
    target = tmp_path / "out.json"
    assert api.export_session_to_json(session.pk, str(target)) == 0
    assert json.loads(target.read_text()) == []


def test_export_unknown_session_writes_nothing(tmp_path):
    target = tmp_path / "out.json"
    with pytest.raises(NotFound):
        api.export_session_to_json(999, str(target))
    assert not target.exists()


def test_get_all_pairs_and_total_count(session_factory):
    session_factory(pairs=2)
    session_factory(pairs=3)
    assert api.get_total_pair_count() == 5
    assert [p["input"] for p in api.get_all_pairs(limit=2)] == ["question 0", "question 1"]
    assert len(api.get_all_pairs()) == 5
