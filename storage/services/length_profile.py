"""How long a session's pairs are, in characters and tokens, against the training config's max_seq_length.

Tokens are exact with a local Hugging Face `tokenizer.json` (the `tokenizers` package, nothing downloaded):
each side is encoded without special tokens, and a pair's total is input + output tokens (the chat template's
few tokens come on top and depend on the model). Without a tokenizer, tokens are an estimate, characters / 4
rounded up per side, and every result says so (`exact` False, `method`).

`max_seq_length` comes from the caller or from a saved training config: FineFoundry stores it as
`hp.max_seq_len` (`hp.max_seq_length` is read too); a config without one trains at FineFoundry's trainer
default, 2048, and the result says that is where the number came from.

`sessions_without_long_pairs` copies the pairs that fit into a new session (set-based, in stored order), with
metadata saying where it came from and by which rule.
"""

from __future__ import annotations

import math
import os
import statistics
from array import array
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from django.db import connections, transaction

from storage.exceptions import InvalidInput, NotFound
from storage.models import ScrapeSession, TrainingConfig
from storage.search import index as search_index
from storage.services.merge import copy_pairs_by_id
from storage.services.scan import PAGE_SIZE, iter_pairs
from storage.services.sessions import existing_sessions
from storage.validation import optional_text, require_int

CHARS_PER_TOKEN = 4
TRAINER_DEFAULT_MAX_SEQ_LENGTH = 2048  # FineFoundry's trainers (`--max_seq_len`, default 2048)
CONFIG_KEYS = ("max_seq_len", "max_seq_length")
SIDES = ("input", "output", "total")

Progress = Callable[[int, int], None]


class TokenCounter:
    """Counts tokens of texts: exactly with a tokenizer.json, or estimated from characters."""

    def __init__(self, tokenizer_path: str | os.PathLike | None = None):
        self.path = None if tokenizer_path is None else Path(tokenizer_path)
        self.tokenizer = None
        if self.path is not None:
            from tokenizers import Tokenizer

            if not self.path.is_file():
                raise InvalidInput(f"tokenizer file {self.path} does not exist")
            try:
                self.tokenizer = Tokenizer.from_file(str(self.path))
            except Exception as exc:  # tokenizers raises plain Exception for a bad file
                raise InvalidInput(
                    f"{self.path} is not a tokenizer.json the tokenizers package can read: {exc}"
                ) from None

    @property
    def exact(self) -> bool:
        return self.tokenizer is not None

    @property
    def method(self) -> str:
        if self.tokenizer is not None:
            return f"exact: {self.path.name} (input and output tokens, no special tokens)"
        return f"estimate: characters / {CHARS_PER_TOKEN}, rounded up per side (give a tokenizer.json for exact counts)"

    def count(self, texts: list[str]) -> list[int]:
        if self.tokenizer is None:
            return [math.ceil(len(text) / CHARS_PER_TOKEN) for text in texts]
        return [len(encoding.ids) for encoding in self.tokenizer.encode_batch(texts, add_special_tokens=False)]


@dataclass(frozen=True)
class Histogram:
    """Counts per bin; bin i holds lengths in (edges[i-1], edges[i]] (the first bin is [0, edges[0]])."""

    edges: list[int]
    counts: list[int]

    def labelled(self) -> list[tuple[str, int]]:
        labels = []
        for index, edge in enumerate(self.edges):
            low = 0 if index == 0 else self.edges[index - 1] + 1
            labels.append((f"{low:,}-{edge:,}", self.counts[index]))
        return labels


def power_of_two_edges(largest: int) -> list[int]:
    """16, 32, 64, ... up to the first edge at or above `largest`."""
    edges = [16]
    while edges[-1] < largest:
        edges.append(edges[-1] * 2)
    return edges


def histogram(values: array) -> Histogram:
    edges = power_of_two_edges(max(values, default=0))
    counts = [0] * len(edges)
    for value in values:
        counts[max(0, (max(value, 1) - 1).bit_length() - 4)] += 1
    return Histogram(edges, counts)


