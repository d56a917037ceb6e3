"""Reading dataset files record by record, in constant memory, with errors that say where.

Three containers: a JSON array (`[{...}, {...}]`, read incrementally, never whole), JSON Lines
(one value per line; blank lines are skipped) and CSV (a header row, then one record per row,
as dicts). Every reader yields `(record number, line number, value)`, and every problem is an
InvalidInput naming the file, the record or line, and what is wrong. The text must be UTF-8; a
UTF-8 byte order mark at the start is skipped (Excel and Notepad write one), other encodings
are refused.
"""

from __future__ import annotations

import codecs
import csv
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

from storage.exceptions import InvalidInput

READ_SIZE = 1024 * 1024
WHITESPACE = re.compile(r"[ \t\n\r]*")
UTF8_BOM = codecs.BOM_UTF8
FOREIGN_BOMS = {
    codecs.BOM_UTF32_LE: "UTF-32",
    codecs.BOM_UTF32_BE: "UTF-32",
    codecs.BOM_UTF16_LE: "UTF-16",
    codecs.BOM_UTF16_BE: "UTF-16",
}

Located = tuple[int, int, Any]


def open_dataset(path: Path) -> BinaryIO:
    """Open a file for reading, or say plainly why it cannot be read."""
    if not path.exists():
        raise InvalidInput(f"{path}: no such file")
    if path.is_dir():
        raise InvalidInput(f"{path}: is a directory, not a file")
    try:
        return path.open("rb")
    except OSError as exc:
        raise InvalidInput(f"{path}: cannot be read: {exc.strerror}") from exc


def first_character(path: Path) -> str:
    """The first non-whitespace character of the text (after a UTF-8 BOM); refuse empty and non-UTF-8 files."""
    with open_dataset(path) as handle:
        head = handle.read(4096)
        if not head:
            raise InvalidInput(f"{path}: the file is empty")
        start = check_encoding(path, head)
        while True:
            stripped = head[start:].lstrip(b" \t\r\n")
            if stripped:
                # Only '[' and '{' matter to the caller; anything else just needs to differ from them.
                return chr(stripped[0]) if stripped[0] < 0x80 else "?"
            more = handle.read(READ_SIZE)
            if not more:
                raise InvalidInput(f"{path}: the file is empty (nothing but whitespace)")
            head, start = more, 0


def check_encoding(path: Path, head: bytes) -> int:
    """Refuse UTF-16/32 text; return where the text starts (after a UTF-8 BOM)."""
    for bom, name in FOREIGN_BOMS.items():
        if head.startswith(bom) and not head.startswith(UTF8_BOM):
            raise InvalidInput(f"{path}: the file is {name} text; save it as UTF-8")
    return len(UTF8_BOM) if head.startswith(UTF8_BOM) else 0


def not_utf8(path: Path, where: str, data: bytes, exc: UnicodeDecodeError) -> InvalidInput:
    bad = data[exc.start : exc.start + 1].hex() or "??"
    return InvalidInput(f"{path}: {where} is not UTF-8 text (byte 0x{bad} at offset {exc.start}); save it as UTF-8")


# --- JSON Lines and CSV: line by line -----------------------------------------------------


def iter_lines(path: Path, *, max_line_bytes: int) -> Iterator[tuple[int, str]]:
    """Yield (line number, text with its newline) of a UTF-8 file, refusing lines longer than max_line_bytes."""
    with open_dataset(path) as handle:
        number = 0
        while True:
            raw = handle.readline(max_line_bytes + 1)
            if not raw:
                return
            number += 1
            if len(raw) > max_line_bytes:
                raise InvalidInput(f"{path}: line {number} is longer than {max_line_bytes:,} bytes")
            if number == 1:
                raw = raw[check_encoding(path, raw) :]
            try:
                yield number, raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise not_utf8(path, f"line {number}", raw, exc) from None


def iter_json_lines(path: Path, *, max_line_bytes: int) -> Iterator[Located]:
    """Yield every non-blank line of a JSON Lines file, parsed."""
    record = 0
    for number, line in iter_lines(path, max_line_bytes=max_line_bytes):
        if not line.strip():
            continue
        record += 1
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InvalidInput(
                f"{path}: record {record} (line {number}) is not valid JSON: {exc.msg} at column {exc.colno}"
                " (JSON Lines needs one whole record per line)"
            ) from None
        except RecursionError:
            raise InvalidInput(f"{path}: record {record} (line {number}) is nested too deeply") from None
        yield record, number, value


@contextmanager
def csv_field_limit(limit: int) -> Iterator[None]:
    # The csv module's limit is process-wide; raise it for this read only.
    previous = csv.field_size_limit()
    csv.field_size_limit(max(previous, limit + 1))
    try:
        yield
    finally:
        csv.field_size_limit(previous)


