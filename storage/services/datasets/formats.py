"""The dataset file formats sessions export to, each rendering one pair as one record.

Only a pair's two texts are written: source_url and metadata vary from pair to pair, and every
format must load with `datasets.load_dataset("json" | "csv", data_files=...)` without options,
which needs the same keys on every record, strings only, and no envelope around the records.

| name     | file                              | one record                                                       |
| -------- | --------------------------------- | ---------------------------------------------------------------- |
| json     | a list, indent 2 (FineFoundry's)  | `{"input": ..., "output": ...}`                                  |
| jsonl    | one JSON object per line          | `{"input": ..., "output": ...}`                                  |
| chatml   | one JSON object per line          | `{"messages": [{"role": "user", ...}, {"role": "assistant", ...}]}` |
| alpaca   | one JSON object per line          | `{"instruction": input, "input": "", "output": ...}`             |
| sharegpt | one JSON object per line          | `{"conversations": [{"from": "human", ...}, {"from": "gpt", ...}]}` |
| csv      | header `input,output`, RFC 4180   | `input,output`                                                   |

A system prompt goes first in chatml and sharegpt (a "system" message) and becomes alpaca's
`instruction` (the pair's input then goes in `input`); json, jsonl and csv have no place for one.
Records are built from `json.encoder.encode_basestring`, the function `json.dumps` itself uses
for strings, so each is byte-identical to `json.dumps(record, ensure_ascii=False)` at a fraction
of the cost.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass
from json.encoder import encode_basestring as quote

Render = Callable[[str, str], str]


@dataclass(frozen=True)
class ExportFormat:
    """How a file of one format starts, separates its records and ends, and how it renders a pair."""

    name: str
    title: str  # as people see it, e.g. in the admin's download links
    extension: str
    content_type: str
    make_renderer: Callable[[str | None], Render]
    takes_system_prompt: bool = False
    opening: str = ""
    separator: str = ""
    closing: str = ""
    # The whole file when there are no records.
    empty: str = ""

    def renderer(self, system_prompt: str | None = None) -> Render:
        return self.make_renderer(system_prompt)


def _json_renderer(system_prompt: str | None) -> Render:
    # json.dump(pairs, f, ensure_ascii=False, indent=2) writes each pair exactly like this.
    return lambda i, o: '  {\n    "input": ' + quote(i) + ',\n    "output": ' + quote(o) + "\n  }"


def _jsonl_renderer(system_prompt: str | None) -> Render:
    return lambda i, o: '{"input": ' + quote(i) + ', "output": ' + quote(o) + "}\n"


def _chatml_renderer(system_prompt: str | None) -> Render:
    start = '{"messages": ['
    if system_prompt is not None:
        start += '{"role": "system", "content": ' + quote(system_prompt) + "}, "
    start += '{"role": "user", "content": '
    return lambda i, o: start + quote(i) + '}, {"role": "assistant", "content": ' + quote(o) + "}]}\n"


def _alpaca_renderer(system_prompt: str | None) -> Render:
    if system_prompt is None:
        return lambda i, o: '{"instruction": ' + quote(i) + ', "input": "", "output": ' + quote(o) + "}\n"
    start = '{"instruction": ' + quote(system_prompt) + ', "input": '
    return lambda i, o: start + quote(i) + ', "output": ' + quote(o) + "}\n"


def _sharegpt_renderer(system_prompt: str | None) -> Render:
    start = '{"conversations": ['
    if system_prompt is not None:
        start += '{"from": "system", "value": ' + quote(system_prompt) + "}, "
    start += '{"from": "human", "value": '
    return lambda i, o: start + quote(i) + '}, {"from": "gpt", "value": ' + quote(o) + "}]}\n"


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
            make_renderer=_json_renderer,
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
            make_renderer=_jsonl_renderer,
        ),
        ExportFormat(
            name="chatml",
            title="ChatML",
            extension=".jsonl",
            content_type=NDJSON,
            make_renderer=_chatml_renderer,
            takes_system_prompt=True,
        ),
        ExportFormat(
            name="alpaca",
            title="Alpaca",
            extension=".jsonl",
            content_type=NDJSON,
            make_renderer=_alpaca_renderer,
            takes_system_prompt=True,
        ),
        ExportFormat(
            name="sharegpt",
            title="ShareGPT",
            extension=".jsonl",
            content_type=NDJSON,
            make_renderer=_sharegpt_renderer,
            takes_system_prompt=True,
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