@dataclass(frozen=True)
class Summary:
    smallest: int
    median: float
    p95: int
    largest: int
    mean: float
    histogram: Histogram

    @classmethod
    def of(cls, values: array) -> Summary:
        if not values:
            return cls(0, 0, 0, 0, 0.0, histogram(values))
        ordered = sorted(values)
        p95 = ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)]
        return cls(
            ordered[0], statistics.median(ordered), p95, ordered[-1], sum(ordered) / len(ordered), histogram(values)
        )

    def as_dict(self) -> dict:
        return {
            "min": self.smallest,
            "median": self.median,
            "p95": self.p95,
            "max": self.largest,
            "mean": round(self.mean, 2),
            "histogram": [
                {"up_to": edge, "pairs": count}
                for edge, count in zip(self.histogram.edges, self.histogram.counts, strict=True)
            ],
        }


@dataclass
class LengthProfile:
    session_id: int
    pairs: int
    exact: bool
    method: str
    max_seq_length: int | None
    max_seq_length_source: str | None
    chars: dict[str, Summary] = field(default_factory=dict)
    tokens: dict[str, Summary] = field(default_factory=dict)
    over: int = 0  # pairs whose total tokens exceed max_seq_length

    @property
    def over_share(self) -> float:
        return self.over / self.pairs if self.pairs else 0.0

    def as_dict(self) -> dict:
        return {
            "session_id": self.session_id,
            "pairs": self.pairs,
            "tokens_exact": self.exact,
            "token_method": self.method,
            "max_seq_length": self.max_seq_length,
            "max_seq_length_source": self.max_seq_length_source,
            "over_max_seq_length": self.over if self.max_seq_length is not None else None,
            "over_share": round(self.over_share, 6) if self.max_seq_length is not None else None,
            "chars": {side: summary.as_dict() for side, summary in self.chars.items()},
            "tokens": {side: summary.as_dict() for side, summary in self.tokens.items()},
        }


def max_seq_length_of_config(*, name: str) -> tuple[int, str]:
    """(max_seq_length, where it came from) of the saved training config `name`."""
    config = TrainingConfig.objects.filter(name=name).values_list("config", flat=True).first()
    if config is None:
        raise NotFound(f"training config {name!r} does not exist")
    hp = config.get("hp") if isinstance(config, dict) else None
    if not isinstance(hp, dict):
        raise InvalidInput(f"training config {name!r} has no 'hp' section")
    for key in CONFIG_KEYS:
        if key in hp and hp[key] not in (None, ""):
            try:
                value = int(hp[key])
            except (TypeError, ValueError):
                raise InvalidInput(f"training config {name!r}: hp.{key} is {hp[key]!r}, not a number") from None
            if value < 1:
                raise InvalidInput(f"training config {name!r}: hp.{key} must be at least 1, not {value}")
            return value, f"config {name!r} (hp.{key})"
    return TRAINER_DEFAULT_MAX_SEQ_LENGTH, f"config {name!r} sets none: FineFoundry's trainer default"


def resolve_max_seq_length(*, max_seq_length: int | None, config_name: str | None) -> tuple[int | None, str | None]:
    if max_seq_length is not None and config_name is not None:
        raise InvalidInput("give a max_seq_length or a config, not both")
    if max_seq_length is not None:
        return require_int(max_seq_length, name="max_seq_length", minimum=1), "given"
    if config_name is not None:
        return max_seq_length_of_config(name=config_name)
    return None, None


def pair_token_lengths(
    session_id: int, counter: TokenCounter
) -> Iterator[tuple[list[int], list[str], list[str], list[int], list[int]]]:
    """Per page: pair ids, inputs, outputs, input tokens, output tokens."""
    page: list[tuple[int, str, str]] = []
    for row in iter_pairs([session_id]):
        page.append(row)
        if len(page) == PAGE_SIZE:
            yield _page_lengths(page, counter)
            page = []
    if page:
        yield _page_lengths(page, counter)