def iter_csv_records(path: Path, *, max_line_bytes: int, max_field_chars: int) -> Iterator[Located]:
    """Yield each data row of a CSV file as a dict keyed by the header."""
    position = {"line": 0}

    def lines() -> Iterator[str]:
        for number, line in iter_lines(path, max_line_bytes=max_line_bytes):
            position["line"] = number
            if "\x00" in line:
                raise InvalidInput(f"{path}: line {number} contains a NUL character")
            yield line

    with csv_field_limit(max_field_chars):
        reader = csv.reader(lines(), strict=True)
        try:
            header = next(reader, None)
            if header is None:
                raise InvalidInput(f"{path}: the file is empty")
            if not any(name.strip() for name in header):
                raise InvalidInput(f"{path}: the first line must be a header naming the columns, e.g. input,output")
            repeated = sorted({name for name in header if header.count(name) > 1})
            if repeated:
                raise InvalidInput(f"{path}: the header names column {', '.join(map(repr, repeated))} more than once")
            record = 0
            for row in reader:
                if not row or row == [""]:
                    continue
                record += 1
                if len(row) != len(header):
                    raise InvalidInput(
                        f"{path}: record {record} (line {position['line']}) has {len(row)} fields;"
                        f" the header has {len(header)}"
                    )
                yield record, position["line"], dict(zip(header, row, strict=True))
        except csv.Error as exc:
            reason = str(exc)
            if "field larger than field limit" in reason:
                reason = f"a field is longer than the limit of {max_field_chars:,} characters"
            raise InvalidInput(f"{path}: line {position['line']} is not valid CSV: {reason}") from None


def read_csv_header(path: Path, *, max_line_bytes: int) -> list[str]:
    """The column names on the first line of a CSV file."""
    lines = (line for _, line in iter_lines(path, max_line_bytes=max_line_bytes))
    try:
        return next(csv.reader(lines), [])
    except csv.Error as exc:
        raise InvalidInput(f"{path}: line 1 is not valid CSV: {exc}") from None


# --- JSON arrays: incrementally -----------------------------------------------------------


class JsonArrayReader:
    """Walk a `[value, value, ...]` file one value at a time, holding about one READ_SIZE of text."""

    def __init__(self, path: Path, handle: BinaryIO, *, max_record_chars: int):
        self.path = path
        self.handle = handle
        self.max_record_chars = max_record_chars
        self.decoder = codecs.getincrementaldecoder("utf-8")("strict")
        self.offset = 0
        self.text = ""
        self.pos = 0
        self.eof = False
        self.line = 1
        self.counted = 0

    def read_more(self) -> bool:
        """Drop the text already read and append at least as much again; False at the end of the file."""
        self.line_at(self.pos)
        self.text = self.text[self.pos :]
        self.counted -= self.pos
        self.pos = 0
        if self.eof:
            return False
        want = max(READ_SIZE, len(self.text))
        data = self.handle.read(want)
        if self.offset == 0:
            data = data[check_encoding(self.path, data) :]
        try:
            pending = len(self.decoder.getstate()[0])
            self.text += self.decoder.decode(data, final=not data)
        except UnicodeDecodeError as exc:
            raise InvalidInput(
                f"{self.path}: the file is not UTF-8 text (byte offset {self.offset - pending + exc.start}); "
                "save it as UTF-8"
            ) from None
        self.offset += len(data)
        self.eof = not data
        return True

    def line_at(self, pos: int) -> int:
        """The line number of text position `pos`, counting each newline once."""
        if pos > self.counted:
            self.line += self.text.count("\n", self.counted, pos)
            self.counted = pos
        return self.line

    def skip_whitespace(self) -> str:
        """Move past whitespace; return the next character, or "" at the end of the file."""
        while True:
            self.pos = WHITESPACE.match(self.text, self.pos).end()
            if self.pos < len(self.text):
                return self.text[self.pos]
            if not self.read_more():
                return ""

    def error(self, message: str) -> InvalidInput:
        return InvalidInput(f"{self.path}: {message}")

    def values(self) -> Iterator[Located]:
        if self.skip_whitespace() != "[":
            raise self.error("expected a JSON list ([...]) of records; the file does not start with '['")
        self.pos += 1
        record = 0
        if self.skip_whitespace() == "]":
            self.pos += 1
        else:
            while True:
                record += 1
                line = self.line_at(self.pos)
                value = self.decode_value(record, line)
                yield record, line, value
                following = self.skip_whitespace()
                if following == "]":
                    self.pos += 1
                    break
                if following == "":
                    raise self.error(f"the file ends after record {record}, before the closing ']' (truncated?)")
                if following != ",":
                    raise self.error(f"expected ',' or ']' after record {record} (line {self.line_at(self.pos)})")
                self.pos += 1
        if self.skip_whitespace():
            raise self.error(f"unexpected text after the closing ']' (line {self.line_at(self.pos)})")

    def decode_value(self, record: int, line: int) -> Any:
        while True:
            if self.skip_whitespace() == "":
                raise self.error(f"the file ends where record {record} should be (truncated?)")
            try:
                value, end = self.decoder_json.raw_decode(self.text, self.pos)
            except json.JSONDecodeError as exc:
                # Read on in case the record is only cut off by the end of the text read so far,
                # but not past the largest record there can be: then the JSON is simply wrong.
                if len(self.text) - self.pos <= self.max_record_chars and self.read_more():
                    continue
                where = self.line_at(exc.pos)
                raise self.error(f"record {record} (line {where}) is not valid JSON: {exc.msg}") from None
            except RecursionError:
                raise self.error(f"record {record} (line {line}) is nested too deeply") from None
            # A value that ends exactly at the end of the text read so far may go on (a number, say).
            if end == len(self.text) and self.read_more():
                continue
            self.pos = end
            return value

    decoder_json = json.JSONDecoder()


def iter_json_array(path: Path, *, max_record_chars: int) -> Iterator[Located]:
    """Yield every element of a file holding one JSON list."""
    with open_dataset(path) as handle:
        yield from JsonArrayReader(path, handle, max_record_chars=max_record_chars).values()
