"""Splitting an export into parts (train/validation/...): reading the fractions, sizing and dealing the parts.

A split (`{"train": 0.9, "validation": 0.1}`) gives each part exactly its share of the pairs
(largest remainder), chosen at random but the same for the same seed.
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping
from pathlib import Path

from storage.exceptions import InvalidInput, StorageError
from storage.services.datasets.formats import ExportFormat

PART_NAME = re.compile(r"^[A-Za-z0-9_-]+$")


def parse_split(text: str) -> dict[str, float]:
    """Read `train=0.9,validation=0.1` into {"train": 0.9, "validation": 0.1}."""
    parts: dict[str, float] = {}
    for item in text.split(","):
        name, sep, value = item.strip().partition("=")
        name = name.strip()
        if not sep or not name:
            raise InvalidInput(f"split part {item.strip()!r} must look like name=fraction, e.g. train=0.9")
        try:
            parts[name] = float(value)
        except ValueError:
            raise InvalidInput(f"split part {name!r}: {value.strip()!r} is not a number") from None
    return check_split(parts)


def check_split(parts: Mapping[str, float]) -> dict[str, float]:
    """Return the parts if they are at least two, well named, positive, and add up to 1."""
    if not isinstance(parts, Mapping) or len(parts) < 2:
        raise InvalidInput("a split needs at least two parts, e.g. train=0.9,validation=0.1")
    for name, fraction in parts.items():
        if not isinstance(name, str) or not PART_NAME.match(name):
            raise InvalidInput(f"split part name {name!r} may only use letters, digits, '-' and '_'")
        if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction < 1:
            raise InvalidInput(f"split part {name!r} must be a fraction between 0 and 1, got {fraction!r}")
    total = sum(parts.values())
    if abs(total - 1) > 1e-6:
        raise InvalidInput(f"split fractions must add up to 1, not {total:g}")
    return dict(parts)


def split_sizes(total: int, parts: Mapping[str, float]) -> dict[str, int]:
    """Share `total` out by the fractions, rounding so the sizes add up exactly (largest remainder)."""
    exact = {name: total * fraction for name, fraction in parts.items()}
    sizes = {name: int(share) for name, share in exact.items()}
    by_remainder = sorted(parts, key=lambda name: exact[name] - sizes[name], reverse=True)
    for name in by_remainder[: total - sum(sizes.values())]:
        sizes[name] += 1
    return sizes


def part_path(path: Path, part: str, spec: ExportFormat) -> Path:
    """`out.jsonl` → `out.train.jsonl`; `out` → `out.train.jsonl`."""
    if path.suffix:
        return path.with_name(f"{path.stem}.{part}{path.suffix}")
    return path.with_name(f"{path.name}.{part}{spec.extension}")


class SplitChooser:
    """Deals rows out to parts of fixed sizes, each deal equally likely (sequential sampling)."""

    def __init__(self, sizes: list[int], seed: int):
        self.remaining = list(sizes)
        self.left = sum(sizes)
        self.random = random.Random(seed)

    def __call__(self) -> int:
        if self.left == 0:
            raise StorageError("pairs were added to the sessions during the export; run it again")
        ticket = self.random.randrange(self.left)
        part = 0
        while ticket >= self.remaining[part]:
            ticket -= self.remaining[part]
            part += 1
        self.remaining[part] -= 1
        self.left -= 1
        return part
