"""The vectorised MinHash pieces give exactly what their plain definitions give.

Stored signatures and band keys outlive the code that made them (a new session is looked up
against keys signed months ago), so `signatures` is held here to a plain Python rendering of its
definition, bit for bit; `jaccards` (numpy, on rank-coded shingles) to Python sets of the shingle
strings, float for float, so a threshold decides the same way; and the packed-sort order the band
rows are written in to numpy's stable argsort, including the values that defeat the packing.
"""

from __future__ import annotations

import random

import numpy as np
import pytest

from storage.services import minhash
from storage.services.near_duplicates import _key_order

MASK = (1 << 64) - 1
# Combining marks, astral emoji, CJK, a lone surrogate and the separator and padding characters.
ALPHABET = "abcde xyz.,\u0301\u00e9\U0001f600\u4e00\u4e01\ud800\x1e\x1f"


def texts(rng: random.Random, count: int, alphabet: str = ALPHABET, longest: int = 60) -> list[str]:
    made = ["".join(rng.choice(alphabet) for _ in range(rng.randint(5, longest))) for _ in range(count)]
    return [*made, "abcde", "\x1e" * 5, "aaaaaaaaaaaa", "abcabcabcabcabc"]  # shortest, padding, repeats


def mixed(value: int) -> int:
    value ^= value >> 30
    value = (value * 0xBF58476D1CE4E5B9) & MASK
    value ^= value >> 27
    value = (value * 0x94D049BB133111EB) & MASK
    return value ^ (value >> 31)


def plain_signature(text: str) -> list[int]:
    """One-permutation MinHash with rotation densification, one shingle at a time."""
    bins = [None] * minhash.BINS
    for start in range(len(text) - minhash.SHINGLE + 1):
        value = 0
        for k, char in enumerate(text[start : start + minhash.SHINGLE]):
            value = ord(char) if k == 0 else ((value * 0x100000001B3) & MASK) ^ ord(char)
        value = mixed(value)
        slot, low = value >> 58, value & 0xFFFFFFFF
        bins[slot] = low if bins[slot] is None else min(bins[slot], low)
    signature = []
    for slot in range(minhash.BINS):
        distance = next(d for d in range(minhash.BINS) if bins[(slot + d) % minhash.BINS] is not None)
        signature.append((bins[(slot + distance) % minhash.BINS] + distance * 0x9E3779B1) & 0xFFFFFFFF)
    return signature


def test_signatures_are_the_plain_definition_bit_for_bit():
    rng = random.Random(14)
    # Long texts fill every bin; short ones leave bins empty (densified); 1,300 texts span three chunks.
    sample = texts(rng, 1_300) + texts(rng, 40, longest=2_000)
    table = minhash.signatures(sample)
    assert table.dtype == np.uint32 and table.shape == (len(sample), minhash.BINS)
    assert [list(map(int, row)) for row in table] == [plain_signature(text) for text in sample]


def test_exact_jaccard_with_numpy_is_the_jaccard_of_the_shingle_sets():
    rng = random.Random(15)
    sample = texts(rng, 800)
    # Near-duplicates too, so values sit on both sides of a threshold.
    sample += [text[:-1] + "q" for text in sample[:300]]
    left = np.array([rng.randrange(len(sample)) for _ in range(5_000)] + list(range(300)))
    right = np.array([rng.randrange(len(sample)) for _ in range(5_000)] + list(range(len(sample) - 300, len(sample))))
    expected = np.array(
        [
            minhash.jaccard(minhash.shingles(sample[a]), minhash.shingles(sample[b]))
            for a, b in zip(left, right, strict=True)
        ]
    )
    assert np.array_equal(minhash.jaccards(sample, left, right), expected)  # float for float
    assert 0 < np.count_nonzero(expected >= 0.8) < len(expected)


@pytest.mark.parametrize("distinct", [1_500, 5_000], ids=["split-into-smaller-groups", "sets-for-one-text-pair"])
def test_exact_jaccard_with_more_characters_than_the_codes_hold(distinct):
    rng = random.Random(distinct)
    alphabet = "".join(chr(0x4E00 + n) for n in range(distinct))
    sample = [
        "".join(rng.choice(alphabet) for _ in range(distinct if n < 2 else 60)) for n in range(400)
    ]  # the first two hold most of the alphabet each
    left, right = np.arange(0, 399), np.arange(1, 400)
    expected = [
        minhash.jaccard(minhash.shingles(sample[a]), minhash.shingles(sample[b]))
        for a, b in zip(left, right, strict=True)
    ]
    assert np.array_equal(minhash.jaccards(sample, left, right), np.array(expected))


def test_band_row_order_is_numpys_stable_argsort_even_when_the_packing_collides():
    rng = np.random.default_rng(16)
    common = rng.integers(-(2**63), 2**63 - 1, size=50, dtype=np.int64)
    column = rng.choice(common, size=10_000)  # many equal values: ties ordered by position
    assert np.array_equal(_key_order(column), np.argsort(column, kind="stable"))
    # Values equal in their high bits but not in the low ones the positions take: the packing
    # cannot order them, and the exact argsort must take over.
    colliding = np.array([(5 << 20) | 7, (5 << 20) | 3, (5 << 20) | 7, -1, -(1 << 62)] * 300, dtype=np.int64)
    assert np.array_equal(_key_order(colliding), np.argsort(colliding, kind="stable"))
