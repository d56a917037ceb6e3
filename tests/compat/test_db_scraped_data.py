"""db.scraped_data as FineFoundry's scrapers, helpers/scrape_db.py, merge, build and training tabs use it."""

from __future__ import annotations

import json

import pytest

from storage.models import ScrapedPair, ScrapeSession


def test_create_scrape_session_takes_name_in_the_desktop_apps_place(ff):
    session_id = ff.scraped_data.create_scrape_session("reddit", "r/python", "chatml", {"k": "v"}, None, "my set")
    session = ff.scraped_data.get_scrape_session(session_id)
    assert session == {
        "id": session_id,
        "name": "my set",
        "source": "reddit",
        "source_details": "r/python",
        "dataset_format": "chatml",
        "pair_count": 0,
        "created_at": session["created_at"],
        "metadata": {"k": "v"},
    }
    assert session["created_at"]


def test_create_scrape_session_as_helpers_scrape_db_calls_it(ff):
    ids = [
        ff.scraped_data.create_scrape_session(
            source=source, source_details=None, dataset_format="standard", metadata=None, name=None
        )
        for source in ("4chan", "reddit", "stackexchange")
    ]
    assert ids == sorted(ids) and len(set(ids)) == 3
    session = ff.scraped_data.get_scrape_session(ids[0])
    assert session["source_details"] is None and session["name"] is None
    assert "metadata" not in session  # no metadata, no key, as the desktop app returns it


def test_add_scraped_pairs_counts_what_it_stored_and_skips_pairs_missing_a_side(ff):
    session_id = ff.scraped_data.create_scrape_session("test")
    pairs = [
        {"input": "Valid", "output": "Pair"},
        {"input": "", "output": "Missing input"},
        {"input": "Missing output", "output": ""},
        {"output": "no input key"},
        {"input": "Another valid", "output": "Pair", "source_url": "https://x/1", "board": "g", "thread_id": "12345"},
    ]
    assert ff.scraped_data.add_scraped_pairs(session_id, pairs) == 2
    assert ff.scraped_data.get_scrape_session(session_id)["pair_count"] == 2
    assert ff.scraped_data.get_pairs_for_session(session_id) == [
        {"input": "Valid", "output": "Pair"},
        {"input": "Another valid", "output": "Pair", "source_url": "https://x/1", "board": "g", "thread_id": "12345"},
    ]


def test_whitespace_only_sides_are_skipped_a_deliberate_difference(ff):
    # FineFoundry keeps {"input": "  ", ...} (it only skips empty strings); we skip it: a blank side trains nothing.
    session_id = ff.scraped_data.create_scrape_session("test")
    assert (
        ff.scraped_data.add_scraped_pairs(session_id, [{"input": "  ", "output": "A"}, {"input": "Q", "output": "\n"}])
        == 0
    )


def test_add_nothing_to_an_unknown_session_is_zero_and_adding_pairs_to_it_is_refused(ff):
    assert ff.scraped_data.add_scraped_pairs(999_999, []) == 0
    assert ff.scraped_data.add_scraped_pairs(999_999, [{"input": "", "output": "skipped"}]) == 0
    with pytest.raises(ValueError, match="scrape session 999999 does not exist"):
        ff.scraped_data.add_scraped_pairs(999_999, [{"input": "Q", "output": "A"}])
    assert ScrapedPair.objects.count() == 0


def test_pairs_page_in_insertion_order(ff):
    session_id = ff.scraped_data.create_scrape_session("test")
    ff.scraped_data.add_scraped_pairs(session_id, [{"input": f"Q{i}", "output": f"A{i}"} for i in range(10)])
    page = ff.scraped_data.get_pairs_for_session(session_id, limit=3, offset=5)
    assert [p["input"] for p in page] == ["Q5", "Q6", "Q7"]
    assert len(ff.scraped_data.get_pairs_for_session(session_id, 3)) == 3
    assert ff.scraped_data.get_pairs_for_session(ff.scraped_data.create_scrape_session("empty")) == []


