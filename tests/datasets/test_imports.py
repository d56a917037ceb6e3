"""import_pairs: round trips through every export format, FineFoundry's files, system prompts, appending."""

from __future__ import annotations

import csv
import io
import json
import sqlite3

import pytest
from django.core.management import call_command

from storage.exceptions import StorageError
from storage.models import ScrapedPair, ScrapeSession
from storage.services.datasets import exporting, readers
from storage.services.datasets.importing import import_pairs
from tests.helpers.datasets import AWKWARD_PAIRS, awkward_session, pairs_of
from tests.helpers.processes import manage

pytestmark = pytest.mark.django_db


@pytest.fixture
def session(session_factory):
    return awkward_session(session_factory, source="stackexchange")


def run_import(path, *args) -> tuple[ScrapeSession, str]:
    out = io.StringIO()
    call_command("import_pairs", str(path), *args, stdout=out)
    return ScrapeSession.objects.order_by("-id").first(), out.getvalue()


@pytest.mark.parametrize("fmt", list(exporting.FORMATS))
@pytest.mark.parametrize("how", ["auto", "named"])
def test_export_then_import_round_trips_exactly(tmp_path, session, fmt, how):
    target = tmp_path / f"round{exporting.FORMATS[fmt].extension}"
    call_command("export_session", str(session.pk), "--format", fmt, "-o", str(target), stdout=io.StringIO())
    imported, out = run_import(target, *(["--format", fmt] if how == "named" else []))
    assert imported.pk != session.pk
    assert pairs_of(imported.pk) == pairs_of(session.pk)
    assert imported.pair_count == len(AWKWARD_PAIRS)
    assert (imported.source, imported.name) == ("import", target.name)
    assert imported.dataset_format == ("chatml" if fmt in ("chatml", "sharegpt") else "standard")
    assert f"Imported {len(AWKWARD_PAIRS)} pairs" in out
    assert f"into new session {imported.pk}" in out


@pytest.mark.parametrize("fmt", ["chatml", "sharegpt", "alpaca"])
def test_a_shared_system_prompt_lands_in_the_session_metadata(tmp_path, session, fmt):
    target = tmp_path / "with-prompt.jsonl"
    call_command("export_session", str(session.pk), "--format", fmt, "--system-prompt", "Answer like a pirate.", "-o", str(target), stdout=io.StringIO())  # fmt: skip
    imported, _ = run_import(target, "--source", "synthetic", "--name", "Pirates")
    assert pairs_of(imported.pk) == pairs_of(session.pk)
    assert imported.metadata["system_prompt"] == "Answer like a pirate."
    assert (imported.source, imported.name) == ("synthetic", "Pirates")
    assert not ScrapedPair.objects.filter(session=imported, metadata__isnull=False).exists()


def test_finefoundry_standard_json_keeps_source_url_and_extra_keys(tmp_path):
    pairs = [
        {"input": "Q1", "output": "A1", "source_url": "https://boards.4chan.org/g/thread/1", "thread_id": 77},
        {"input": "Q2 ✓", "output": "A2"},
    ]
    path = tmp_path / "scraped_training_data.json"
    path.write_text(json.dumps(pairs, ensure_ascii=False, indent=2), encoding="utf-8")
    imported, _ = run_import(path)
    stored = list(
        ScrapedPair.objects.filter(session=imported).order_by("id").values_list("input_text", "source_url", "metadata")
    )
    assert stored == [("Q1", "https://boards.4chan.org/g/thread/1", {"thread_id": 77}), ("Q2 ✓", None, None)]


def test_finefoundry_multi_turn_chatml_keeps_earlier_turns_as_context(tmp_path):
    records = [
        {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]},
        {
            "messages": [
                {"role": "user", "content": "first question"},
                {"role": "assistant", "content": "first answer"},
                {"role": "user", "content": "follow-up"},
                {"role": "assistant", "content": "final answer"},
            ]
        },
    ]
    path = tmp_path / "chat.json"
    path.write_text(json.dumps(records, indent=2), encoding="utf-8")
    imported, out = run_import(path)
    assert "chatml records, json" in out
    assert imported.dataset_format == "chatml"
    stored = list(
        ScrapedPair.objects.filter(session=imported).order_by("id").values_list("input_text", "output_text", "metadata")
    )
    assert stored == [
        ("Hi", "Hello!", None),
        ("follow-up", "final answer", {"context": records[1]["messages"][:2]}),
    ]


def test_differing_system_prompts_stay_with_their_pairs(tmp_path):
    path = tmp_path / "mixed.jsonl"
    lines = [
        {
            "messages": [
                {"role": "system", "content": "Be terse."},
                {"role": "user", "content": "Q1"},
                {"role": "assistant", "content": "A1"},
            ]
        },
        {"messages": [{"role": "user", "content": "Q2"}, {"role": "assistant", "content": "A2"}]},
    ]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    imported, _ = run_import(path)
    assert "system_prompt" not in imported.metadata
    assert list(ScrapedPair.objects.filter(session=imported).order_by("id").values_list("metadata", flat=True)) == [
        {"system_prompt": "Be terse."},
        None,
    ]


