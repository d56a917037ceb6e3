"""scan_pairs and exports with --redact / --drop-flagged, run as users run them: manage.py on a real database file."""

from __future__ import annotations

import json
import sqlite3

import pytest

from storage.services.datasets import exporting
from tests.helpers.datasets import add_pairs_directly, copy_test_database, manage
from tests.helpers.export_records import as_pair, read_records

pytestmark = pytest.mark.django_db(transaction=True)

DESKTOP_TOKEN = "hf_DesktopWroteThisTokenAbc123"
PLAIN_SECRET = "proxy-pass-9f8e7d6c"  # no token shape: only found because it is a stored secret setting

PAIRS = [
    ("Write to john.doe@example.com please", "Sure, or call 415-555-0132."),
    ("What is 2+2?", "4, see version 1.2.3.4 notes."),
    (f"my proxy password is {PLAIN_SECRET}", f"and my token {DESKTOP_TOKEN}"),
    ("server 10.0.0.7 and 2001:db8::7", "card 4111 1111 1111 1111"),
    ("Nothing here", "still nothing, 12:30:45 on 2024-01-15"),
]


@pytest.fixture
def database(tmp_path):
    db = copy_test_database(tmp_path / "scan.db")
    session_id = add_pairs_directly(db, PAIRS, source="reddit")
    # The desktop app stores its settings with plain sqlite3: the HF token as plain text, others as JSON.
    desktop = sqlite3.connect(db)
    with desktop:
        desktop.execute("INSERT INTO settings (key, value) VALUES ('huggingface.token', ?)", (DESKTOP_TOKEN,))
        desktop.execute("INSERT INTO settings (key, value) VALUES ('proxy.password', ?)", (json.dumps(PLAIN_SECRET),))
    desktop.close()
    return db, session_id


def pair_ids(db, session_id) -> list[int]:
    connection = sqlite3.connect(db)
    try:
        return [
            row[0]
            for row in connection.execute(
                "SELECT id FROM scraped_pairs WHERE session_id = ? ORDER BY id", (session_id,)
            )
        ]
    finally:
        connection.close()


def test_json_lists_every_finding_with_exact_offsets(database):
    db, session_id = database
    result = manage(db, "scan_pairs", str(session_id), "--json", text=True)
    assert result.returncode == 0, result.stderr
    findings = json.loads(result.stdout)["findings"]
    ids = pair_ids(db, session_id)
    texts = {
        (pid, side): text
        for pid, pair in zip(ids, PAIRS, strict=True)
        for side, text in zip(("input", "output"), pair, strict=True)
    }
    assert all(set(f) == {"pair_id", "side", "kind", "start", "end"} for f in findings)
    seen = [
        (f["pair_id"], f["side"], f["kind"], texts[f["pair_id"], f["side"]][f["start"] : f["end"]]) for f in findings
    ]
    assert seen == [
        (ids[0], "input", "email", "john.doe@example.com"),
        (ids[0], "output", "phone", "415-555-0132"),
        (ids[2], "input", "secret", PLAIN_SECRET),
        (ids[2], "output", "secret", DESKTOP_TOKEN),
        (ids[3], "input", "ip", "10.0.0.7"),
        (ids[3], "input", "ip", "2001:db8::7"),
        (ids[3], "output", "credit_card", "4111 1111 1111 1111"),
    ]


def test_human_output_counts_and_masks(database):
    db, _ = database
    result = manage(db, "scan_pairs", "--all", text=True)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Scanned 5 pairs in 1 session(s): 7 findings in 3 pairs." in out
    for line in (
        "email                1",
        "phone                1",
        "ip                   2",
        "credit_card          1",
        "secret               2",
    ):
        assert line in out
    for leaked in (DESKTOP_TOKEN, PLAIN_SECRET, "4111 1111", "john.doe@example.com", "415-555-0132"):
        assert leaked not in out
    assert "[SECRET]" in out and "[CARD]" in out


def test_unknown_session_and_missing_arguments_are_clear_errors(database):
    db, _ = database
    missing = manage(db, "scan_pairs", "999", text=True)
    assert missing.returncode == 1 and "scrape session 999 does not exist" in missing.stderr
    neither = manage(db, "scan_pairs", text=True)
    assert neither.returncode == 1 and "Give one or more SESSION_IDs, or --all" in neither.stderr


