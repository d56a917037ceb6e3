"""Near-duplicate pairs: stored MinHash signatures, signed incrementally, LSH candidates, an exact check, clusters.

Each pair's signature (storage.services.minhash) is stored once in `storage_pair_signatures` with
a hash of its raw texts, and its 16 LSH band keys in `storage_pair_bands` (migration 0008) or, for
pairs signed in small runs, in the small `storage_pair_bands_recent` (migration 0010), merged into
the big table in one sorted pass (in short slices) past RECENT_LIMIT rows. A run reads the given sessions' pairs, signs
those without a signature or whose texts changed since (the content hash differs), signs pairs of
other sessions that have none yet, and then:

- candidates among the given sessions' pairs come from grouping their band keys in memory;
- candidates among everything else stored come from looking the given pairs' distinct band keys up
  in both band tables (one primary-key seek per key and table, through a temporary probe table), so
  a new session is checked against the whole stored corpus without recomputing or re-reading it;
  keys shared by more than BUCKET_CAP stored pairs are not looked up (see BUCKET_CAP);
- every candidate whose signatures agree on at least `threshold - 0.15` of their 64 values
  (a 4-sigma margin) is checked exactly: the Jaccard similarity of the two shingle sets;
- clusters are the connected components of the pairs that pass, with at least one member in the
  given sessions. Removal only ever deletes pairs of the given sessions.

Signature rows have no foreign key (see migration 0008): rows of deleted pairs are ignored by every
lookup (candidates are read back from scraped_pairs), pruned by `prune_orphan_signatures` (doctor)
and by removal here.
"""

from __future__ import annotations

import itertools
import operator
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
from django.db import connections, transaction

from storage.db.write_batches import (
    FIRST_BATCH,
    MAX_BATCH,
    next_batch_size,
    sqlite_batch_manners,
    write_in_short_transactions,
    write_in_steps,
)
from storage.exceptions import InvalidInput
from storage.models import ScrapedPair, ScrapeSession, hidden_session_ids
from storage.services import minhash
from storage.services.pair_edits import delete_pairs
from storage.services.sessions import existing_sessions, session_id_list

SIGNATURES = "storage_pair_signatures"
BANDS = "storage_pair_bands"
# Band rows of recently signed pairs (migration 0010): adding a session's keys to the big table
# would touch nearly all of its pages; this one stays small and is merged into it past a limit.
RECENT_BANDS = "storage_pair_bands_recent"
BAND_TABLES = (BANDS, RECENT_BANDS)
RECENT_LIMIT = 2_000_000  # band rows (125,000 pairs): merged into BANDS in one sorted pass past this
PROBE_TABLE = "near_duplicate_probe"
SIGN_BATCH = 10_000
READ_BATCH = 5_000
ESTIMATE_MARGIN = 0.15
# Parameters per statement stay well under SQLite's 32,766 and PostgreSQL's 65,535.
ID_CHUNK = 5_000
WRITE_BATCH = 200_000  # band rows per write transaction
# Rows per INSERT statement: SQLite's and the driver's work per statement (a step, a reset, a round
# trip on PostgreSQL) then comes once per 100 rows. Measured on 2,000,000 band rows: 1.6 s CPU
# against 3.9 s for one row per statement; SQLite's own B-tree work is ~1.1 s of either.
ROWS_PER_INSERT = 100
AGREEMENT_CHUNK = 50_000  # signature pairs compared at a time
# A band key shared by more stored pairs than this says little: its 4 values are the minima of
# shingles nearly every text of a topic holds ("the p", "ython"). Looking such keys up would
# return most of a topic per pair (tens of stored pairs per key on the bench corpus); a real
# near-duplicate (Jaccard >= 0.8) shares 6.5 of the 16 band keys on average, so it is still
# found through its rarer keys. bench/near_duplicates.py measures the recall that results.
BUCKET_CAP = 20
KEEP_POLICIES = ("oldest", "longest")

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class NearDuplicates:
    """Clusters of near-duplicate pair ids (each sorted, sorted by first id) and what the run cost."""

    clusters: list[list[int]]
    pairs: int = 0  # pairs of the given sessions
    signed: int = 0  # signatures computed in this run (the rest were read from the database)
    candidates: int = 0  # candidate pairs checked exactly


@dataclass(frozen=True)
class Removal:
    """What a removal deleted (or would delete, on a dry run): pair ids and the count per session."""

    clusters: list[list[int]]
    removed: list[int]
    per_session: dict[int, int] = field(default_factory=dict)
    dry_run: bool = False


def _check_threshold(threshold: float) -> float:
    if isinstance(threshold, bool) or not isinstance(threshold, int | float) or not 0.5 <= threshold <= 1.0:
        raise InvalidInput(f"threshold must be a number from 0.5 to 1.0, not {threshold!r}")
    return float(threshold)


def _chunks(values: list, size: int = ID_CHUNK) -> Iterable[list]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _placeholders(values: list) -> str:
    return ", ".join(["%s"] * len(values))


