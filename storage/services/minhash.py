"""MinHash signatures of pairs, vectorised with numpy: shingles, signatures, LSH band keys, exact Jaccard.

A pair is one text: its input and output normalised as exact dedupe does (`dedupe.normalized`:
NFKC, case folded, whitespace collapsed), joined by a separator no normalised text contains
(U+001F is whitespace to `str.split`, so normalisation removes it), padded to at least one
shingle. Its shingles are the 5-character windows of that text.

The signature is one-permutation hashing with rotation densification (Li, Owen and Zhang 2012;
Shrivastava 2017): each shingle is hashed once (64 bits), its top 6 bits pick one of 64 bins and
the bin keeps the smallest 32-bit value; an empty bin borrows its next non-empty neighbour's value.
That costs one hash per shingle instead of one per shingle and permutation, which is what makes a
million pairs fit the time budget: datasketch and rensa (both measured, see bench/near_duplicates.py)
spend most of their time in Python building the shingle list that numpy here never materialises.

LSH: 16 bands of 4 values. Two pairs of Jaccard s share at least one band key with probability
1 - (1 - s^4)^16: 0.9998 at 0.8, 0.98 at 0.7, 0.87 at 0.6, 0.64 at 0.5. Candidates are then
checked exactly on their shingle sets, so the bands decide recall, never precision.
"""

from __future__ import annotations

import hashlib

import numpy as np

from storage.services.dedupe import normalized

SHINGLE = 5
BINS = 64
BANDS = 16
ROWS = 4
SEPARATOR = "\x1f"
PAD = "\x1e"
EMPTY = np.uint32(0xFFFFFFFF)
SIGNATURE_BYTES = BINS * 4

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_PRIME = np.uint64(0x100000001B3)
_DENSIFY_STEP = np.uint32(0x9E3779B1)
_BAND_SEEDS = (np.arange(1, BANDS + 1, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)).reshape(1, BANDS)


def pair_text(input_text: str | None, output_text: str | None) -> str:
    """The one text a pair is shingled as: both sides normalised, joined, padded to one shingle."""
    text = normalized(input_text) + SEPARATOR + normalized(output_text)
    return text if len(text) >= SHINGLE else text.ljust(SHINGLE, PAD)


def shingles(text: str) -> set[str]:
    """The 5-character windows of a pair text."""
    return {text[i : i + SHINGLE] for i in range(len(text) - SHINGLE + 1)}


def jaccard(a: set[str], b: set[str]) -> float:
    """Shared shingles over all shingles (1.0 for two empty sets)."""
    if not a and not b:
        return 1.0
    common = len(a & b)
    return common / (len(a) + len(b) - common)