def test_an_edited_pair_is_scanned_as_it_is_now(database):
    db, session_id = database
    ids = pair_ids(db, session_id)
    writer = sqlite3.connect(db)
    with writer:
        writer.execute("UPDATE scraped_pairs SET output_text = 'Sure.' WHERE id = ?", (ids[0],))
        writer.execute("UPDATE scraped_pairs SET input_text = 'reach me: a@b.example.org' WHERE id = ?", (ids[4],))
    writer.close()
    findings = json.loads(manage(db, "scan_pairs", str(session_id), "--json", text=True).stdout)["findings"]
    kinds = [(f["pair_id"], f["side"], f["kind"]) for f in findings]
    assert (ids[0], "output", "phone") not in kinds
    assert (ids[4], "input", "email") in kinds


REDACTED_PAIRS = [
    ("Write to [EMAIL] please", "Sure, or call [PHONE]."),
    ("What is 2+2?", "4, see version 1.2.3.4 notes."),
    ("my proxy password is [SECRET]", "and my token [SECRET]"),
    ("server [IP] and [IP]", "card [CARD]"),
    ("Nothing here", "still nothing, 12:30:45 on 2024-01-15"),
]


def read_pairs(path, fmt) -> list[tuple[str, str]]:
    return [as_pair(record, fmt) for record in read_records(path, fmt)]


@pytest.mark.parametrize("fmt", list(exporting.FORMATS))
def test_redact_and_drop_flagged_exports_in_every_format(database, tmp_path, fmt, hf_datasets):
    db, session_id = database
    extension = exporting.FORMATS[fmt].extension
    redacted, dropped = tmp_path / f"redacted{extension}", tmp_path / f"dropped{extension}"
    result = manage(db, "export_session", str(session_id), "--format", fmt, "-o", str(redacted), "--redact", text=True)
    assert result.returncode == 0, result.stderr
    assert "Redacted 7 findings (--redact)." in result.stderr
    result = manage(
        db, "export_session", str(session_id), "--format", fmt, "-o", str(dropped), "--drop-flagged", text=True
    )
    assert result.returncode == 0, result.stderr
    assert "Left out 3 flagged pairs (--drop-flagged)." in result.stderr
    assert read_pairs(redacted, fmt) == REDACTED_PAIRS
    assert read_pairs(dropped, fmt) == [PAIRS[1], PAIRS[4]]
    for path in (redacted, dropped):
        raw = path.read_text(encoding="utf-8")
        assert DESKTOP_TOKEN not in raw and PLAIN_SECRET not in raw
        loaded = hf_datasets.load_dataset(
            "csv" if fmt == "csv" else "json", data_files=str(path), cache_dir=str(tmp_path / "cache")
        )
        assert loaded["train"].num_rows == (5 if path == redacted else 2)


def test_redact_to_stdout_and_drop_flagged_with_a_split(database, tmp_path):
    db, session_id = database
    out = manage(db, "export_session", str(session_id), "--format", "jsonl", "-o", "-", "--redact", text=True)
    assert out.returncode == 0, out.stderr
    assert [tuple(json.loads(line).values()) for line in out.stdout.splitlines()] == REDACTED_PAIRS
    target = tmp_path / "split.jsonl"
    split = manage(
        db,
        "export_session",
        str(session_id),
        "--format",
        "jsonl",
        "-o",
        str(target),
        "--drop-flagged",
        "--split",
        "train=0.5,validation=0.5",
        text=True,
    )
    assert split.returncode == 0, split.stderr
    parts = [tmp_path / "split.train.jsonl", tmp_path / "split.validation.jsonl"]
    rows = [line for part in parts for line in part.read_text().splitlines()]
    # Shares are of the pairs kept: 2 pairs split 1 and 1.
    assert [len(part.read_text().splitlines()) for part in parts] == [1, 1]
    assert sorted(tuple(json.loads(row).values()) for row in rows) == sorted([PAIRS[1], PAIRS[4]])


def test_redact_and_drop_flagged_together_are_refused(database, tmp_path):
    db, session_id = database
    result = manage(
        db,
        "export_session",
        str(session_id),
        "--format",
        "jsonl",
        "-o",
        str(tmp_path / "x.jsonl"),
        "--redact",
        "--drop-flagged",
        text=True,
    )
    assert result.returncode != 0
    assert "not allowed with argument" in result.stderr
    assert not (tmp_path / "x.jsonl").exists()


def test_an_example_never_shows_a_stored_secret_beside_the_finding_it_is_for(database):
    db, _ = database
    session_id = add_pairs_directly(db, [(f"mail ann@example.org {PLAIN_SECRET} thanks", "ok")], source="reddit")
    result = manage(db, "scan_pairs", str(session_id), text=True)
    assert result.returncode == 0, result.stderr
    assert "email                1" in result.stdout and "secret               1" in result.stdout
    # The e-mail's example excerpt reaches the stored secret setting next to it: it is masked there too.
    assert PLAIN_SECRET not in result.stdout and PLAIN_SECRET[:8] not in result.stdout