def _insert_rows(cursor, insert: str, values: list, *, width: int, conflict: str) -> None:
    """Run `insert` (up to VALUES) over flat `values`, `width` per row, ROWS_PER_INSERT rows a statement."""
    row = f"({', '.join(['%s'] * width)})"
    step = ROWS_PER_INSERT * width
    whole = len(values) - len(values) % step
    if whole:
        cursor.executemany(
            f"{insert} VALUES {', '.join([row] * ROWS_PER_INSERT)} {conflict}",
            (values[start : start + step] for start in range(0, whole, step)),
        )
    if whole < len(values):
        cursor.execute(
            f"{insert} VALUES {', '.join([row] * ((len(values) - whole) // width))} {conflict}", values[whole:]
        )


def _old_band_rows(pair_id: int, blob: bytes) -> list[tuple[int, int, int]]:
    keys = minhash.band_keys(minhash.from_blob(blob).reshape(1, minhash.BINS))[0]
    return [(band, int(key), pair_id) for band, key in enumerate(keys)]


def _forget(cursor, stored: list[tuple[int, bytes]]) -> None:
    """Delete the signature and band rows of (pair id, stored signature) pairs; bands found from the signature."""
    if not stored:
        return
    rows = [row for pair_id, blob in stored for row in _old_band_rows(pair_id, blob)]
    for bands in BAND_TABLES:
        cursor.executemany(f"DELETE FROM {bands} WHERE band = %s AND hash = %s AND pair_id = %s", rows)
    for chunk in _chunks([pair_id for pair_id, _ in stored]):
        cursor.execute(f"DELETE FROM {SIGNATURES} WHERE pair_id IN ({_placeholders(chunk)})", chunk)


# Pairs whose rows one transaction forgets at first: each costs 2 x 16 band-row deletes and its signature.
FIRST_FORGET = 200


def _forget_in_short_transactions(connection, stored: list[tuple[int, bytes]]) -> None:
    """_forget in short write transactions: 10,000 edited pairs are 320,000 band-row deletes."""

    def forget(batch: list[tuple[int, bytes]]) -> None:
        with connection.cursor() as cursor:
            _forget(cursor, batch)

    write_in_short_transactions(stored, forget, using=connection.alias, first=FIRST_FORGET, maximum=ID_CHUNK)


class _Signer:
    """Signs pairs in batches and stores them: stale rows out first, then band rows, then signatures.

    Band rows are written sorted by key at the end, in short transactions: in key order each
    B-tree page is touched once, where inserting batch by batch would touch pages all over a
    16-million-row index. Signatures go last, so a run killed half way leaves pairs without a
    signature (signed again next time; their band rows already there are kept: ON CONFLICT DO
    NOTHING), never a signature without its bands.
    """

    def __init__(self, connection):
        self.connection = connection
        self.rows: list[tuple] = []
        self.ids: list[np.ndarray] = []
        self.hashes: list[int] = []
        self.tables: list[np.ndarray] = []
        self.count = 0

    def add(self, pair_id: int, input_text: str, output_text: str, current_hash: int, stale: bytes | None) -> None:
        self.rows.append((pair_id, input_text, output_text, current_hash, stale))
        if len(self.rows) >= SIGN_BATCH:
            self.sign()

    def sign(self) -> None:
        if not self.rows:
            return
        table = minhash.signatures([minhash.pair_text(row[1], row[2]) for row in self.rows])
        stale = [(row[0], row[4]) for row in self.rows if row[4] is not None]
        _forget_in_short_transactions(self.connection, stale)
        self.ids.append(np.fromiter((row[0] for row in self.rows), dtype=np.int64, count=len(self.rows)))
        self.hashes.extend(row[3] for row in self.rows)
        self.tables.append(table)
        self.count += len(self.rows)
        self.rows.clear()

    def signed(self) -> tuple[np.ndarray, np.ndarray]:
        """Sign what is left, store everything; the new signatures' pair ids and signatures."""
        self.sign()
        if not self.count:
            return np.empty(0, dtype=np.int64), np.empty((0, minhash.BINS), dtype=np.uint32)
        ids = np.concatenate(self.ids)
        table = np.concatenate(self.tables)
        content_hashes = np.array(self.hashes, dtype=np.int64)
        if len(ids) > 1 and not (ids[1:] > ids[:-1]).all():  # both callers add pairs in id order
            by_id = np.argsort(ids, kind="stable")
            ids, table, content_hashes = ids[by_id], table[by_id], content_hashes[by_id]
        # Rows written in primary-key order, so each B-tree page is touched once. A big run (a first
        # signing of a corpus) writes straight into the big table; a session's worth goes to the
        # small one (see RECENT_BANDS).
        target = BANDS if len(ids) * minhash.BANDS >= RECENT_LIMIT else RECENT_BANDS

        def write_bands(cursor, rows: np.ndarray) -> None:
            _insert_rows(
                cursor,
                f"INSERT INTO {target} (band, hash, pair_id)",
                rows.ravel().tolist(),
                width=3,
                conflict="ON CONFLICT DO NOTHING",
            )

        _write_in_short_transactions(
            self.connection, _sorted_band_rows(ids, minhash.band_keys(table)), write_bands, maximum=WRITE_BATCH
        )
        if target == RECENT_BANDS:
            _merge_recent_bands(self.connection)
        size = minhash.SIGNATURE_BYTES

        def write_signatures(cursor, positions: np.ndarray) -> None:
            first, last = int(positions[0]), int(positions[-1]) + 1  # consecutive positions
            blobs = minhash.to_blob(table[first:last])  # one conversion, then 256-byte slices
            values = [None] * (3 * (last - first))
            values[0::3] = ids[first:last].tolist()
            values[1::3] = content_hashes[first:last].tolist()
            values[2::3] = [blobs[offset : offset + size] for offset in range(0, len(blobs), size)]
            _insert_rows(
                cursor,
                f"INSERT INTO {SIGNATURES} (pair_id, content_hash, signature)",
                values,
                width=3,
                conflict="ON CONFLICT (pair_id) DO UPDATE SET content_hash = excluded.content_hash,"
                " signature = excluded.signature",
            )

        _write_in_short_transactions(self.connection, [np.arange(len(ids))], write_signatures, maximum=MAX_BATCH)
        return ids, table


