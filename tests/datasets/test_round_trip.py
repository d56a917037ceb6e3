"""Every import format gives back what it holds: `import_pairs` then `export_session`, both real processes.

One table: for each format, records using every field it holds (system prompts, an Alpaca instruction beside
an input, multi-turn conversations, awkward texts), and what comes back: the same records, or the announced
normalisation (a container, a role name, keys no export writes).
"""

from __future__ import annotations

import csv
import io
import json
import re
import sqlite3
from contextlib import closing

import pytest
from django.urls import reverse

from storage.models import ScrapedPair, ScrapeSession
from storage.services.datasets import exporting
from storage.services.datasets.importing import import_pairs
from tests.helpers.datasets import AWKWARD_PAIRS
from tests.helpers.export_records import read_records
from tests.helpers.processes import manage

AWKWARD = AWKWARD_PAIRS[1:6]


def chat(list_key, role_key, text_key, *turns):
    return {list_key: [{role_key: role, text_key: text} for role, text in turns]}


def chatml(*turns):
    return chat("messages", "role", "content", *turns)


def sharegpt(*turns):
    return chat("conversations", "from", "value", *turns)


def multi_turn(make, user, assistant, *, system=None, tool=None):
    """A conversation of three exchanges (and a tool turn, when given), with or without a system message."""
    turns = [("system", system)] if system else []
    turns += [(user, "first question"), (assistant, "first answer")]
    turns += [(tool, "tool output")] if tool else []
    turns += [(user, AWKWARD[0]["input"]), (assistant, AWKWARD[0]["output"]), (user, "last"), (assistant, "answer")]
    return make(*turns)


STANDARD = [dict(pair) for pair in AWKWARD]
ALPACA_MIXED = [
    {"instruction": "Translate", "input": "bonjour", "output": "hello"},
    {"instruction": "Name a prime number.", "input": "", "output": "7"},
    {"instruction": "Summarise.", "input": AWKWARD[2]["input"], "output": AWKWARD[2]["output"]},
    *({"instruction": p["input"], "input": "", "output": p["output"]} for p in AWKWARD),
]
ALPACA_SHARED = [{"instruction": "Translate to English.", "input": p["input"], "output": p["output"]} for p in AWKWARD]
CHATML = [
    chatml(("system", "Be brief."), ("user", "Hi"), ("assistant", "Hello")),
    chatml(("user", AWKWARD[3]["input"]), ("assistant", AWKWARD[3]["output"])),
    multi_turn(chatml, "user", "assistant", system="Be kind ✓"),
    multi_turn(chatml, "user", "assistant", tool="tool"),
]
CHATML_SHARED = [
    chatml(("system", "You are a pirate."), ("user", p["input"]), ("assistant", p["output"])) for p in AWKWARD
]
SHAREGPT = [
    sharegpt(("system", "Be brief."), ("human", "Hi"), ("gpt", "Hello")),
    sharegpt(("human", AWKWARD[3]["input"]), ("gpt", AWKWARD[3]["output"])),
    multi_turn(sharegpt, "human", "gpt", system="Be kind ✓"),
]


def lines(records) -> str:
    return "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records)


def csv_text(rows) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerows(rows)
    return out.getvalue()


