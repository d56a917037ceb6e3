"""Reading an export file back into records and pairs, format by format (shared by the export tests)."""

from __future__ import annotations

import csv
import io
import json


def read_records(path, fmt) -> list[dict]:
    text = path.read_bytes().decode("utf-8")  # not read_text(): it would turn \r\n into \n
    if fmt == "csv":
        return list(csv.DictReader(io.StringIO(text, newline="")))
    if fmt == "json":
        return json.loads(text)
    return [json.loads(line) for line in text.split("\n") if line]


def as_pair(record: dict, fmt: str) -> tuple[str, str]:
    if fmt == "chatml":
        user, assistant = record["messages"]
        assert (user["role"], assistant["role"]) == ("user", "assistant")
        return user["content"], assistant["content"]
    if fmt == "sharegpt":
        human, gpt = record["conversations"]
        assert (human["from"], gpt["from"]) == ("human", "gpt")
        return human["value"], gpt["value"]
    if fmt == "alpaca":
        assert record["input"] == ""
        return record["instruction"], record["output"]
    return record["input"], record["output"]