def _write_in_short_transactions(
    connection, blocks: Iterable[np.ndarray], write: Callable[..., None], *, maximum: int
) -> None:
    """`write(cursor, rows)` over the rows of `blocks`, a write transaction per batch, in order.

    Batches are sized by measured time and separated by the long writers' pause (storage.db.write_batches):
    fixed batches of 200,000 band rows held the lock past the desktop app's 5 s busy timeout on a
    busy machine.
    """
    size = [FIRST_BATCH]
    with sqlite_batch_manners(connection.alias) as between_batches:
        batches = _batches(blocks, lambda: size[0])
        rows = next(batches, None)
        while rows is not None:
            started = time.monotonic()
            with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
                write(cursor, rows)
            size[0] = next_batch_size(len(rows), time.monotonic() - started, maximum=maximum)
            rows = next(batches, None)
            between_batches(more=rows is not None)


def _merge_recent_bands(connection, limit: int | None = None) -> bool:
    """Move the recent band rows into the big table when there are more than `limit`; whether it did.

    In sorted slices, one short write transaction each (sized by measured time, the long writers'
    rule) with their pause in between: all RECENT_LIMIT rows at once touch most pages of the big
    table and held the write lock for seconds, past the desktop app's 5 s busy timeout. Each slice
    covers its own range of keys, so the big table's pages are still written about once per merge,
    and a slice is inserted and deleted in one transaction: a lookup never sees a row in neither table.
    """
    limit = RECENT_LIMIT if limit is None else limit
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM (SELECT 1 FROM {RECENT_BANDS} LIMIT %s) recent", [limit + 1])
        if cursor.fetchone()[0] <= limit:
            return False

    def move(size: int) -> tuple[int, bool]:
        with connection.cursor() as cursor:
            return size, _move_recent_slice(cursor, connection.vendor, size)

    write_in_steps(move, using=connection.alias, maximum=WRITE_BATCH)
    return True


def _move_recent_slice(cursor, vendor: str, size: int) -> bool:
    """Move the first `size` recent band rows (in key order) to the big table; whether rows remain."""
    cursor.execute(
        f"SELECT band, hash, pair_id FROM {RECENT_BANDS} ORDER BY band, hash, pair_id LIMIT 1 OFFSET %s",
        [size],
    )
    first_left = cursor.fetchone()  # the first row of the next slice, if there is one
    below = "WHERE (band, hash, pair_id) < (%s, %s, %s)" if first_left else "WHERE true"
    parameters = list(first_left or ())
    if vendor == "postgresql":
        # One statement moves exactly the rows it deletes: under READ COMMITTED a separate DELETE
        # would also remove rows another signer committed after the INSERT ... SELECT read.
        cursor.execute(
            f"WITH moved AS (DELETE FROM {RECENT_BANDS} {below} RETURNING band, hash, pair_id)"
            f" INSERT INTO {BANDS} (band, hash, pair_id) SELECT band, hash, pair_id FROM moved"
            " ORDER BY band, hash, pair_id ON CONFLICT DO NOTHING",
            parameters,
        )
    else:
        # SQLite's write transaction is exclusive: nothing changes between the two statements.
        cursor.execute(
            f"INSERT INTO {BANDS} (band, hash, pair_id) SELECT band, hash, pair_id FROM {RECENT_BANDS}"
            f" {below} ORDER BY band, hash, pair_id ON CONFLICT DO NOTHING",
            parameters,
        )
        cursor.execute(f"DELETE FROM {RECENT_BANDS} {below}", parameters)
    return first_left is not None