def test_list_scrape_sessions_filters_limits_and_leaves_metadata_out(ff):
    for source in ["4chan", "reddit", "4chan"] + [f"s{i}" for i in range(7)]:
        ff.scraped_data.create_scrape_session(source, metadata={"m": 1})
    assert len(ff.scraped_data.list_scrape_sessions()) == 10
    assert len(ff.scraped_data.list_scrape_sessions(limit=5)) == 5
    chan = ff.scraped_data.list_scrape_sessions(source="4chan")
    assert len(chan) == 2 and {s["source"] for s in chan} == {"4chan"}
    assert set(chan[0]) == {"id", "name", "source", "source_details", "dataset_format", "pair_count", "created_at"}
    assert [s["id"] for s in chan] == sorted((s["id"] for s in chan), reverse=True)  # newest first
    assert ff.scraped_data.list_scrape_sessions("nothing", 100) == []


def test_export_session_to_json_writes_the_desktop_apps_file(ff, tmp_path):
    session_id = ff.scraped_data.create_scrape_session("test")
    pairs = [{"input": "日本語の質問", "output": "Ответ 🚀", "source_url": "https://x"}, {"input": "Q", "output": "A"}]
    ff.scraped_data.add_scraped_pairs(session_id, pairs)
    out = tmp_path / "export.json"
    assert ff.scraped_data.export_session_to_json(session_id, str(out)) == 2
    expected = [{"input": p["input"], "output": p["output"]} for p in pairs]
    assert out.read_text(encoding="utf-8") == json.dumps(expected, ensure_ascii=False, indent=2)


def test_delete_scrape_session_takes_its_pairs(ff):
    session_id = ff.scraped_data.create_scrape_session("test")
    ff.scraped_data.add_scraped_pairs(session_id, [{"input": f"Q{i}", "output": f"A{i}"} for i in range(5)])
    assert ff.scraped_data.delete_scrape_session(session_id) is True
    assert ff.scraped_data.get_scrape_session(session_id) is None
    assert ff.scraped_data.get_pairs_for_session(session_id) == []
    assert ff.scraped_data.delete_scrape_session(99_999) is False


def test_all_pairs_and_total_count_across_sessions(ff):
    assert ff.scraped_data.get_all_pairs() == [] and ff.scraped_data.get_total_pair_count() == 0
    first, second = ff.scraped_data.create_scrape_session("a"), ff.scraped_data.create_scrape_session("b")
    ff.scraped_data.add_scraped_pairs(first, [{"input": f"Q{i}", "output": f"A{i}", "x": 1} for i in range(3)])
    ff.scraped_data.add_scraped_pairs(second, [{"input": f"R{i}", "output": f"B{i}"} for i in range(5)])
    assert ff.scraped_data.get_total_pair_count() == 8
    assert ff.scraped_data.get_all_pairs(limit=4) == [{"input": f"Q{i}", "output": f"A{i}"} for i in range(3)] + [
        {"input": "R0", "output": "B0"}
    ]
    assert len(ff.scraped_data.get_all_pairs()) == 8


def test_random_prompts_are_inputs_of_that_session_only(ff):
    session_id = ff.scraped_data.create_scrape_session("test")
    other = ff.scraped_data.create_scrape_session("other")
    ff.scraped_data.add_scraped_pairs(session_id, [{"input": f"Q{i}", "output": f"A{i}"} for i in range(10)])
    ff.scraped_data.add_scraped_pairs(other, [{"input": "elsewhere", "output": "x"}])
    prompts = ff.scraped_data.get_random_prompts_for_session(session_id, count=5)
    assert len(prompts) == 5 and len(set(prompts)) == 5
    assert set(prompts) <= {f"Q{i}" for i in range(10)}
    assert sorted(ff.scraped_data.get_random_prompts_for_session(other)) == ["elsewhere"]
    assert ff.scraped_data.get_random_prompts_for_session(ff.scraped_data.create_scrape_session("empty")) == []
    assert ff.scraped_data.get_random_prompts_for_session(99_999, 5) == []


def test_session_metadata_with_quotes_newlines_and_unicode_round_trips(ff):
    metadata = {"key_with_quotes": 'value with "quotes"', "key_with_newlines": "line1\nline2", "u": "日本語"}
    session_id = ff.scraped_data.create_scrape_session(source="test", metadata=metadata)
    assert ff.scraped_data.get_scrape_session(session_id)["metadata"] == metadata
    assert ScrapeSession.objects.get(pk=session_id).metadata == metadata
