"""A big scan runs in worker processes (storage.sensitive_text.pool) and finds exactly what one process finds."""

from __future__ import annotations

import json
import random
import sqlite3

import pytest

from storage.sensitive_text import find_sensitive, stored_secrets_pattern
from storage.sensitive_text.pool import usable_workers
from storage.services import scan
from storage.services import sessions as sessions_service
from storage.services import settings as settings_service
from tests.helpers.datasets import add_pairs_directly, copy_test_database, manage

STORED_SECRET = "proxy-pass-9f8e7d6c"  # no token shape: found only as a stored secret setting
PLANTED = [
    "write to jane.doe@example.com",
    "call +44 20 7946 0958 today",
    "the host is 10.20.30.40",
    "card 4111-1111-1111-1111",
    "token hf_AbCdEfGhIjKlMnOpQrStUvWxYz012345",
    f"the proxy password is {STORED_SECRET}",
    "version 1.2.3.4 and 12:30:45",  # found nothing: not an address, not a time
]


def corpus(count: int, seed: int) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    pairs = []
    for index in range(count):
        question = f"Question {index}: how do I {rng.choice(['bake', 'train', 'fix', 'plant'])} it?"
        answer = f"Answer {index} in a few words."
        if index % 37 == 0:
            planted = rng.choice(PLANTED)
            question, answer = (f"{question} {planted}", answer) if index % 2 else (question, f"{planted}. {answer}")
        pairs.append((question, answer))
    return pairs


@pytest.mark.sqlite_only("a database file written with plain sqlite3 and scanned by manage.py")
@pytest.mark.django_db(transaction=True)
def test_scan_pairs_on_a_big_session_finds_what_the_rule_finds_pair_by_pair(tmp_path):
    if usable_workers() < 2:
        pytest.skip("one usable core: the scan runs in one process")
    pairs = corpus(scan.PARALLEL_FROM + 5_000, seed=1)
    db = copy_test_database(tmp_path / "big-scan.db")
    session_id = add_pairs_directly(db, pairs)
    desktop = sqlite3.connect(db)
    with desktop:  # the desktop app stores a secret setting; the workers must know it too
        desktop.execute("INSERT INTO settings (key, value) VALUES ('proxy.password', ?)", (json.dumps(STORED_SECRET),))
    ids = [row[0] for row in desktop.execute("SELECT id FROM scraped_pairs ORDER BY id")]
    desktop.close()

    result = manage(db, "scan_pairs", str(session_id), "--json", text=True)
    assert result.returncode == 0, result.stderr
    secrets_re = stored_secrets_pattern([STORED_SECRET])
    expected = [
        {"pair_id": pair_id, "side": side, "kind": f.kind, "start": f.start, "end": f.end}
        for pair_id, (input_text, output_text) in zip(ids, pairs, strict=True)
        for side, text in (("input", input_text), ("output", output_text))
        for f in find_sensitive(text, secrets_re)
    ]
    assert len(expected) > 500
    assert any(STORED_SECRET in pairs[ids.index(f["pair_id"])][0 if f["side"] == "input" else 1] for f in expected)
    assert json.loads(result.stdout)["findings"] == expected

    # FINEFOUNDRY_SCAN_WORKERS caps the processes; 1 scans in the command's own process, with the same counts.
    summaries = {}
    for workers in ("1", "2"):
        result = manage(db, "scan_pairs", str(session_id), "-v", "0", env={"FINEFOUNDRY_SCAN_WORKERS": workers})
        assert result.returncode == 0, result.stderr
        summaries[workers] = result.stdout.decode().splitlines()
    assert "worker processes" not in summaries["1"][0]
    assert " by 2 worker processes: " in summaries["2"][0]
    assert (
        summaries["1"][0].split(": ")[1]
        == summaries["2"][0].split(": ")[1]
        == (f"{len(expected):,} findings in {len({f['pair_id'] for f in expected}):,} pairs.")
    )
    assert summaries["1"][1:] == summaries["2"][1:]


@pytest.mark.parametrize(
    ("value", "error"),
    [
        ("two", "FINEFOUNDRY_SCAN_WORKERS must be a whole number, not 'two'"),
        ("0", "FINEFOUNDRY_SCAN_WORKERS must be at least 1, not 0"),
    ],
)
def test_a_bad_worker_count_stops_the_command_with_an_error_naming_the_variable(tmp_path, value, error):
    result = manage(tmp_path / "never-made.db", "scan_pairs", "--all", env={"FINEFOUNDRY_SCAN_WORKERS": value})
    assert result.returncode != 0
    assert error in result.stderr.decode()
    assert not (tmp_path / "never-made.db").exists()  # stopped before anything was opened


@pytest.mark.django_db
def test_worker_processes_give_the_same_report_as_one_process(monkeypatch):
    settings_service.set_setting(key="proxy.password", value=STORED_SECRET)
    session = sessions_service.create_scrape_session(source="reddit", name="scanned twice")
    sessions_service.add_scraped_pairs(
        session_id=session.pk, pairs=[{"input": i, "output": o} for i, o in corpus(1_500, seed=2)]
    )
    monkeypatch.setattr(scan, "PAGE_SIZE", 17)  # many pages, several in flight at once
    progress = []
    one = scan.scan_sessions(session_ids=[session.pk])
    monkeypatch.setattr(scan, "PARALLEL_FROM", 100)
    monkeypatch.setattr(scan, "usable_workers", lambda: 2)  # the pool even on a machine with one core
    many = scan.scan_sessions(session_ids=[session.pk], progress=lambda done, total: progress.append(done))
    assert many.pairs_scanned == one.pairs_scanned == 1_500
    assert many.findings == one.findings and len(one.findings) > 30
    assert any(f.kind == "secret" for f in one.findings)
    assert many.examples == one.examples
    assert progress[-1] == 1_500 and progress == sorted(progress)