def test_third_party_alpaca_with_instruction_and_input(tmp_path):
    path = tmp_path / "alpaca_data.json"
    records = [
        {"instruction": "Translate to French.", "input": "Good morning", "output": "Bonjour"},
        {"instruction": "Name a prime number.", "input": "", "output": "7"},
    ]
    path.write_text(json.dumps(records), encoding="utf-8")
    imported, _ = run_import(path)
    stored = list(
        ScrapedPair.objects.filter(session=imported).order_by("id").values_list("input_text", "output_text", "metadata")
    )
    assert stored == [
        ("Good morning", "Bonjour", {"system_prompt": "Translate to French."}),
        ("Name a prime number.", "7", None),
    ]


def test_csv_from_excel_with_bom_and_extra_columns(tmp_path):
    path = tmp_path / "sheet.csv"
    path.write_bytes(
        '\ufeffid,input,output,source_url\r\n1,Q one,"A, one",https://x.example/1\r\n2,Q two,A two,\r\n'.encode()
    )
    imported, _ = run_import(path)
    stored = list(
        ScrapedPair.objects.filter(session=imported)
        .order_by("id")
        .values_list("input_text", "output_text", "source_url", "metadata")
    )
    assert stored == [("Q one", "A, one", "https://x.example/1", {"id": "1"}), ("Q two", "A two", None, {"id": "2"})]


def test_appending_to_an_existing_session(tmp_path, session):
    path = tmp_path / "more.jsonl"
    path.write_text('{"input": "extra q", "output": "extra a"}\n\n{"input": "q2", "output": "a2"}\n', encoding="utf-8")
    imported, out = run_import(path, "--session", str(session.pk))
    assert imported.pk == session.pk
    assert pairs_of(session.pk)[-2:] == [("extra q", "extra a"), ("q2", "a2")]
    session.refresh_from_db()
    assert session.pair_count == len(AWKWARD_PAIRS) + 2
    assert f"Imported 2 pairs (standard records, jsonl) into session {session.pk}." in out


def test_json_list_is_read_in_pieces_across_multibyte_characters(tmp_path, monkeypatch, session_factory):
    # Reads of 7 bytes split records, strings and four-byte characters at every possible place.
    monkeypatch.setattr(readers, "READ_SIZE", 7)
    pairs = [{"input": f'🚀 q{i} ünï "quoted" \\ ', "output": f"{i}" * (i + 1)} for i in range(40)]
    path = tmp_path / "pieces.json"
    path.write_text(json.dumps(pairs, ensure_ascii=False, indent=2), encoding="utf-8")
    result = import_pairs(path=path)
    assert pairs_of(result.session_id) == [(p["input"], p["output"]) for p in pairs]


def test_numbers_at_a_read_boundary_are_not_cut_short(tmp_path, monkeypatch):
    monkeypatch.setattr(readers, "READ_SIZE", 3)
    path = tmp_path / "numbers.json"
    path.write_text('[12345, {"input": "q", "output": "a"}]', encoding="utf-8")
    with pytest.raises(ValueError, match=r"record 1 \(line 1\): must be an object, not a number"):
        import_pairs(path=path)


@pytest.mark.parametrize("container", ["jsonl", "csv"])
def test_skip_invalid_imports_the_rest_and_names_each_skipped_record(tmp_path, container):
    db = tmp_path / "finefoundry.db"
    assert manage(db, "migrate", "-v", "0").returncode == 0
    records = [("q1", "a1"), ("", "a2"), ("q3", "a3"), ("q4", "   "), ("q5", "a5")]
    path = tmp_path / f"messy.{container}"
    if container == "jsonl":
        path.write_text("".join(json.dumps({"input": q, "output": a}) + "\n" for q, a in records), encoding="utf-8")
        lines = [2, 4]
    else:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(["input", "output"])
        writer.writerows(records)
        path.write_text(buffer.getvalue(), encoding="utf-8")
        lines = [3, 5]

    refused = manage(db, "import_pairs", str(path))
    assert refused.returncode == 1 and f"{path}: record 2 (line {lines[0]}):" in refused.stderr
    assert "input" in refused.stderr

    result = manage(db, "import_pairs", str(path), "--skip-invalid")
    assert result.returncode == 0, result.stderr
    skipped = result.stderr.splitlines()
    assert [line.split(":")[0:2] for line in skipped] == [
        ["skipped " + str(path), f" record 2 (line {lines[0]})"],
        ["skipped " + str(path), f" record 4 (line {lines[1]})"],
    ]
    assert "input" in skipped[0] and "output" in skipped[1]
    assert "Imported 3 pairs" in result.stdout and "skipped 2 invalid records." in result.stdout
    with sqlite3.connect(db) as plain:
        stored = plain.execute("SELECT input_text, output_text FROM scraped_pairs ORDER BY id").fetchall()
        counts = plain.execute("SELECT pair_count FROM scrape_sessions").fetchall()
    plain.close()
    assert stored == [("q1", "a1"), ("q3", "a3"), ("q5", "a5")] and counts == [(3,)]


def test_skip_invalid_still_refuses_a_file_with_no_valid_record(tmp_path):
    path = tmp_path / "blank.jsonl"
    path.write_text('{"input": "", "output": "a"}\n{"input": "q", "output": ""}\n', encoding="utf-8")
    with pytest.raises(StorageError, match="no valid record to import; all 2 are invalid"):
        import_pairs(path=path, skip_invalid=True)
    assert not ScrapeSession.all_objects.exists()
