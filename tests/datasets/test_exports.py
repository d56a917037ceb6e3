"""export_session: every format read back independently, splits, stdout, atomic files, a killed export."""

from __future__ import annotations

import io
import json
import os
import pty
import select
import signal
import subprocess
import sys
import time

import pytest
from django.core.management import call_command

from storage.exceptions import NotFound
from storage.services import sessions
from storage.services.datasets import exporting, splits
from tests.helpers.datasets import (
    AWKWARD_PAIRS,
    ROOT,
    add_pairs_directly,
    awkward_session,
    copy_test_database,
    manage,
    pairs_of,
    subprocess_env,
)
from tests.helpers.export_records import as_pair, read_records

pytestmark = pytest.mark.django_db


@pytest.fixture
def session(session_factory):
    return awkward_session(session_factory, source="reddit")


def export(tmp_path, *args, name="out") -> tuple[str, io.StringIO]:
    out = io.StringIO()
    target = tmp_path / name
    call_command("export_session", *map(str, args), "--output", str(target), stdout=out)
    return target, out


def leaves(value):
    """Every scalar inside a record."""
    if isinstance(value, dict):
        for item in value.values():
            yield from leaves(item)
    elif isinstance(value, list):
        for item in value:
            yield from leaves(item)
    else:
        yield value


@pytest.mark.parametrize("fmt", list(exporting.FORMATS))
def test_every_format_reads_back_as_the_stored_pairs(tmp_path, session, fmt):
    target, out = export(tmp_path, session.pk, "--format", fmt)
    records = read_records(target, fmt)
    assert [as_pair(record, fmt) for record in records] == pairs_of(session.pk)
    # What datasets.load_dataset needs: no envelope, the same keys everywhere, strings only.
    assert len({tuple(sorted(record)) for record in records}) == 1
    assert all(isinstance(leaf, str) for record in records for leaf in leaves(record))
    assert f"Wrote {len(AWKWARD_PAIRS)} pairs as {fmt} to {target}" in out.getvalue()


def test_json_is_byte_identical_to_finefoundrys_json_dump(tmp_path, session):
    target, _ = export(tmp_path, session.pk, "--format", "json")
    expected = json.dumps(
        [{"input": i, "output": o} for i, o in pairs_of(session.pk)], ensure_ascii=False, indent=2
    ).encode("utf-8")
    assert target.read_bytes() == expected


def test_empty_session_exports_valid_empty_files(tmp_path, session_factory):
    empty = session_factory()
    json_file, _ = export(tmp_path, empty.pk, "--format", "json", name="e.json")
    csv_file, _ = export(tmp_path, empty.pk, "--format", "csv", name="e.csv")
    jsonl_file, _ = export(tmp_path, empty.pk, "--format", "jsonl", name="e.jsonl")
    assert json_file.read_bytes() == json.dumps([]).encode()
    assert csv_file.read_bytes() == b"input,output\r\n"
    assert jsonl_file.read_bytes() == b""


@pytest.mark.parametrize(
    ("fmt", "first_record"),
    [
        (
            "chatml",
            {
                "messages": [
                    {"role": "system", "content": "Be brief."},
                    {"role": "user", "content": "What is 2+2?"},
                    {"role": "assistant", "content": "4, of course."},
                ]
            },
        ),
        (
            "sharegpt",
            {
                "conversations": [
                    {"from": "system", "value": "Be brief."},
                    {"from": "human", "value": "What is 2+2?"},
                    {"from": "gpt", "value": "4, of course."},
                ]
            },
        ),
        ("alpaca", {"instruction": "Be brief.", "input": "What is 2+2?", "output": "4, of course."}),
    ],
)
def test_system_prompt_goes_where_each_format_keeps_it(tmp_path, session, fmt, first_record):
    target, _ = export(tmp_path, session.pk, "--format", fmt, "--system-prompt", "Be brief.")
    records = read_records(target, fmt)
    assert records[0] == first_record
    assert len(records) == len(AWKWARD_PAIRS)