def _signed_pairs(connection, session_ids: list[int], progress: Progress | None) -> tuple[np.ndarray, np.ndarray, int]:
    """(ids, signatures) of the given sessions' pairs in id order, signing the unsigned and edited; and how many."""
    total = sum(session.pair_count or 0 for session in existing_sessions(session_ids).values())
    ids: list[int] = []
    stored_positions: list[int] = []
    stored_blobs: list[bytes] = []
    signer = _Signer(connection)
    with connection.chunked_cursor() as cursor:
        cursor.execute(
            f"SELECT p.id, p.input_text, p.output_text, s.content_hash, s.signature FROM scraped_pairs p"
            f" LEFT JOIN {SIGNATURES} s ON s.pair_id = p.id WHERE p.session_id IN ({_placeholders(session_ids)})"
            " ORDER BY p.id",
            session_ids,
        )
        while rows := cursor.fetchmany(READ_BATCH):
            for pair_id, input_text, output_text, stored_hash, blob in rows:
                current = minhash.content_hash(input_text, output_text)
                if blob is not None and stored_hash == current:
                    stored_positions.append(len(ids))
                    stored_blobs.append(bytes(blob))
                else:
                    signer.add(pair_id, input_text, output_text, current, blob)
                ids.append(pair_id)
            if progress:
                progress(len(ids), max(total, len(ids)))
    fresh_ids, fresh = signer.signed()
    id_array = np.array(ids, dtype=np.int64)  # ascending: read in id order
    table = np.empty((len(ids), minhash.BINS), dtype=np.uint32)
    if stored_blobs:
        table[stored_positions] = np.frombuffer(b"".join(stored_blobs), dtype="<u4").reshape(-1, minhash.BINS)
    if len(fresh_ids):
        table[np.searchsorted(id_array, fresh_ids)] = fresh
    return id_array, table, signer.count


def _sign_the_rest(connection, excluded_sessions: list[int]) -> int:
    """Sign the pairs of every other visible session that have no signature yet; return how many.

    First the unsigned ids alone (the session index and the signatures' key: no pair text is read,
    which a million-pair anti-join over the table itself would), then the texts of those few.
    """
    excluded = excluded_sessions + hidden_session_ids(connection)
    # SQLite checks `NOT IN (SELECT ...)` against the signatures' key index directly, with no
    # subquery run per pair (measured on 1,000,000 pairs: 0.33 s CPU against 0.53-0.67 s for NOT
    # EXISTS); PostgreSQL plans NOT EXISTS as an anti-join, where NOT IN over a million ids would
    # not fit its hash and run as a nested loop.
    if connection.vendor == "sqlite":
        unsigned = f"p.id NOT IN (SELECT pair_id FROM {SIGNATURES})"
    else:
        unsigned = f"NOT EXISTS (SELECT 1 FROM {SIGNATURES} s WHERE s.pair_id = p.id)"
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT p.id FROM scraped_pairs p WHERE p.session_id NOT IN ({_placeholders(excluded)}) AND {unsigned}",
            excluded,
        )
        unsigned = sorted(row[0] for row in cursor.fetchall())
    signer = _Signer(connection)
    with connection.cursor() as cursor:
        for chunk in _chunks(unsigned):
            cursor.execute(
                f"SELECT id, input_text, output_text FROM scraped_pairs WHERE id IN ({_placeholders(chunk)})"
                " ORDER BY id",
                chunk,
            )
            for pair_id, input_text, output_text in cursor.fetchall():
                signer.add(pair_id, input_text, output_text, minhash.content_hash(input_text, output_text), None)
    signer.signed()
    return signer.count


def _internal_candidates(table: np.ndarray) -> np.ndarray:
    """(k, 2) positions of pairs sharing a band key: neighbours in each bucket, and each member with its first."""
    keys = minhash.band_keys(table)
    edges = []
    for band in range(minhash.BANDS):
        order = _key_order(keys[:, band])
        column = keys[order, band]
        same = column[1:] == column[:-1]
        if not same.any():
            continue
        # Chain: each member with the one before it in its bucket.
        edges.append(np.stack([order[:-1][same], order[1:][same]], axis=1))
        # Star: each member with its bucket's first member (a bucket of three then yields every pair).
        starts = np.concatenate([[True], ~same])
        first = np.maximum.accumulate(np.where(starts, np.arange(len(order)), 0))
        star = ~starts & (first != np.arange(len(order)) - 1)
        edges.append(np.stack([order[first[star]], order[star]], axis=1))
    if not edges:
        return np.empty((0, 2), dtype=np.int64)
    both = np.sort(np.concatenate(edges), axis=1)
    return _distinct_pairs(both[:, 0], both[:, 1])


