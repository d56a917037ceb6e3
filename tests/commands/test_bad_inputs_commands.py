"""Bad input to import_pairs and export_session: a clear error, a failing exit, and nothing changed anywhere."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from storage.services import sessions
from tests.helpers.datasets import copy_test_database, database_state, files_state, manage

pytestmark = pytest.mark.django_db

GOOD = '{"input": "q", "output": "a"}\n'
TEN_MB = "x" * 10_000_000


def jsonl(*records) -> bytes:
    return "".join(json.dumps(record) + "\n" for record in records).encode()


# name, file name, file bytes (None: no file; "dir": a directory), extra arguments, expected message
IMPORT_CASES = [
    ("missing file", "nope.jsonl", None, [], "nope.jsonl: no such file"),
    ("directory", "folder.json", "dir", [], "folder.json: is a directory, not a file"),
    ("empty file", "empty.jsonl", b"", [], "empty.jsonl: the file is empty"),
    ("only whitespace", "blank.json", b" \n\t\r\n", [], "the file is empty (nothing but whitespace)"),
    ("only a byte order mark", "bom.json", b"\xef\xbb\xbf", [], "the file is empty"),
    (
        "UTF-16 text",
        "wide.json",
        '[{"input": "q", "output": "a"}]'.encode("utf-16"),
        [],
        "the file is UTF-16 text; save it as UTF-8",
    ),
    (
        "invalid UTF-8 in JSON Lines",
        "latin1.jsonl",
        GOOD.encode() + '{"input": "café", "output": "a"}\n'.encode("latin-1"),
        [],
        "line 2 is not UTF-8 text (byte 0xe9",
    ),
    (
        "invalid UTF-8 in a JSON list",
        "latin1.json",
        '[{"input": "café", "output": "a"}]'.encode("latin-1"),
        [],
        "the file is not UTF-8 text",
    ),
    (
        "truncated JSON list",
        "cut.json",
        b'[{"input": "q", "output": "a"}, {"input": "q2", "out',
        [],
        "record 2 (line 1) is not valid JSON: Unterminated string",
    ),
    (
        "JSON list without its end",
        "open.json",
        b'[{"input": "q", "output": "a"}',
        [],
        "the file ends after record 1, before the closing ']' (truncated?)",
    ),
    (
        "JSON object instead of a list",
        "object.json",
        b'{"data": [{"input": "q", "output": "a"}]}',
        ["--format", "json"],
        "a json file must be a list ([...]) of records; this one starts with '{'",
    ),
    (
        "pretty-printed object read as JSON Lines",
        "pretty.json",
        b'{\n  "data": []\n}\n',
        [],
        "record 1 (line 1) is not valid JSON",
    ),
    (
        "text after the list",
        "tail.json",
        b'[{"input": "q", "output": "a"}] extra',
        [],
        "unexpected text after the closing ']'",
    ),
    (
        "null input",
        "null.jsonl",
        jsonl({"input": "q", "output": "a"}, {"input": None, "output": "a"}),
        [],
        "record 2 (line 2): 'input' is null",
    ),
    (
        "number as text",
        "number.jsonl",
        jsonl({"input": 42, "output": "a"}),
        [],
        "record 1 (line 1): 'input' must be a string, not a number",
    ),
    ("missing output", "half.json", b'[{"input": "q"}]', [], "record 1 (line 1): has no 'output'"),
    ("empty text", "emptytext.jsonl", jsonl({"input": "   ", "output": "a"}), [], "'input' is empty"),
    (
        "record that is a list",
        "list.jsonl",
        GOOD.encode() + b'["q", "a"]\n',
        [],
        "record 2 (line 2): must be an object, not a list",
    ),
    (
        "10 MB field",
        "huge.jsonl",
        jsonl({"input": "q", "output": TEN_MB}),
        [],
        "'output' is 10,000,000 characters; the limit is 1,000,000",
    ),
    ("escaped NUL", "nul.jsonl", jsonl({"input": "q\u0000", "output": "a"}), [], "'input' contains a NUL character"),
    ("raw NUL byte in CSV", "nul.csv", b"input,output\r\nq\x00,a\r\n", [], "line 2 contains a NUL character"),
    (
        "CSV without the output column",
        "cols.csv",
        b"question,answer\r\nq,a\r\n",
        [],
        "the CSV header has no 'input' or 'output' column (its columns: 'question', 'answer')",
    ),
    (
        "CSV row with too many fields",
        "fields.csv",
        b"input,output\r\nq,a\r\nq,a,extra\r\n",
        [],
        "record 2 (line 3) has 3 fields; the header has 2",
    ),
    ("CSV with broken quoting", "quote.csv", b'input,output\r\n"q"x,a\r\n', [], "line 2 is not valid CSV"),
    (
        "CSV field over the limit",
        "huge.csv",
        b"input,output\r\nq," + TEN_MB.encode() + b"\r\n",
        [],
        "a field is longer than the limit of 1,000,000 characters",
    ),
    ("CSV with only a header", "header.csv", b"input,output\r\n", [], "there are no records to import"),
    ("empty JSON list", "none.json", b"[]", [], "there are no records to import"),
    (
        "chat ending with the user",
        "chat.jsonl",
        jsonl({"messages": [{"role": "user", "content": "q"}]}),
        [],
        "'messages' must end with a user turn followed by a assistant turn",
    ),
    (
        "chat message without content",
        "chat2.jsonl",
        jsonl({"messages": [{"role": "user"}, {"role": "assistant", "content": "a"}]}),
        [],
        "'messages[0].content' is missing",
    ),
    (
        "unpaired surrogate",
        "surrogate.jsonl",
        b'{"input": "\\ud800", "output": "a"}\n',
        [],
        "'input' contains a lone surrogate (U+D800)",
    ),
    (
        "deeply nested record",
        "deep.json",
        b"[" + b"[" * 100_000 + b"]" * 100_000 + b"]",
        [],
        "record 1 (line 1) is nested too deeply",
    ),
    (
        "not JSON and not CSV",
        "notes.txt",
        b"just some notes\n",
        [],
        "the CSV header has no 'input' or 'output' column (its columns: 'just some notes'); it was read as CSV because it does not start with '[' or '{'",
    ),
    ("unknown format", "ok.jsonl", GOOD.encode(), ["--format", "xml"], "invalid choice: 'xml'"),
    (
        "session that does not exist",
        "ok.jsonl",
        GOOD.encode(),
        ["--session", "999999"],
        "scrape session 999999 does not exist",
    ),
    (
        "session and a name",
        "ok.jsonl",
        GOOD.encode(),
        ["--session", "1", "--name", "x"],
        "give either a session to add to, or a source/name",
    ),
    ("session name with a NUL", "ok.jsonl", GOOD.encode(), ["--name", "x\x00"], "name contains a NUL character"),
    (
        "a bad record after many good ones",
        "late.jsonl",
        jsonl(*[{"input": f"q{i}", "output": "a"} for i in range(12_000)], {"input": "q"}),
        [],
        "record 12001 (line 12001): has no 'output'",
    ),
]


@pytest.fixture
def existing(session_factory):
    return session_factory(source="reddit", pairs=3, name="keep me")


@pytest.mark.parametrize(
    ("file_name", "content", "args", "message"),
    [case[1:] for case in IMPORT_CASES],
    ids=[case[0] for case in IMPORT_CASES],
)
def test_import_refuses_bad_input_and_changes_nothing(tmp_path, existing, file_name, content, args, message):
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    path = inputs / file_name
    if content == "dir":
        path.mkdir()
    elif content is not None:
        path.write_bytes(content)
    before_db, before_files = database_state(), files_state(inputs)
    with pytest.raises(CommandError) as raised:
        call_command("import_pairs", str(path), *args, stdout=io.StringIO())
    assert message in str(raised.value)
    assert raised.value.returncode != 0
    if content is not None and content != "dir" and not args:
        assert str(path) in str(raised.value)  # a problem with the file names the file
    assert database_state() == before_db
    assert files_state(inputs) == before_files


# extra arguments (SESSION is the existing session's id), expected message; every case writes to out/
EXPORT_CASES = [
    ("unknown format", ["SESSION", "--format", "xml", "-o", "out/x.xml"], "invalid choice: 'xml'"),
    ("no format", ["SESSION", "-o", "out/x.json"], "the following arguments are required: --format"),
    (
        "session that does not exist",
        ["424242", "--format", "json", "-o", "out/x.json"],
        "scrape session 424242 does not exist",
    ),
    (
        "one of several sessions missing",
        ["SESSION", "424242", "424243", "--format", "json", "-o", "out/x.json"],
        "scrape sessions 424242, 424243 do not exist",
    ),
    (
        "session id that is not a number",
        ["three", "--format", "json", "-o", "out/x.json"],
        "invalid int value: 'three'",
    ),
    ("session id zero", ["0", "--format", "json", "-o", "out/x.json"], "session id must be at least 1"),
    ("same session twice", ["SESSION", "SESSION", "--format", "json", "-o", "out/x.json"], "given more than once"),
    (
        "output in a missing directory",
        ["SESSION", "--format", "json", "-o", "out/missing/x.json"],
        "directory OUT/missing does not exist",
    ),
    (
        "output is a directory",
        ["SESSION", "--format", "json", "-o", "out/sub"],
        "cannot write OUT/sub: it is a directory",
    ),
    (
        "existing file without --force",
        ["SESSION", "--format", "jsonl", "-o", "out/existing.jsonl"],
        "OUT/existing.jsonl already exists; pass --force",
    ),
    (
        "system prompt where it has no place",
        ["SESSION", "--format", "csv", "--system-prompt", "Hi", "-o", "out/x.csv"],
        "a system prompt has no place in csv",
    ),
    (
        "blank system prompt",
        ["SESSION", "--format", "chatml", "--system-prompt", " ", "-o", "out/x.jsonl"],
        "system prompt must not be empty",
    ),
    (
        "split without =",
        ["SESSION", "--format", "jsonl", "--split", "train:0.9,val:0.1", "-o", "out/x.jsonl"],
        "must look like name=fraction",
    ),
    (
        "split not adding up",
        ["SESSION", "--format", "jsonl", "--split", "train=0.8,val=0.1", "-o", "out/x.jsonl"],
        "split fractions must add up to 1, not 0.9",
    ),
    (
        "split with one part",
        ["SESSION", "--format", "jsonl", "--split", "all=1", "-o", "out/x.jsonl"],
        "a split needs at least two parts",
    ),
    (
        "split fraction not a number",
        ["SESSION", "--format", "jsonl", "--split", "a=half,b=0.5", "-o", "out/x.jsonl"],
        "'half' is not a number",
    ),
    (
        "split part name with a slash",
        ["SESSION", "--format", "jsonl", "--split", "../a=0.5,b=0.5", "-o", "out/x.jsonl"],
        "may only use letters, digits",
    ),
    (
        "split to standard output",
        ["SESSION", "--format", "jsonl", "--split", "a=0.5,b=0.5", "-o", "-"],
        "--split writes one file per part",
    ),
    (
        "seed without split",
        ["SESSION", "--format", "jsonl", "--seed", "3", "-o", "out/x.jsonl"],
        "a seed only applies to a split",
    ),
    (
        "one split part already exists",
        ["SESSION", "--format", "jsonl", "--split", "existing=0.5,fresh=0.5", "-o", "out/data.jsonl"],
        "OUT/data.existing.jsonl already exists",
    ),
]


@pytest.mark.parametrize(
    ("args", "message"), [case[1:] for case in EXPORT_CASES], ids=[case[0] for case in EXPORT_CASES]
)
def test_export_refuses_bad_input_and_changes_nothing(tmp_path, existing, args, message):
    out = tmp_path / "out"
    (out / "sub").mkdir(parents=True)
    (out / "existing.jsonl").write_text("precious\n")
    (out / "data.existing.jsonl").write_text("also precious\n")
    args = [arg.replace("SESSION", str(existing.pk)).replace("out/", f"{out}/") for arg in args]
    before_db, before_files = database_state(), files_state(out)
    with pytest.raises(CommandError) as raised:
        call_command("export_session", *args, stdout=io.StringIO())
    assert message.replace("OUT", str(out)) in str(raised.value)
    assert raised.value.returncode != 0
    assert database_state() == before_db
    assert files_state(out) == before_files  # no file written, none replaced, no temp file left


def test_bad_input_corpus_is_large_enough():
    assert len(IMPORT_CASES) + len(EXPORT_CASES) >= 25


def test_a_bad_file_fails_the_process_with_the_reason_on_stderr(tmp_path):
    db_file = copy_test_database(tmp_path / "finefoundry.db")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"input": "q", "output": "a"}\n{"input": null, "output": "a"}\n', encoding="utf-8")
    result = manage(db_file, "import_pairs", str(bad))
    assert result.returncode == 1
    assert f"CommandError: {bad}: record 2 (line 2): 'input' is null" in result.stderr.decode()
    assert result.stdout == b""


def test_a_file_that_changes_between_the_passes_imports_nothing(tmp_path, monkeypatch, existing):
    from storage.services.datasets import importing

    path = tmp_path / "moving.jsonl"
    path.write_text(GOOD * 3, encoding="utf-8")
    real_scan = importing.scan

    def scan_then_grow(dataset):
        found = real_scan(dataset)
        path.write_text(GOOD * 4, encoding="utf-8")  # another program appends meanwhile
        return found

    monkeypatch.setattr(importing, "scan", scan_then_grow)
    before = database_state()
    with pytest.raises(CommandError, match="changed while it was being imported; nothing was imported"):
        call_command("import_pairs", str(path), stdout=io.StringIO())
    assert database_state() == before
    assert sessions.total_pair_count() == 3