def test_records_are_byte_identical_to_json_dumps(session):
    text = "".join(exporting.iter_export_chunks(session_ids=[session.pk], fmt="chatml", system_prompt="Sys ✓"))
    # split("\n"), not splitlines(): U+2028 inside a text is not a line break in JSON Lines.
    for line, (i, o) in zip(text.split("\n"), pairs_of(session.pk), strict=False):
        expected = {
            "messages": [
                {"role": "system", "content": "Sys ✓"},
                {"role": "user", "content": i},
                {"role": "assistant", "content": o},
            ]
        }
        assert line == json.dumps(expected, ensure_ascii=False)


def test_several_sessions_export_in_the_order_given(tmp_path, session_factory):
    first = session_factory(pairs=3)
    second = session_factory(pairs=2)
    target, out = export(tmp_path, second.pk, first.pk, "--format", "jsonl")
    assert [as_pair(r, "jsonl") for r in read_records(target, "jsonl")] == pairs_of(second.pk) + pairs_of(first.pk)
    assert "Wrote 5 pairs" in out.getvalue()


def test_stdout_gets_exactly_the_file_contents(tmp_path, session):
    target, _ = export(tmp_path, session.pk, "--format", "csv")
    out = io.StringIO()
    err = io.StringIO()
    call_command("export_session", str(session.pk), "--format", "csv", "--output", "-", stdout=out, stderr=err)
    assert out.getvalue() == target.read_bytes().decode("utf-8")
    assert f"Wrote {len(AWKWARD_PAIRS)} pairs as csv to standard output." in err.getvalue()


def test_verbosity_zero_prints_nothing(tmp_path, session):
    out = io.StringIO()
    call_command(
        "export_session", str(session.pk), "--format", "json", "-o", str(tmp_path / "q.json"), "-v", "0", stdout=out
    )
    assert out.getvalue() == ""
    assert (tmp_path / "q.json").exists()


def test_default_output_name_is_made_from_the_sessions(tmp_path, session, monkeypatch):
    monkeypatch.chdir(tmp_path)
    call_command("export_session", str(session.pk), "--format", "chatml", stdout=io.StringIO())
    assert (tmp_path / f"session-{session.pk}.chatml.jsonl").is_file()
    assert exporting.default_filename([1, 2, 3, 4, 5, 6], "json") == "sessions-1-2-3-4-and-2-more.json"


def test_force_replaces_and_new_file_follows_the_umask(tmp_path, session):
    (tmp_path / "out").mkdir()
    target = tmp_path / "out" / "out.jsonl"
    target.write_text("old")
    call_command(
        "export_session", str(session.pk), "--format", "jsonl", "-o", str(target), "--force", stdout=io.StringIO()
    )
    assert target.read_text(encoding="utf-8").count("\n") == len(AWKWARD_PAIRS)
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask
    assert [p.name for p in target.parent.iterdir()] == ["out.jsonl"]


def test_an_export_that_fails_half_way_leaves_no_file(tmp_path, session_factory):
    session = session_factory(pairs=12_000)
    (tmp_path / "failing").mkdir()

    def fail(done, total):
        raise RuntimeError("disk full, say")

    with pytest.raises(RuntimeError, match="disk full"):
        exporting.export_sessions(
            session_ids=[session.pk], fmt="json", output_path=tmp_path / "failing" / "x.json", progress=fail
        )
    assert list((tmp_path / "failing").iterdir()) == []


def test_pairs_added_after_the_export_starts_wait_for_the_next_one(session):
    chunks = exporting.iter_export_chunks(session_ids=[session.pk], fmt="jsonl")
    sessions.add_scraped_pairs(session_id=session.pk, pairs=[{"input": "late", "output": "arrival"}])
    assert "".join(chunks).count("\n") == len(AWKWARD_PAIRS)


def test_iter_export_chunks_checks_before_the_first_chunk():
    with pytest.raises(NotFound, match="scrape session 424242 does not exist"):
        exporting.iter_export_chunks(session_ids=[424242], fmt="jsonl")


