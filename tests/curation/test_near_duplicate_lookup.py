"""The incremental check: a new session looked up in the stored band index, as a full recomputation finds it.

A new session's band keys are looked up in the stored band tables (one primary-key seek per key, the plan
is checked here on both engines) instead of clustering everything again; these tests hold the two ways to
the same clusters, with the stored keys in the small table of recent band rows and after its merge into
the big one.
"""

from __future__ import annotations

import pytest
from django.db import connection

from storage.services import near_duplicates
from storage.services.near_duplicates import find_near_duplicates
from tests.helpers.planted_corpus import planted_corpus, variant

from .test_near_duplicates import ids, make_session, signature_rows


def band_rows(table: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {table}")
        return cursor.fetchone()[0]


@pytest.mark.django_db
@pytest.mark.parametrize("merged", [False, True], ids=["recent-band-table", "merged-into-the-big-one"])
def test_a_new_session_checked_against_the_stored_ones_gives_the_full_recomputations_clusters(merged):
    import random

    corpus = planted_corpus(originals=160, variants=60, seed=21)
    stored = make_session([(p["input"], p["output"]) for p in corpus.pairs])
    rng = random.Random(5)
    # The new session: variants of stored pairs (its originals and its planted variants), its own
    # near-duplicates, and new pairs.
    fresh = planted_corpus(originals=40, variants=15, seed=22).pairs
    kinds = ["word", "punctuation", "case", "signature"]
    new_pairs = [variant(rng, corpus.pairs[i], kinds[i % 4]) for i in rng.sample(range(len(corpus.pairs)), 50)]
    new = make_session([(p["input"], p["output"]) for p in new_pairs + fresh])
    find_near_duplicates(session_ids=[stored.pk], against_stored=False)  # the stored corpus, signed
    if merged:
        assert near_duplicates._merge_recent_bands(connection, limit=0)
        assert band_rows(near_duplicates.RECENT_BANDS) == 0
    assert band_rows(near_duplicates.BANDS if merged else near_duplicates.RECENT_BANDS) == len(corpus.pairs) * 16

    incremental = find_near_duplicates(session_ids=[new.pk])
    assert incremental.signed == len(new_pairs) + len(fresh)  # the stored pairs were not signed again
    full = find_near_duplicates(session_ids=[stored.pk, new.pk])  # every session: no lookup, all in memory
    new_ids = set(ids(new))
    expected = [cluster for cluster in full.clusters if new_ids & set(cluster)]
    assert len(expected) >= 50
    assert incremental.clusters == expected


def all_band_rows(table: str) -> list[tuple[int, int, int]]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT band, hash, pair_id FROM {table} ORDER BY band, hash, pair_id")
        return [tuple(row) for row in cursor.fetchall()]


@pytest.mark.django_db
def test_a_merge_in_many_slices_moves_every_recent_row_once(monkeypatch):
    corpus = planted_corpus(originals=30, variants=10, seed=3)
    session = make_session([(p["input"], p["output"]) for p in corpus.pairs])
    find_near_duplicates(session_ids=[session.pk])
    recent = all_band_rows(near_duplicates.RECENT_BANDS)
    assert len(recent) == len(corpus.pairs) * 16
    with connection.cursor() as cursor:  # a few rows already moved, as by a merge killed after its first slice
        cursor.execute(
            f"INSERT INTO {near_duplicates.BANDS} (band, hash, pair_id) SELECT band, hash, pair_id"
            f" FROM {near_duplicates.RECENT_BANDS} WHERE pair_id = %s",
            [recent[0][2]],
        )
    monkeypatch.setattr(near_duplicates, "FIRST_BATCH", 7)  # then slices of 100 rows or more: many slices
    assert near_duplicates._merge_recent_bands(connection, limit=0)
    assert all_band_rows(near_duplicates.RECENT_BANDS) == []
    assert all_band_rows(near_duplicates.BANDS) == recent  # no row lost at a slice's edge, none twice
    assert not near_duplicates._merge_recent_bands(connection, limit=0)  # nothing left to merge


@pytest.mark.django_db
def test_forgetting_removing_and_pruning_in_many_slices_touch_every_pair_once(monkeypatch):
    def texts(word: str, count: int) -> list[tuple[str, str]]:
        return [
            (f"{word} question number {i} about a {i * 7919 % 1000} widget?", f"{word} answer {i}")
            for i in range(count)
        ]

    doomed, kept = make_session(texts("first", 300)), make_session(texts("second", 300))
    find_near_duplicates(session_ids=[doomed.pk, kept.pk])
    assert signature_rows() == (600, 600 * 16)
    monkeypatch.setattr(near_duplicates, "FIRST_FORGET", 1)  # then slices of 100 pairs or more: many slices

    kept_ids = ids(kept)
    with connection.cursor() as cursor:  # 150 pairs edited the desktop's way: their stored rows are stale
        cursor.execute(
            f"UPDATE scraped_pairs SET output_text = output_text || ' edited' WHERE id IN ({', '.join(['%s'] * 150)})",
            kept_ids[:150],
        )
    assert find_near_duplicates(session_ids=[kept.pk], against_stored=False).signed == 150
    assert signature_rows() == (600, 600 * 16)  # the stale rows forgotten, the new ones written, none twice

    removed = near_duplicates.remove_pairs(pair_ids=[*ids(doomed), *kept_ids[:5]])
    assert removed == {doomed.pk: 300, kept.pk: 5}
    doomed.refresh_from_db()
    kept.refresh_from_db()
    assert (doomed.pair_count, kept.pair_count) == (0, 295)
    assert signature_rows() == (295, 295 * 16)

    with connection.cursor() as cursor:  # deleted by the desktop app: orphan signatures
        cursor.execute(f"DELETE FROM scraped_pairs WHERE id IN ({', '.join(['%s'] * 200)})", kept_ids[5:205])
    assert near_duplicates.prune_orphan_signatures() == 200
    assert signature_rows() == (95, 95 * 16)
    assert near_duplicates.prune_orphan_signatures() == 0


@pytest.mark.django_db
def test_recent_band_rows_are_merged_past_the_limit_and_edits_and_deletes_reach_both_tables(monkeypatch):
    base = ("How do I keep a sourdough starter alive while I travel for two weeks?", "Feed it, then refrigerate it.")
    first = make_session([base, ("Unrelated question about tomato plants in pots?", "Water them daily.")])
    find_near_duplicates(session_ids=[first.pk])
    assert (band_rows(near_duplicates.BANDS), band_rows(near_duplicates.RECENT_BANDS)) == (0, 32)
    monkeypatch.setattr(near_duplicates, "RECENT_LIMIT", 40)  # the next session's 16 rows pass it
    second = make_session([(base[0] + " Thanks!", base[1])])
    assert find_near_duplicates(session_ids=[second.pk]).clusters == [[ids(first)[0], ids(second)[0]]]
    assert (band_rows(near_duplicates.BANDS), band_rows(near_duplicates.RECENT_BANDS)) == (48, 0)
    third = make_session([(base[0].upper(), base[1])])  # found in the big table, written to the small one
    assert find_near_duplicates(session_ids=[third.pk]).clusters == [[ids(first)[0], ids(second)[0], ids(third)[0]]]
    assert (band_rows(near_duplicates.BANDS), band_rows(near_duplicates.RECENT_BANDS)) == (48, 16)
    with connection.cursor() as cursor:  # an edit by the desktop app: the old keys leave whichever table holds them
        cursor.execute(
            "UPDATE scraped_pairs SET input_text = 'A different question entirely' WHERE id = %s", [ids(first)[0]]
        )
    find_near_duplicates(session_ids=[first.pk, second.pk, third.pk])
    assert signature_rows() == (4, 64)
    near_duplicates.remove_pairs(pair_ids=[ids(third)[0], ids(second)[0]])
    assert signature_rows() == (2, 32)


@pytest.mark.django_db
def test_a_bucket_shared_by_more_stored_pairs_than_the_cap_is_not_looked_up(monkeypatch):
    base = ("How do I keep a sourdough starter alive while I travel for two weeks?", "Feed it, then refrigerate it.")
    stored = make_session([base])
    find_near_duplicates(session_ids=[stored.pk])
    new = make_session([(base[0] + " Thanks!", base[1])])
    monkeypatch.setattr(near_duplicates, "BUCKET_CAP", 0)  # every key now counts as too common
    assert find_near_duplicates(session_ids=[new.pk]).clusters == []
    monkeypatch.setattr(near_duplicates, "BUCKET_CAP", 20)
    assert find_near_duplicates(session_ids=[new.pk]).clusters == [[ids(stored)[0], ids(new)[0]]]


def _plan(sql: str) -> str:
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("EXPLAIN QUERY PLAN " + sql)
            return "\n".join(str(row[-1]) for row in cursor.fetchall())
        # Tiny test tables would be read whole; with sequential scans priced out, the plan shows whether
        # the primary key can serve the lookup at all (a type or column mismatch would still scan).
        cursor.execute("SET LOCAL enable_seqscan = off")
        with near_duplicates._seeks_only(connection, cursor):
            cursor.execute("EXPLAIN " + sql)
            return "\n".join(row[0] for row in cursor.fetchall())


@pytest.mark.django_db
def test_the_lookup_seeks_each_key_in_the_band_tables_primary_keys():
    make_session([("A question about bread", "An answer about flour")])
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {near_duplicates.PROBE_TABLE}")
        cursor.execute(
            f"CREATE TEMPORARY TABLE {near_duplicates.PROBE_TABLE} (key_id integer NOT NULL PRIMARY KEY,"
            " band smallint NOT NULL, hash bigint NOT NULL)"
        )
    lookup = _plan(near_duplicates._lookup_sql(connection))
    for table in near_duplicates.BAND_TABLES:
        if connection.vendor == "sqlite":
            # SEARCH = a seek by (band, hash); a SCAN of a band table would read all of it.
            assert f"SEARCH {table} USING PRIMARY KEY (band=? AND hash=?)" in lookup, lookup
            assert f"SCAN {table}" not in lookup
        else:
            assert f"Index Only Scan using {table}_pkey on {table}" in lookup, lookup
            assert f"Seq Scan on {table}" not in lookup