def _external_candidates(connection, ids: np.ndarray, table: np.ndarray, floor: float) -> list[tuple[int, int]]:
    """(given pair id, stored pair id) for stored pairs of other visible sessions that share a band key
    and whose signatures agree on at least `floor` of their values.

    The given pairs' distinct band keys go into a temporary table; one query looks each of them up
    in both band tables' primary key (band, hash): one index seek per key and table, never a scan of
    a band table (tests/curation/test_near_duplicate_lookup.py checks the plan on both engines), and
    reads at most BUCKET_CAP + 1 pair ids there. A key shared by more than BUCKET_CAP band rows is
    skipped (see BUCKET_CAP). Everything after the lookup is numpy: no Python object per candidate.
    """
    rows = np.concatenate(list(_sorted_band_rows(np.arange(len(ids), dtype=np.int64), minhash.band_keys(table))))
    bands, hashes, owners = rows[:, 0], rows[:, 1], rows[:, 2]
    new_key = np.concatenate([[True], (bands[1:] != bands[:-1]) | (hashes[1:] != hashes[:-1])])
    key_starts = np.flatnonzero(new_key)  # given positions of key k: owners[key_starts[k]:key_ends[k]]
    key_ends = np.append(key_starts[1:], len(owners))
    with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {PROBE_TABLE}")
        cursor.execute(
            f"CREATE TEMPORARY TABLE {PROBE_TABLE} (key_id integer NOT NULL PRIMARY KEY,"
            " band smallint NOT NULL, hash bigint NOT NULL)"
        )
        probe = np.stack([np.arange(len(key_starts), dtype=np.int64), bands[key_starts], hashes[key_starts]], axis=1)
        _insert_rows(
            cursor, f"INSERT INTO {PROBE_TABLE} (key_id, band, hash)", probe.ravel().tolist(), width=3, conflict=""
        )
        with _seeks_only(connection, cursor):
            cursor.execute(_lookup_sql(connection))
            rows = _small_buckets(cursor.fetchone())
        cursor.execute(f"DROP TABLE {PROBE_TABLE}")
    # Stored pairs only: not the given sessions' own pairs, not a hidden session's.
    rows = rows[~np.isin(rows[:, 1], ids)]
    hidden = _pair_ids_of_sessions(connection, hidden_session_ids(connection))
    if len(hidden):
        rows = rows[~np.isin(rows[:, 1], hidden)]
    # Each row (key, stored pair) stands for every given pair holding that key.
    per_key = key_ends[rows[:, 0]] - key_starts[rows[:, 0]]
    row_of = np.repeat(np.arange(len(rows)), per_key)
    offset = np.arange(len(row_of)) - np.repeat(np.cumsum(per_key) - per_key, per_key)
    given = owners[key_starts[rows[row_of, 0]] + offset]
    pairs = _distinct_pairs(given, rows[row_of, 1])
    stored_ids, signatures = _stored_signatures(connection, _sorted_unique(pairs[:, 1]))
    pairs = pairs[np.isin(pairs[:, 1], stored_ids)]  # a stored pair signed but since deleted has no signature row
    close = _agreement(table, pairs[:, 0], signatures, np.searchsorted(stored_ids, pairs[:, 1])) >= floor
    return [(int(ids[a]), int(b)) for a, b in pairs[close].tolist()]


@contextmanager
def _seeks_only(connection, cursor):
    """On PostgreSQL, join by index seeks whatever the statistics say (a hash or merge join would read
    every band row); the planner settings are restored afterwards, inside the caller's transaction too."""
    if connection.vendor != "postgresql":
        yield
        return
    cursor.execute("SELECT current_setting('enable_hashjoin'), current_setting('enable_mergejoin')")
    hashjoin, mergejoin = cursor.fetchone()
    cursor.execute("SELECT set_config('enable_hashjoin', 'off', true), set_config('enable_mergejoin', 'off', true)")
    try:
        yield
    finally:
        cursor.execute(
            "SELECT set_config('enable_hashjoin', %s, true), set_config('enable_mergejoin', %s, true)",
            [hashjoin, mergejoin],
        )


def _key_order(column: np.ndarray) -> np.ndarray:
    """np.argsort(column, kind="stable") of an int64 column, by a plain sort of packed values (5x faster).

    Each value keeps its high bits and takes its position in the low ones: sorted, that is the order
    by value then position, unless two different values share their high bits; then (checked: the
    values must come out ascending) the stable argsort itself.
    """
    count = len(column)
    bits = max(1, (count - 1).bit_length())
    packed = (column & np.int64(-(1 << bits))) | np.arange(count, dtype=np.int64)
    packed.sort()
    order = packed & np.int64((1 << bits) - 1)
    values = column[order]
    if count > 1 and (values[1:] < values[:-1]).any():
        return np.argsort(column, kind="stable")
    return order


def _sorted_band_rows(owners: np.ndarray, keys: np.ndarray) -> Iterator[np.ndarray]:
    """(band, hash, owner) rows of (n, 16) band keys in (band, hash, owner) order, a band at a time.

    `owners` must be ascending (pair ids or positions): rows of one key then follow them.
    """
    for band in range(minhash.BANDS):
        order = _key_order(keys[:, band])
        rows = np.empty((len(owners), 3), dtype=np.int64)
        rows[:, 0] = band
        rows[:, 1] = keys[order, band]
        rows[:, 2] = owners[order]
        yield rows