# (case id, format, file name, file text, the records the export must give back, what the import must say)
CASES = [
    ("json", "json", "data.json", json.dumps(STANDARD, ensure_ascii=False, indent=2), STANDARD, None),
    ("json compact", "json", "data.json", json.dumps(STANDARD), STANDARD, None),
    ("jsonl", "jsonl", "data.jsonl", lines(STANDARD), STANDARD, None),
    (
        "csv",
        "csv",
        "data.csv",
        csv_text([("input", "output"), *((p["input"], p["output"]) for p in STANDARD), ("=1+1", "-x")]),
        [*STANDARD, {"input": "=1+1", "output": "-x"}],
        None,
    ),
    ("alpaca instruction beside input", "alpaca", "data.jsonl", lines(ALPACA_MIXED), ALPACA_MIXED, None),
    ("alpaca shared instruction", "alpaca", "data.jsonl", lines(ALPACA_SHARED), ALPACA_SHARED, None),
    # Alpaca's own files are JSON lists; every chat-like export is JSON Lines.
    ("alpaca json list", "alpaca", "alpaca_data.json", json.dumps(ALPACA_MIXED), ALPACA_MIXED, None),
    ("chatml system and turns", "chatml", "data.jsonl", lines(CHATML), CHATML, None),
    ("chatml shared system", "chatml", "data.jsonl", lines(CHATML_SHARED), CHATML_SHARED, None),
    ("chatml json list", "chatml", "chat.json", json.dumps(CHATML), CHATML, None),
    ("sharegpt system and turns", "sharegpt", "data.jsonl", lines(SHAREGPT), SHAREGPT, None),
    # Normalisations, each documented (README "Formats") and, where data is left out, said at import.
    (
        "sharegpt user/assistant come back as human/gpt",
        "sharegpt",
        "data.jsonl",
        lines([multi_turn(sharegpt, "user", "assistant", system="S")]),
        [multi_turn(sharegpt, "human", "gpt", system="S")],
        None,
    ),
    (
        "alpaca blank input is empty",
        "alpaca",
        "data.jsonl",
        lines([{"instruction": "Say hi.", "input": "  ", "output": "hi"}]),
        [{"instruction": "Say hi.", "input": "", "output": "hi"}],
        None,
    ),
    (
        "keys no export writes",
        "jsonl",
        "data.jsonl",
        lines([{"input": "q", "output": "a", "source_url": "https://x.example/1", "score": 3}]),
        [{"input": "q", "output": "a"}],
        "1 record had keys no export writes back (source_url, score)",
    ),
    (
        "turn keys no export writes",
        "chatml",
        "data.jsonl",
        lines(
            [
                {
                    "id": 7,
                    "messages": [
                        {"role": "user", "content": "q", "name": "ann"},
                        {"role": "assistant", "content": "a"},
                    ],
                }
            ]
        ),
        [chatml(("user", "q"), ("assistant", "a"))],
        "1 record had keys no export writes back (id, messages[].name)",
    ),
]


@pytest.fixture(scope="module")
def database(tmp_path_factory):
    db = tmp_path_factory.mktemp("round-trip") / "finefoundry.db"
    result = manage(db, "migrate", "-v", "0")
    assert result.returncode == 0, result.stderr
    return db


