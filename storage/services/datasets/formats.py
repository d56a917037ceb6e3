"""The dataset file formats sessions export to, each rendering one pair as one record.

Each format writes what it holds, and reads back (importing.py) as the same pairs:

| name     | file                             | one record                                                          |
| -------- | -------------------------------- | ------------------------------------------------------------------- |
| json     | a list, indent 2 (FineFoundry's) | `{"input": ..., "output": ...}`                                     |
| jsonl    | one JSON object per line         | `{"input": ..., "output": ...}`                                     |
| chatml   | one JSON object per line         | `{"messages": [system?, earlier..., user, assistant]}` role/content |
| alpaca   | one JSON object per line         | `{"instruction": ..., "input": ..., "output": ...}`                 |
| sharegpt | one JSON object per line         | `{"conversations": [system?, earlier..., human, gpt]}` from/value   |
| csv      | header `input,output`, RFC 4180  | `input,output`                                                      |

A pair's conversation (conversations.py: its system prompt and earlier turns, kept in metadata
at import) is written by the formats that hold it: chatml and sharegpt write the system prompt
as a "system" turn first and the earlier turns before the last exchange; alpaca writes the
system prompt as `instruction` and the pair's input as `input` (without one, the input is the
`instruction` and `input` is ""), and has no place for earlier turns. json, jsonl and csv hold
the two texts only. Turns read from the other chat format get its role names (user/human,
assistant/gpt). Nothing else of a pair is written: source_url and metadata vary from pair to
pair, and every format must load with `datasets.load_dataset("json" | "csv", data_files=...)`
without options, which needs the same keys on every record, strings only, and no envelope.

Records are built from `json.encoder.encode_basestring`, the function `json.dumps` itself uses
for strings, so each is byte-identical to `json.dumps(record, ensure_ascii=False)` at a fraction
of the cost. A pair without a conversation takes the renderer built once per export (`renderer`);
one with a conversation, `render_conversation`.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass, field
from json.encoder import encode_basestring as quote

from storage.services.datasets.conversations import TURN_KEYS, Conversation

Render = Callable[[str, str], str]
RenderConversation = Callable[[str, str, Conversation], str]


@dataclass(frozen=True)
class ExportFormat:
    """How a file of one format starts, separates its records and ends, and how it renders a pair."""

    name: str
    title: str  # as people see it, e.g. in the admin's download links
    extension: str
    content_type: str
    make_renderer: Callable[[str | None], Render]
    # None: the format holds a pair's two texts only (no system prompt, no earlier turns).
    render_conversation: RenderConversation | None = None
    takes_context: bool = False
    opening: str = ""
    separator: str = ""
    closing: str = ""
    # The whole file when there are no records.
    empty: str = ""

    @property
    def takes_system_prompt(self) -> bool:
        return self.render_conversation is not None

    def renderer(self, system_prompt: str | None = None) -> Render:
        return self.make_renderer(system_prompt)


def _standard_renderer(indent: str) -> Callable[[str | None], Render]:
    """json (`indent` = json.dump's indent=2 inside a list) and jsonl (one line)."""
    start = "{" + indent + '  "input": ' if indent else '{"input": '
    middle = "," + indent + '  "output": ' if indent else ', "output": '
    end = indent + "}" if indent else "}\n"
    first = indent[1:] if indent else ""
    return lambda system_prompt: lambda i, o: first + start + quote(i) + middle + quote(o) + end


@dataclass(frozen=True)
class ChatShape:
    """A chat format's record: a list of turns, each a role and a text under this shape's keys."""

    shape: str
    list_key: str
    user: str
    assistant: str
    # Roles of turns read from the other chat format, renamed to this one's.
    renames: dict[str, str] = field(default_factory=dict)

    def turn_start(self, role: str) -> str:
        role_key, text_key = TURN_KEYS[self.shape]
        return '{"' + role_key + '": ' + quote(role) + ', "' + text_key + '": '

    def turn(self, role: str, text: str) -> str:
        return self.turn_start(self.renames.get(role, role)) + quote(text) + "}, "

    def exchange(self, head: str) -> Render:
        start = '{"' + self.list_key + '": [' + head + self.turn_start(self.user)
        middle = "}, " + self.turn_start(self.assistant)
        return lambda i, o: start + quote(i) + middle + quote(o) + "}]}\n"

    def make_renderer(self, system_prompt: str | None) -> Render:
        return self.exchange("" if system_prompt is None else self.turn("system", system_prompt))

    def render_conversation(self, i: str, o: str, conversation: Conversation) -> str:
        prompt, context = conversation
        head = "" if prompt is None else self.turn("system", prompt)
        head += "".join(self.turn(role, text) for role, text in context)
        return self.exchange(head)(i, o)


CHATML = ChatShape("chatml", "messages", "user", "assistant", {"human": "user", "gpt": "assistant"})
SHAREGPT = ChatShape("sharegpt", "conversations", "human", "gpt", {"user": "human", "assistant": "gpt"})


def _alpaca_renderer(system_prompt: str | None) -> Render:
    if system_prompt is None:
        return lambda i, o: '{"instruction": ' + quote(i) + ', "input": "", "output": ' + quote(o) + "}\n"
    start = '{"instruction": ' + quote(system_prompt) + ', "input": '
    return lambda i, o: start + quote(i) + ', "output": ' + quote(o) + "}\n"


def _alpaca_conversation(i: str, o: str, conversation: Conversation) -> str:
    # Alpaca has no place for earlier turns: the last exchange, under its instruction.
    return _alpaca_renderer(conversation.system_prompt)(i, o)


class _LastWrite:
    """A file-like object that keeps only the last string written to it."""

    text = ""

    def write(self, text: str) -> None:
        self.text = text


def _csv_renderer(system_prompt: str | None) -> Render:
    sink = _LastWrite()
    writer = csv.writer(sink, lineterminator="\r\n")

    def render(i: str, o: str) -> str:
        writer.writerow((i, o))
        return sink.text

    return render


# OWASP's CSV injection list: a cell starting with one of these may run as a formula in a spreadsheet.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


class FormulaCells:
    """Counts the cells of a CSV export a spreadsheet could run as formulas; with excel_safe, defuses them.

    The dataset stays exact unless asked: a training text may well start with '-' or '='. With
    excel_safe such a cell gets a leading apostrophe, which spreadsheets read as "this is text".
    """

    def __init__(self, *, excel_safe: bool = False):
        self.excel_safe = excel_safe
        self.count = 0

    def cell(self, text: str) -> str:
        if not text.startswith(FORMULA_PREFIXES):
            return text
        self.count += 1
        return "'" + text if self.excel_safe else text

    def wrap(self, render: Render) -> Render:
        return lambda i, o: render(self.cell(i), self.cell(o))


NDJSON = "application/x-ndjson"
CSV_HEADER = "input,output\r\n"

FORMATS: dict[str, ExportFormat] = {
    fmt.name: fmt
    for fmt in (
        ExportFormat(
            name="json",
            title="JSON",
            extension=".json",
            content_type="application/json",
            make_renderer=_standard_renderer("\n  "),
            opening="[\n",
            separator=",\n",
            closing="\n]",
            empty="[]",
        ),
        ExportFormat(
            name="jsonl",
            title="JSONL",
            extension=".jsonl",
            content_type=NDJSON,
            make_renderer=_standard_renderer(""),
        ),
        ExportFormat(
            name="chatml",
            title="ChatML",
            extension=".jsonl",
            content_type=NDJSON,
            make_renderer=CHATML.make_renderer,
            render_conversation=CHATML.render_conversation,
            takes_context=True,
        ),
        ExportFormat(
            name="alpaca",
            title="Alpaca",
            extension=".jsonl",
            content_type=NDJSON,
            make_renderer=_alpaca_renderer,
            render_conversation=_alpaca_conversation,
        ),
        ExportFormat(
            name="sharegpt",
            title="ShareGPT",
            extension=".jsonl",
            content_type=NDJSON,
            make_renderer=SHAREGPT.make_renderer,
            render_conversation=SHAREGPT.render_conversation,
            takes_context=True,
        ),
        ExportFormat(
            name="csv",
            title="CSV",
            extension=".csv",
            content_type="text/csv; charset=utf-8",
            make_renderer=_csv_renderer,
            opening=CSV_HEADER,
            empty=CSV_HEADER,
        ),
    )
}