def _batches(blocks: Iterable[np.ndarray], size: Callable[[], int]) -> Iterator[np.ndarray]:
    """The rows of consecutive blocks regrouped into batches of `size()` rows (the last may be smaller).

    `size` is asked again after each batch is taken: the writer sizes the next batch by the last one's time.
    """
    pending: list[np.ndarray] = []
    held = 0
    for block in blocks:
        while len(block):
            take = block[: size() - held]
            pending.append(take)
            held += len(take)
            block = block[len(take) :]
            if held >= size():
                yield np.concatenate(pending)
                pending, held = [], 0
    if held:
        yield np.concatenate(pending)


def _sorted_unique(values: np.ndarray) -> np.ndarray:
    """np.unique of a 1-D array by sorting: numpy 2's hash-based np.unique is 70x slower on these ids
    (measured: 4,000,000 packed pairs, 7.2 s against 0.1 s)."""
    ordered = np.sort(values)
    if len(ordered) < 2:
        return ordered
    return ordered[np.concatenate([[True], ordered[1:] != ordered[:-1]])]


def _distinct_pairs(given: np.ndarray, stored: np.ndarray) -> np.ndarray:
    """The distinct (given position, stored id or position) rows, sorted as np.unique(axis=0) sorts them."""
    if not len(stored) or (stored.max() < 2**32 and stored.min() >= 0):
        # One int64 per pair: a flat sort, many times faster than np.unique(axis=0)'s row-wise one.
        packed = _sorted_unique((given << 32) | stored)
        return np.stack([packed >> 32, packed & 0xFFFFFFFF], axis=1)
    return np.unique(np.stack([given, stored], axis=1), axis=0)


def _lookup_sql(connection) -> str:
    """The probe keys and, for each, the first BUCKET_CAP + 1 pair ids of its bucket in each band table.

    One seek per key and table: the count that decides whether a bucket is too common and the pair
    ids come from the same read (a count first and a join after sought every key twice). All of it
    comes back as one row of two texts, the key ids ("k,k,...") and their id lists ("id,id,...,;...",
    in the same order: two aggregates of one query see the rows in one order), so Python makes no
    object per key or band row (measured: 0.84 s CPU against 1.2 s for a row per key).
    """
    if connection.vendor == "sqlite":
        listed, joined = "group_concat(pair_id || ',', '')", "group_concat({}, {})"
    else:
        listed, joined = "string_agg(pair_id || ',', '')", "string_agg({}, {})"
    buckets = " || ".join(
        f"coalesce((SELECT {listed} FROM (SELECT pair_id FROM {bands} WHERE {bands}.band = {PROBE_TABLE}.band"
        f" AND {bands}.hash = {PROBE_TABLE}.hash LIMIT {BUCKET_CAP + 1}) bucket_{n}), '')"
        for n, bands in enumerate(BAND_TABLES)
    )
    keys, lists = joined.format("key_id || ''", "','"), joined.format("ids", "';'")
    return f"SELECT {keys}, {lists} FROM (SELECT key_id, {buckets} AS ids FROM {PROBE_TABLE}) listed"


def _small_buckets(found: tuple[str | None, str | None]) -> np.ndarray:
    """(key id, pair id) rows of the looked-up keys whose buckets hold 1 to BUCKET_CAP band rows in all."""
    key_text, lists_text = found
    if not key_text:
        return np.empty((0, 2), dtype=np.int64)
    keys = np.fromstring(key_text, dtype=np.int64, sep=",")
    lists = lists_text.split(";")
    sizes = np.fromiter(map(operator.methodcaller("count", ","), lists), dtype=np.int64, count=len(lists))
    small = (sizes > 0) & (sizes <= BUCKET_CAP)
    pair_ids = np.fromstring("".join(itertools.compress(lists, small)), dtype=np.int64, sep=",")
    return np.stack([np.repeat(keys[small], sizes[small]), pair_ids], axis=1)


def _agreement(left: np.ndarray, left_rows: np.ndarray, right: np.ndarray, right_rows: np.ndarray) -> np.ndarray:
    """The share of equal values of signatures left[left_rows[i]] and right[right_rows[i]], for each i.

    Chunked, so a million candidates never materialise two 256-MB stacks of signatures.
    """
    out = np.empty(len(left_rows), dtype=np.float64)
    for start in range(0, len(left_rows), AGREEMENT_CHUNK):
        part = slice(start, start + AGREEMENT_CHUNK)
        out[part] = np.count_nonzero(left[left_rows[part]] == right[right_rows[part]], axis=1) / minhash.BINS
    return out