def test_chunks_stay_bounded_for_big_sessions(session_factory):
    session = session_factory()
    sessions.add_scraped_pairs(
        session_id=session.pk, pairs=[{"input": f"q{i} " * 100, "output": "a " * 400} for i in range(1000)]
    )
    chunks = list(exporting.iter_export_chunks(session_ids=[session.pk], fmt="jsonl"))
    assert len(chunks) > 1
    assert max(map(len, chunks)) < exporting.CHUNK_CHARS + 1000


def test_formats_declare_extension_and_content_type():
    assert {name: (f.extension, f.content_type) for name, f in exporting.FORMATS.items()} == {
        "json": (".json", "application/json"),
        "jsonl": (".jsonl", "application/x-ndjson"),
        "chatml": (".jsonl", "application/x-ndjson"),
        "alpaca": (".jsonl", "application/x-ndjson"),
        "sharegpt": (".jsonl", "application/x-ndjson"),
        "csv": (".csv", "text/csv; charset=utf-8"),
    }


def test_progress_reports_rows_and_total(tmp_path, session_factory):
    session = session_factory(pairs=12_000)
    calls = []
    result = exporting.export_sessions(
        session_ids=[session.pk],
        fmt="jsonl",
        output_path=tmp_path / "p.jsonl",
        progress=lambda d, t: calls.append((d, t)),
    )
    assert result.count == 12_000
    assert calls == [(5000, 12_000), (10_000, 12_000), (12_000, 12_000)]


# --- Splits -------------------------------------------------------------------------------


def split_files(tmp_path, session, seed, name="data.jsonl"):
    call_command(
        "export_session", str(session.pk), "--format", "jsonl", "-o", str(tmp_path / name),
        "--split", "train=0.9,validation=0.1", "--seed", str(seed), "--force", stdout=io.StringIO(),
    )  # fmt: skip
    stem = name.removesuffix(".jsonl")
    return [
        [as_pair(r, "jsonl") for r in read_records(tmp_path / f"{stem}.{part}.jsonl", "jsonl")]
        for part in ("train", "validation")
    ]


def test_split_is_exact_deterministic_and_adds_up(tmp_path, session_factory):
    session = session_factory(pairs=50)
    train, validation = split_files(tmp_path, session, seed=7)
    assert (len(train), len(validation)) == (45, 5)
    everything = pairs_of(session.pk)
    # A partition of the session, each part in stored order.
    assert sorted(train + validation) == sorted(everything)
    assert train == [p for p in everything if p in train]
    assert split_files(tmp_path, session, seed=7) == [train, validation]
    assert split_files(tmp_path, session, seed=8)[1] != validation


def test_split_file_names_and_summary(tmp_path, session_factory):
    session = session_factory(pairs=10)
    out = io.StringIO()
    (tmp_path / "split").mkdir()
    call_command("export_session", str(session.pk), "--format", "csv", "-o", str(tmp_path / "split" / "ds"), "--split", "a=0.5,b=0.3,c=0.2", stdout=out)  # fmt: skip
    assert sorted(p.name for p in (tmp_path / "split").iterdir()) == ["ds.a.csv", "ds.b.csv", "ds.c.csv"]
    assert "10 pairs in 3 files (seed 0)" in out.getvalue()
    assert splits.split_sizes(10, {"a": 0.5, "b": 0.3, "c": 0.2}) == {"a": 5, "b": 3, "c": 2}
    assert splits.split_sizes(7, {"a": 0.5, "b": 0.5}) == {"a": 4, "b": 3}


# --- Hugging Face datasets ----------------------------------------------------------------


@pytest.mark.parametrize("fmt", list(exporting.FORMATS))
def test_loads_with_hugging_face_datasets_without_options(tmp_path, session, fmt, hf_datasets):
    target, _ = export(tmp_path, session.pk, "--format", fmt, name=f"d{exporting.FORMATS[fmt].extension}")
    loaded = hf_datasets.load_dataset(
        "csv" if fmt == "csv" else "json", data_files=str(target), cache_dir=str(tmp_path / "cache")
    )
    rows = loaded["train"].to_list()
    assert [as_pair(row, fmt) for row in rows] == pairs_of(session.pk)
    assert all(isinstance(leaf, str) for row in rows for leaf in leaves(row))