def jaccards(texts: list[str], left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """jaccard(shingles(texts[left[i]]), shingles(texts[right[i]])) for each i, the same float64 values.

    Exact, not estimated: each shingle is coded by the ranks of its 5 characters among the
    characters present (5 x `bits` bits, one code per shingle and one shingle per code), so equal
    codes are equal shingles and no hash can collide. The counts are integers and the division the
    same IEEE one `jaccard` does, so a threshold decides the same way. No string object per
    shingle: 14,036 text pairs of the bench's corpus took 0.86 s against 2.0-2.4 s with sets.
    """
    out = np.empty(len(left), dtype=np.float64)
    for start in range(0, len(left), JACCARD_CHUNK):
        part = slice(start, start + JACCARD_CHUNK)
        out[part] = _jaccards(texts, np.asarray(left[part], dtype=np.int64), np.asarray(right[part], dtype=np.int64))
    return out


JACCARD_CHUNK = 2_000  # text pairs compared at a time: ~1.5 M shingles in flight


def _jaccards(texts: list[str], left: np.ndarray, right: np.ndarray) -> np.ndarray:
    count = len(left)
    members = np.sort(np.concatenate([left, right]))
    members = members[np.concatenate([[True], members[1:] != members[:-1]])]
    chosen = [texts[i] for i in members.tolist()]
    codes = np.frombuffer("".join(chosen).encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    present = np.zeros(int(codes.max()) + 1, dtype=bool)
    present[codes] = True
    bits = max(1, (int(np.count_nonzero(present)) - 1).bit_length())
    shift = SHINGLE * bits + 1  # a key: text pair index | shingle code | side (0 left, 1 right)
    if shift + max(1, (count - 1).bit_length()) > 64:
        # Too many distinct characters for the codes and the text pair index to share 64 bits: fewer
        # text pairs at a time (fewer characters, fewer index bits); sets only when one text pair
        # alone has over 4,096 distinct characters.
        if count > 1:
            half = count // 2
            return np.concatenate(
                [_jaccards(texts, left[:half], right[:half]), _jaccards(texts, left[half:], right[half:])]
            )
        return np.array([jaccard(shingles(texts[left[0]]), shingles(texts[right[0]]))])
    ranks = (np.cumsum(present, dtype=np.uint64) - np.uint64(1))[codes]
    windows = len(ranks) - SHINGLE + 1
    shingle = ranks[:windows].copy()
    for k in range(1, SHINGLE):
        shingle <<= np.uint64(bits)
        shingle |= ranks[k : k + windows]
    # Text t's shingles are shingle[first[t] : first[t] + size[t]] (texts are at least 5 long).
    lengths = np.fromiter(map(len, chosen), dtype=np.int64, count=len(chosen))
    first = np.cumsum(lengths) - lengths
    size = lengths - SHINGLE + 1
    sides = np.concatenate([np.searchsorted(members, left), np.searchsorted(members, right)])
    run = size[sides]
    ends = np.cumsum(run)
    index = np.repeat(first[sides] - (ends - run), run)
    index += np.arange(ends[-1], dtype=np.int64)
    # key = text pair | shingle code | side: sorted, each side's repeats are neighbours, and so is a
    # shingle both sides hold.
    pairs = np.arange(count, dtype=np.uint64) << np.uint64(shift)
    keys = shingle[index]
    keys <<= np.uint64(1)
    keys |= np.repeat(np.concatenate([pairs, pairs | np.uint64(1)]), run)
    keys.sort()
    distinct = np.empty(len(keys), dtype=bool)
    distinct[0] = True
    np.not_equal(keys[1:], keys[:-1], out=distinct[1:])
    keys = keys[distinct]
    sizes = np.bincount(
        (((keys >> np.uint64(shift)) << np.uint64(1)) | (keys & np.uint64(1))).view(np.int64), minlength=2 * count
    )
    halves = keys >> np.uint64(1)
    shared = keys[1:][halves[1:] == halves[:-1]]
    common = np.bincount((shared >> np.uint64(shift)).view(np.int64), minlength=count)
    return common / (sizes[0::2] + sizes[1::2] - common)


def content_hash(input_text: str | None, output_text: str | None) -> int:
    """A signed 64-bit hash of the raw texts: a stored signature is stale when it differs."""
    digest = hashlib.blake2b(
        (input_text or "").encode("utf-8", "surrogatepass")
        + b"\0"
        + (output_text or "").encode("utf-8", "surrogatepass"),
        digest_size=8,
    ).digest()
    return int.from_bytes(digest, "little", signed=True)


def _mix(values: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser, in place on a uint64 array (numpy wraps uint64 arithmetic)."""
    scratch = np.empty_like(values)  # one buffer for the three shifts instead of a new array each
    for shift, factor in ((30, _M1), (27, _M2), (31, None)):
        np.right_shift(values, np.uint64(shift), out=scratch)
        values ^= scratch
        if factor is not None:
            values *= factor
    return values


def signatures(texts: list[str]) -> np.ndarray:
    """The (len(texts), 64) uint32 signatures of pair texts (each at least 5 characters long)."""
    # 500 texts at a time: the arrays then stay in the CPU cache (a thousand: 2.6 s -> 0.7 s for
    # 20,000 texts against all at once; 500 was ~10 % faster again than a thousand).
    parts = [_signatures(texts[start : start + 500]) for start in range(0, len(texts), 500)]
    return np.concatenate(parts) if parts else np.empty((0, BINS), dtype=np.uint32)


def _signatures(texts: list[str]) -> np.ndarray:
    count = len(texts)
    if not count:
        return np.empty((0, BINS), dtype=np.uint32)
    # Converted once: every step below is then uint64 with uint64, with no cast inside the loops.
    codes = np.frombuffer("".join(texts).encode("utf-32-le", "surrogatepass"), dtype=np.uint32).astype(np.uint64)
    lengths = np.fromiter(map(len, texts), dtype=np.int64, count=count)
    windows = len(codes) - SHINGLE + 1
    hashes = codes[:windows].copy()
    for k in range(1, SHINGLE):
        hashes *= _PRIME
        hashes ^= codes[k : k + windows]
    _mix(hashes)
    # A window belongs to the text it starts in: its bin is that text's row, picked by the top 6 bits.
    slots = np.repeat(np.arange(0, count * BINS, BINS, dtype=np.int64), lengths)[:windows]
    slots += (hashes >> np.uint64(58)).view(np.int64)
    # A window that runs on into the next text (the last 4 of each) goes to a spare bin past the end.
    slots[(np.cumsum(lengths)[:-1, None] - np.arange(1, SHINGLE, dtype=np.int64)).ravel()] = count * BINS
    flat = np.full(count * BINS + 1, EMPTY, dtype=np.uint32)
    np.minimum.at(flat, slots, hashes.astype(np.uint32))  # the low 32 bits
    return _densified(flat[:-1].reshape(count, BINS))


def _densified(table: np.ndarray) -> np.ndarray:
    """Fill each empty bin from the next non-empty bin to its right (circularly), shifted by the distance."""
    empty = table == EMPTY
    rows = np.flatnonzero(empty.any(axis=1))
    if not len(rows):
        return table
    if len(rows) < len(table):  # most texts have no empty bin: only the others are filled
        table = table.copy()
        table[rows] = _densified(table[rows])
        return table
    doubled = np.concatenate([table, table], axis=1)
    positions = np.where(np.concatenate([~empty, ~empty], axis=1), np.arange(2 * BINS), 2 * BINS)
    nearest = np.minimum.accumulate(positions[:, ::-1], axis=1)[:, ::-1][:, :BINS]
    nearest = np.minimum(nearest, 2 * BINS - 1)  # a text always has a shingle; guard anyway
    distance = (nearest - np.arange(BINS)).astype(np.uint32)
    borrowed = np.take_along_axis(doubled, nearest, axis=1) + distance * _DENSIFY_STEP
    return np.where(empty, borrowed, table)


def band_keys(table: np.ndarray) -> np.ndarray:
    """(n, 16) signed 64-bit LSH keys: one hash of each band's 4 values, different per band."""
    rows = table.reshape(len(table), BANDS, ROWS).astype(np.uint64)
    keys = np.repeat(_BAND_SEEDS, len(table), axis=0)
    for r in range(ROWS):
        keys ^= rows[:, :, r]
        _mix(keys)
    return keys.view(np.int64)


def from_blob(blob: bytes) -> np.ndarray:
    """A stored signature back as 64 uint32 values."""
    return np.frombuffer(bytes(blob), dtype="<u4")


def to_blob(signature: np.ndarray) -> bytes:
    """A signature as 256 little-endian bytes."""
    return signature.astype("<u4").tobytes()