def _pair_ids_of_sessions(connection, session_ids: list[int]) -> np.ndarray:
    if not session_ids:
        return np.empty(0, dtype=np.int64)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT id FROM scraped_pairs WHERE session_id IN ({_placeholders(session_ids)})", session_ids)
        return np.array([row[0] for row in cursor.fetchall()], dtype=np.int64)


def _stored_signatures(connection, pair_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(sorted pair ids, their signatures) of those pair ids that have a stored signature."""
    found_ids: list[int] = []
    blobs: list[bytes] = []
    with connection.cursor() as cursor:
        for chunk in _chunks(pair_ids.tolist()):
            cursor.execute(
                f"SELECT pair_id, signature FROM {SIGNATURES} WHERE pair_id IN ({_placeholders(chunk)})", chunk
            )
            rows = cursor.fetchall()
            found_ids.extend(map(operator.itemgetter(0), rows))  # no Python step per row
            blobs.extend(map(operator.itemgetter(1), rows))
    found = np.array(found_ids, dtype=np.int64)
    signatures = np.frombuffer(b"".join(blobs), dtype="<u4").reshape(-1, minhash.BINS).astype(np.uint32)
    order = np.argsort(found, kind="stable")
    return found[order], signatures[order]


def _pair_texts(connection, pair_ids: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """(ascending ids, their pair texts) of those of `pair_ids` (ascending) that still exist."""
    found: list[int] = []
    texts: list[str] = []
    with connection.cursor() as cursor:
        for chunk in _chunks(pair_ids.tolist()):
            cursor.execute(
                f"SELECT id, input_text, output_text FROM scraped_pairs WHERE id IN ({_placeholders(chunk)})"
                " ORDER BY id",
                chunk,
            )
            for pair_id, input_text, output_text in cursor.fetchall():
                found.append(pair_id)
                texts.append(minhash.pair_text(input_text, output_text))
    return np.array(found, dtype=np.int64), texts


def _similar(connection, likely: list[tuple[int, int]], threshold: float) -> list[tuple[int, int]]:
    """The candidate pairs whose shingle sets' Jaccard similarity is at least `threshold` (both pairs existing)."""
    if not likely:
        return []
    edges = np.array(likely, dtype=np.int64).reshape(-1, 2)
    found, texts = _pair_texts(connection, _sorted_unique(edges.ravel()))
    left = np.searchsorted(found, edges[:, 0]).clip(max=max(len(found) - 1, 0))
    right = np.searchsorted(found, edges[:, 1]).clip(max=max(len(found) - 1, 0))
    exist = (found[left] == edges[:, 0]) & (found[right] == edges[:, 1]) if len(found) else np.zeros(len(edges), bool)
    close = np.zeros(len(edges), dtype=bool)
    close[exist] = minhash.jaccards(texts, left[exist], right[exist]) >= threshold
    return [(a, b) for a, b in edges[close].tolist()]


def _components(edges: list[tuple[int, int]]) -> list[list[int]]:
    parent: dict[int, int] = {}

    def root(node: int) -> int:
        while parent.setdefault(node, node) != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    for a, b in edges:
        ra, rb = root(a), root(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    groups: dict[int, list[int]] = {}
    for node in parent:
        groups.setdefault(root(node), []).append(node)
    return sorted((sorted(group) for group in groups.values() if len(group) > 1), key=lambda group: group[0])


def _covers_every_session(connection, session_ids: list[int]) -> bool:
    """Whether the given sessions are every visible session (then there is nothing else to look up)."""
    return not ScrapeSession.objects.exclude(pk__in=session_ids).exists()


def find_near_duplicates(
    *,
    session_ids: list[int],
    threshold: float = 0.8,
    against_stored: bool = True,
    progress: Progress | None = None,
) -> NearDuplicates:
    """Cluster the given sessions' near-duplicate pairs (Jaccard of 5-character shingles >= threshold).

    With `against_stored`, pairs of every other session that match one of them join its cluster.
    """
    threshold = _check_threshold(threshold)
    ids_given = session_id_list(session_ids, repeats=False)
    if not ids_given:
        raise InvalidInput("give at least one session id")
    connection = connections["default"]
    ids, table, signed = _signed_pairs(connection, ids_given, progress)
    floor = threshold - ESTIMATE_MARGIN
    edges = _internal_candidates(table)
    # The signatures' share of equal values estimates the Jaccard similarity: a cheap first filter.
    close = _agreement(table, edges[:, 0], table, edges[:, 1]) >= floor if len(edges) else []
    likely = [(int(ids[a]), int(ids[b])) for a, b in edges[close].tolist()] if len(edges) else []
    if against_stored and len(ids) and not _covers_every_session(connection, ids_given):
        signed += _sign_the_rest(connection, ids_given)
        likely.extend(_external_candidates(connection, ids, table, floor))
    similar = _similar(connection, likely, threshold)
    if progress:
        progress(len(ids), len(ids))
    return NearDuplicates(clusters=_components(similar), pairs=len(ids), signed=signed, candidates=len(likely))


def _keepers(connection, clusters: list[list[int]], keep: str) -> set[int]:
    if keep == "oldest":
        return {cluster[0] for cluster in clusters}
    length = {}
    with connection.cursor() as cursor:
        for chunk in _chunks(sorted({pair_id for cluster in clusters for pair_id in cluster})):
            cursor.execute(
                "SELECT id, length(input_text) + length(output_text) FROM scraped_pairs"
                f" WHERE id IN ({_placeholders(chunk)})",
                chunk,
            )
            length.update(cursor.fetchall())
    return {min(cluster, key=lambda pair_id: (-length.get(pair_id, 0), pair_id)) for cluster in clusters}


def remove_pairs(*, pair_ids: list[int]) -> dict[int, int]:
    """Delete pairs and their signatures; removed per session.

    In short write transactions (the long writers' rule), each deleting its pairs (pair_count kept
    exact by pair_edits.delete_pairs) with their signatures and band rows: removing 20,000 pairs in
    one held the write lock past the desktop app's 5 s busy timeout on a busy machine. A removal
    that fails half way has removed the slices before it, each whole.
    """
    connection = connections["default"]
    removed: dict[int, int] = {}

    def remove(chunk: list[int]) -> None:
        for session_id, count in delete_pairs(ScrapedPair.all_objects.filter(pk__in=chunk)).items():
            removed[session_id] = removed.get(session_id, 0) + count
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT pair_id, signature FROM {SIGNATURES} WHERE pair_id IN ({_placeholders(chunk)})", chunk
            )
            _forget(cursor, cursor.fetchall())

    write_in_short_transactions(sorted(set(pair_ids)), remove, first=FIRST_FORGET, maximum=ID_CHUNK)
    return removed


def remove_near_duplicates(
    *,
    session_ids: list[int],
    threshold: float = 0.8,
    keep: str = "oldest",
    against_stored: bool = True,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> Removal:
    """Keep one pair per cluster (`oldest`: lowest id, `longest`: most characters); delete the given sessions' others.

    Pairs of other sessions in a cluster are never deleted; when the keeper is one of them, every
    member of the given sessions goes.
    """
    if keep not in KEEP_POLICIES:
        raise InvalidInput(f"keep must be one of {', '.join(KEEP_POLICIES)}, not {keep!r}")
    found = find_near_duplicates(
        session_ids=session_ids, threshold=threshold, against_stored=against_stored, progress=progress
    )
    connection = connections["default"]
    keepers = _keepers(connection, found.clusters, keep)
    members = sorted(pair_id for cluster in found.clusters for pair_id in cluster if pair_id not in keepers)
    given = set(session_id_list(session_ids, repeats=False))
    doomed = [pair_id for pair_id, session_id in _sessions_of(members) if session_id in given]
    if dry_run:
        per_session: dict[int, int] = {}
        for _, session_id in _sessions_of(doomed):
            per_session[session_id] = per_session.get(session_id, 0) + 1
    else:
        per_session = remove_pairs(pair_ids=doomed)
    return Removal(
        clusters=found.clusters, removed=doomed, per_session=dict(sorted(per_session.items())), dry_run=dry_run
    )


def _sessions_of(pair_ids: list[int]) -> list[tuple[int, int]]:
    rows: list[tuple[int, int]] = []
    for chunk in _chunks(pair_ids):
        rows.extend(ScrapedPair.all_objects.filter(pk__in=chunk).order_by("pk").values_list("pk", "session_id"))
    return rows


def orphan_signature_count() -> int:
    """Signatures whose pair no longer exists (deleted by the desktop app or by SQL)."""
    with connections["default"].cursor() as cursor:
        cursor.execute(
            f"SELECT count(*) FROM {SIGNATURES} s"
            " WHERE NOT EXISTS (SELECT 1 FROM scraped_pairs p WHERE p.id = s.pair_id)"
        )
        return cursor.fetchone()[0]


def prune_orphan_signatures() -> int:
    """Delete signatures (and their band rows) whose pair no longer exists, in short transactions; how many."""
    connection = connections["default"]
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT pair_id FROM {SIGNATURES} s"
            " WHERE NOT EXISTS (SELECT 1 FROM scraped_pairs p WHERE p.id = s.pair_id)"
        )
        candidates = [pair_id for (pair_id,) in cursor.fetchall()]
    pruned = 0

    def prune(chunk: list[int]) -> None:
        nonlocal pruned
        # Asked again inside the transaction: a pair id may have been used again since the read.
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT pair_id, signature FROM {SIGNATURES} s WHERE pair_id IN ({_placeholders(chunk)})"
                " AND NOT EXISTS (SELECT 1 FROM scraped_pairs p WHERE p.id = s.pair_id)",
                chunk,
            )
            orphans = cursor.fetchall()
            _forget(cursor, orphans)
        pruned += len(orphans)

    write_in_short_transactions(candidates, prune, using=connection.alias, first=FIRST_FORGET, maximum=ID_CHUNK)
    return pruned