# --- A killed export ----------------------------------------------------------------------


@pytest.fixture
def big_db(tmp_path):
    db_file = copy_test_database(tmp_path / "finefoundry.db")
    filler = "lorem ipsum dolor sit amet " * 8
    session_id = add_pairs_directly(
        db_file, [(f"question {i} {filler}", f"answer {i} {filler}") for i in range(300_000)]
    )
    return db_file, session_id


def test_sigkill_half_way_leaves_the_target_untouched(tmp_path, big_db):
    db_file, session_id = big_db
    target = tmp_path / "export.jsonl"
    target.write_text("the previous export\n")
    process = subprocess.Popen(
        [sys.executable, "manage.py", "export_session", str(session_id), "--format", "jsonl", "-o", str(target), "--force"],
        cwd=ROOT, env=subprocess_env(db_file), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    part = None
    while time.monotonic() < deadline and process.poll() is None:
        parts = list(tmp_path.glob(".export.jsonl.*.part"))
        if parts and parts[0].stat().st_size > 4 * 1024 * 1024:
            part = parts[0]
            break
        time.sleep(0.01)
    assert part is not None, "the export finished or never started before it could be killed"
    process.send_signal(signal.SIGKILL)
    assert process.wait(timeout=30) == -signal.SIGKILL
    assert target.read_text() == "the previous export\n"
    # What a kill leaves is only the hidden temp file, well short of the whole export.
    assert part.exists() and part.stat().st_size < 300_000 * 200


def test_real_process_exit_status_and_stdout_bytes(tmp_path, big_db):
    db_file, _ = big_db
    small = add_pairs_directly(db_file, [(i, o) for i, o in ((p["input"], p["output"]) for p in AWKWARD_PAIRS)])
    piped = manage(db_file, "export_session", str(small), "--format", "chatml", "-o", "-")
    assert piped.returncode == 0
    written = manage(db_file, "export_session", str(small), "--format", "chatml", "-o", str(tmp_path / "c.jsonl"))
    assert written.returncode == 0
    assert piped.stdout == (tmp_path / "c.jsonl").read_bytes()
    missing = manage(db_file, "export_session", "999999", "--format", "json", "-o", str(tmp_path / "x.json"))
    assert missing.returncode == 1
    assert b"scrape session 999999 does not exist" in missing.stderr
    assert not (tmp_path / "x.json").exists()


@pytest.mark.parametrize("output", ["file", "-"])
def test_a_terminal_gets_a_progress_bar_and_a_pipe_gets_none(tmp_path, output):
    db_file = copy_test_database(tmp_path / "finefoundry.db")
    session_id = add_pairs_directly(db_file, [(f"q{i}", f"a{i}") for i in range(12_000)])
    target = str(tmp_path / "out.jsonl") if output == "file" else "-"
    command = [sys.executable, "manage.py", "export_session", str(session_id), "--format", "jsonl", "-o", target]
    leader, follower = pty.openpty()  # stderr on a terminal, as when a person runs the command
    try:
        process = subprocess.run(
            command, cwd=ROOT, env=subprocess_env(db_file), stdout=subprocess.PIPE, stderr=follower, timeout=120
        )
        os.close(follower)
        terminal = b""
        while select.select([leader], [], [], 0)[0]:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the child's end is closed and everything was read
                break
            if not chunk:
                break
            terminal += chunk
    finally:
        os.close(leader)
    assert process.returncode == 0, terminal
    assert b"12000/12000 [" in terminal  # the bar at its end; redraws in between depend on timing
    piped = manage(db_file, "export_session", str(session_id), "--format", "jsonl", "-o", target, "--force")
    assert piped.returncode == 0 and b"\r" not in piped.stderr and b"12000/12000" not in piped.stderr
