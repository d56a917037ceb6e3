"""CSV exports keep texts exact, warn about cells a spreadsheet would run as formulas, and defuse them on request."""

from __future__ import annotations

import csv
import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from storage import api

pytestmark = pytest.mark.django_db

# OWASP's CSV injection prefixes, and texts that only look close.
FORMULAS = ["=cmd|' /C calc'!A0", "@SUM(1+1)*cmd|' /C calc'!A0", "+1-2", "-2+3", "\tTAB", "\rCR"]
HARMLESS = ["What is 1+1?", "a = b", " =not first", "'quoted"]


@pytest.fixture
def session_id() -> int:
    session = api.create_scrape_session("reddit", "formulas")
    pairs = [{"input": text, "output": "fine"} for text in FORMULAS + HARMLESS]
    assert api.add_scraped_pairs(session, pairs) == len(pairs)
    return session


def export_csv(tmp_path, session_id, *options) -> tuple[list[str], str]:
    target = tmp_path / "out.csv"
    err = io.StringIO()
    call_command(
        "export_session",
        str(session_id),
        "--format",
        "csv",
        "-o",
        str(target),
        *options,
        stdout=io.StringIO(),
        stderr=err,
    )
    with target.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return [row["input"] for row in rows], err.getvalue()


def test_csv_keeps_the_texts_exact_and_warns_with_the_count(tmp_path, session_id):
    inputs, err = export_csv(tmp_path, session_id)
    assert inputs == FORMULAS + HARMLESS
    assert f"Warning: {len(FORMULAS)} cells start with =, +, -, @, a tab or a carriage return" in err
    assert "--excel-safe" in err


def test_excel_safe_prefixes_exactly_the_formula_cells(tmp_path, session_id):
    inputs, err = export_csv(tmp_path, session_id, "--excel-safe")
    assert inputs == ["'" + text for text in FORMULAS] + HARMLESS
    assert "Warning" not in err and f"Prefixed {len(FORMULAS)} formula-like cells" in err


def test_excel_safe_also_applies_to_standard_output(session_id):
    out, err = io.StringIO(), io.StringIO()
    call_command(
        "export_session", str(session_id), "--format", "csv", "-o", "-", "--excel-safe", stdout=out, stderr=err
    )
    rows = list(csv.DictReader(io.StringIO(out.getvalue(), newline="")))
    assert rows[0]["input"] == "'" + FORMULAS[0]


def test_a_clean_csv_export_prints_no_warning(tmp_path):
    session = api.create_scrape_session("reddit", "clean")
    api.add_scraped_pairs(session, [{"input": "Q?", "output": "A."}])
    _, err = export_csv(tmp_path, session)
    assert err == ""


def test_excel_safe_is_refused_for_other_formats(tmp_path, session_id):
    with pytest.raises(CommandError, match="excel-safe applies to csv only, not jsonl"):
        call_command("export_session", str(session_id), "--format", "jsonl", "-o", str(tmp_path / "x"), "--excel-safe")
    assert not (tmp_path / "x").exists()