def _page_lengths(page: list[tuple[int, str, str]], counter: TokenCounter):
    ids = [pair_id for pair_id, _, _ in page]
    inputs = [input_text for _, input_text, _ in page]
    outputs = [output_text for _, _, output_text in page]
    return ids, inputs, outputs, counter.count(inputs), counter.count(outputs)


def profile_session(
    *,
    session_id: int,
    tokenizer_path: str | os.PathLike | None = None,
    max_seq_length: int | None = None,
    config_name: str | None = None,
    progress: Progress | None = None,
) -> LengthProfile:
    """Length histograms of a session's pairs and how many exceed max_seq_length."""
    require_int(session_id, name="session id", minimum=1)
    session = existing_sessions([session_id])[session_id]
    limit, source = resolve_max_seq_length(max_seq_length=max_seq_length, config_name=config_name)
    counter = TokenCounter(tokenizer_path)
    chars = {side: array("q") for side in SIDES}
    tokens = {side: array("q") for side in SIDES}
    over = 0
    done = 0
    for _, inputs, outputs, input_tokens, output_tokens in pair_token_lengths(session_id, counter):
        for input_text, output_text, in_tokens, out_tokens in zip(
            inputs, outputs, input_tokens, output_tokens, strict=True
        ):
            chars["input"].append(len(input_text))
            chars["output"].append(len(output_text))
            chars["total"].append(len(input_text) + len(output_text))
            tokens["input"].append(in_tokens)
            tokens["output"].append(out_tokens)
            tokens["total"].append(in_tokens + out_tokens)
            if limit is not None and in_tokens + out_tokens > limit:
                over += 1
        done += len(inputs)
        if progress is not None:
            progress(done, session.pair_count or done)
    return LengthProfile(
        session_id=session_id,
        pairs=done,
        exact=counter.exact,
        method=counter.method,
        max_seq_length=limit,
        max_seq_length_source=source,
        chars={side: Summary.of(values) for side, values in chars.items()},
        tokens={side: Summary.of(values) for side, values in tokens.items()},
        over=over,
    )


def sessions_without_long_pairs(
    *,
    session_id: int,
    max_tokens: int,
    tokenizer_path: str | os.PathLike | None = None,
    name: str | None = None,
    progress: Progress | None = None,
) -> ScrapeSession:
    """A new session with the pairs of `session_id` whose input + output tokens are at most `max_tokens`."""
    require_int(session_id, name="session id", minimum=1)
    require_int(max_tokens, name="max_tokens", minimum=1)
    optional_text(name, name="name")
    source = existing_sessions([session_id])[session_id]
    counter = TokenCounter(tokenizer_path)
    kept: list[int] = []
    removed = 0
    for ids, _, _, input_tokens, output_tokens in pair_token_lengths(session_id, counter):
        for pair_id, in_tokens, out_tokens in zip(ids, input_tokens, output_tokens, strict=True):
            if in_tokens + out_tokens <= max_tokens:
                kept.append(pair_id)
            else:
                removed += 1
        if progress is not None:
            progress(len(kept) + removed, source.pair_count or len(kept) + removed)
    with transaction.atomic():
        derived = ScrapeSession.objects.create(
            source=source.source,
            source_details=source.source_details,
            dataset_format=source.dataset_format,
            name=name if name and name.strip() else f"{source.label} (≤ {max_tokens:,} tokens)",
            metadata={
                "derived_from": session_id,
                "filter": "without_long_pairs",
                "max_tokens": max_tokens,
                "tokens": counter.method,
                "removed": removed,
            },
        )
        with connections["default"].cursor() as cursor:
            copy_pairs_by_id(cursor, derived.pk, kept)
        derived.refresh_from_db(fields=["pair_count"])
    search_index.index_in_background()
    return derived