@pytest.mark.parametrize(("fmt", "name", "text", "expected", "note"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_import_then_export_gives_back_every_record(tmp_path, database, fmt, name, text, expected, note):
    source = tmp_path / name
    source.write_text(text, encoding="utf-8", newline="")
    imported = manage(database, "import_pairs", str(source), "--format", fmt)
    assert imported.returncode == 0, imported.stderr
    session_id = re.search(r"into new session (\d+)", imported.stdout).group(1)
    notes = [line for line in imported.stderr.splitlines() if line.startswith("note: ")]
    assert notes == ([f"note: {source}: {note}; a record's are kept in the pair's source_url or metadata, a turn's only in earlier turns"] if note else [])  # fmt: skip
    target = tmp_path / f"out{exporting.FORMATS[fmt].extension}"
    exported = manage(database, "export_session", session_id, "--format", fmt, "--output", str(target))
    assert exported.returncode == 0, exported.stderr
    assert read_records(target, fmt) == expected


def test_the_instruction_and_system_prompts_go_to_the_other_formats_too(tmp_path, database):
    """Across formats: Alpaca's instruction is a chat's system turn; a chat's earlier turns have no place in Alpaca."""
    source = tmp_path / "data.jsonl"
    source.write_text(lines([*CHATML[:1], CHATML[2]]), encoding="utf-8")
    imported = manage(database, "import_pairs", str(source))
    session_id = re.search(r"into new session (\d+)", imported.stdout).group(1)
    records = {}
    for fmt in ("alpaca", "sharegpt"):
        target = tmp_path / f"{fmt}.jsonl"
        assert manage(database, "export_session", session_id, "--format", fmt, "-o", str(target)).returncode == 0
        records[fmt] = read_records(target, fmt)
    assert records["alpaca"] == [
        {"instruction": "Be brief.", "input": "Hi", "output": "Hello"},
        {"instruction": "Be kind ✓", "input": "last", "output": "answer"},
    ]
    assert records["sharegpt"] == [
        sharegpt(("system", "Be brief."), ("human", "Hi"), ("gpt", "Hello")),
        multi_turn(sharegpt, "human", "gpt", system="Be kind ✓"),
    ]
    # An export's --system-prompt replaces the pairs' own; the earlier turns stay.
    target = tmp_path / "forced.jsonl"
    forced = manage(database, "export_session", session_id, "--format", "chatml", "--system-prompt", "Forced.", "-o", str(target))  # fmt: skip
    assert forced.returncode == 0, forced.stderr
    assert read_records(target, "chatml") == [
        chatml(("system", "Forced."), ("user", "Hi"), ("assistant", "Hello")),
        multi_turn(chatml, "user", "assistant", system="Forced."),
    ]


@pytest.mark.django_db
@pytest.mark.parametrize("fmt", ["chatml", "sharegpt", "alpaca"])
def test_the_admin_download_gives_back_the_same_records(admin_client, tmp_path, fmt):
    """The admin's download streams through the same renderers (and, on PostgreSQL, the same metadata read)."""
    records = {"chatml": CHATML, "sharegpt": SHAREGPT, "alpaca": ALPACA_MIXED}[fmt]
    source = tmp_path / "data.jsonl"
    source.write_text(lines(records), encoding="utf-8")
    session_id = import_pairs(path=source, fmt=fmt).session_id
    response = admin_client.get(reverse("admin:storage_scrapesession_export", args=[session_id, fmt]))
    assert response.status_code == 200
    text = b"".join(response.streaming_content).decode()
    assert [json.loads(line) for line in text.split("\n") if line] == records


def scraped_bytes(fmt, pairs) -> str:
    """What every export wrote before conversations were exported: json.dumps / csv of the two texts."""
    if fmt == "json":
        return json.dumps([{"input": i, "output": o} for i, o in pairs], ensure_ascii=False, indent=2)
    if fmt == "csv":
        return csv_text([("input", "output"), *pairs])
    shapes = {
        "jsonl": lambda i, o: {"input": i, "output": o},
        "chatml": lambda i, o: chatml(("user", i), ("assistant", o)),
        "sharegpt": lambda i, o: sharegpt(("human", i), ("gpt", o)),
        "alpaca": lambda i, o: {"instruction": i, "input": "", "output": o},
    }
    return lines(shapes[fmt](i, o) for i, o in pairs)


@pytest.mark.parametrize("fmt", list(exporting.FORMATS))
def test_scraped_pairs_export_byte_for_byte_as_before(tmp_path, fmt):
    """Pairs written by the desktop app (plain sqlite3), with metadata of their own, export exactly as before."""
    db = tmp_path / "finefoundry.db"
    assert manage(db, "migrate", "-v", "0").returncode == 0
    pairs = [(p["input"], p["output"]) for p in AWKWARD_PAIRS]
    # Metadata a scraper writes, one mentioning "context" and "system_prompt" below the top level.
    metadata = [None, '{"score": 12}', '{"thread": {"context": [1], "system_prompt": 2}}', '{"context_id": "x"}']
    with closing(sqlite3.connect(db)) as conn, conn:
        session_id = conn.execute(
            "INSERT INTO scrape_sessions (source, metadata_json) VALUES ('reddit', '{\"subreddit\": \"x\"}')"
        ).lastrowid
        conn.executemany(
            "INSERT INTO scraped_pairs (session_id, input_text, output_text, metadata_json) VALUES (?, ?, ?, ?)",
            [(session_id, i, o, metadata[n % len(metadata)]) for n, (i, o) in enumerate(pairs)],
        )
    target = tmp_path / "out"
    result = manage(db, "export_session", str(session_id), "--format", fmt, "-o", str(target))
    assert result.returncode == 0, result.stderr
    assert target.read_bytes() == scraped_bytes(fmt, pairs).encode("utf-8")


def test_unusable_metadata_exports_without_it_and_says_so(tmp_path):
    """Metadata edited into something exports cannot use: the pair is exported as its last exchange, with a warning."""
    db = tmp_path / "finefoundry.db"
    assert manage(db, "migrate", "-v", "0").returncode == 0
    bad = [
        '{"system_prompt": 5}',
        '{"system_prompt": "  "}',
        '{"context": "not a list"}',
        '{"context": [{"role": "user"}]}',
        '{"context": [["user", "hi"]], "system_prompt": "Kept."}',
        'not json at all {"context"',
        '["context", "system_prompt"]',
    ]
    with closing(sqlite3.connect(db)) as conn, conn:
        session_id = conn.execute("INSERT INTO scrape_sessions (source, metadata_json) VALUES ('x', '{\"system_prompt\": []}')").lastrowid  # fmt: skip
        conn.executemany(
            "INSERT INTO scraped_pairs (session_id, input_text, output_text, metadata_json) VALUES (?, 'q', 'a', ?)",
            [(session_id, text) for text in bad],
        )
    first_pair = 1
    target = tmp_path / "out.jsonl"
    result = manage(db, "export_session", str(session_id), "--format", "chatml", "-o", str(target))
    assert result.returncode == 0, result.stderr
    plain = chatml(("user", "q"), ("assistant", "a"))
    kept = chatml(("system", "Kept."), ("user", "q"), ("assistant", "a"))
    assert read_records(target, "chatml") == [plain, plain, plain, plain, kept, plain, plain]
    assert (
        f"Warning: ignored unusable metadata 6 times (first: session {session_id}: metadata 'system_prompt' must be "
        "a non-blank string)" in " ".join(result.stderr.split())
    )
    assert f"pair {first_pair}" not in result.stderr  # the first problem named is the session's


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("metadata", "error"),
    [
        ({"system_prompt": 5}, "Metadata &#x27;system_prompt&#x27; must be a non-blank string."),
        ({"context": {"role": "user"}}, "Metadata &#x27;context&#x27; must be a list of turns."),
        ({"context": [{"role": "user", "text": "x"}]}, "Metadata &#x27;context[0]&#x27; must be an object with"),
    ],
)
def test_the_pair_form_refuses_metadata_exports_cannot_use(admin_client, session_factory, metadata, error):
    session = session_factory(pairs=1)
    pair = ScrapedPair.objects.get(session=session)
    url = reverse("admin:storage_scrapedpair_change", args=[pair.pk])
    form = {"session": session.pk, "input_text": "q", "output_text": "a", "source_url": "", "metadata": json.dumps(metadata)}  # fmt: skip
    response = admin_client.post(url, form)
    assert response.status_code == 200
    assert error in response.content.decode()
    pair.refresh_from_db()
    assert pair.metadata is None
    session_url = reverse("admin:storage_scrapesession_change", args=[session.pk])
    page = admin_client.post(session_url, {"name": "n", "source": "reddit", "metadata": '{"system_prompt": ""}'})
    assert "Metadata &#x27;system_prompt&#x27; must be a non-blank string." in page.content.decode()
    assert ScrapeSession.objects.get(pk=session.pk).metadata in (None, {})


@pytest.mark.django_db
def test_redaction_covers_system_prompts_and_earlier_turns(tmp_path):
    source = tmp_path / "data.jsonl"
    record = chatml(("system", "Mail ann@example.com."), ("user", "write to bob@example.org"), ("assistant", "ok"), ("user", "q"), ("assistant", "a"))  # fmt: skip
    source.write_text(lines([record]), encoding="utf-8")
    session_id = import_pairs(path=source, fmt="chatml").session_id
    text = "".join(exporting.iter_export_chunks(session_ids=[session_id], fmt="chatml", redact=True))
    assert "ann@example.com" not in text and "bob@example.org" not in text
    assert text.count("[EMAIL]") == 2
    dropped = "".join(exporting.iter_export_chunks(session_ids=[session_id], fmt="chatml", drop_flagged=True))
    assert dropped == ""
