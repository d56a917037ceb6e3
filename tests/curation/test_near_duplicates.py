"""Near-duplicates: recall and precision on a planted corpus, stored signatures, incremental signing, removal."""

from __future__ import annotations

import itertools
import json
import sqlite3

import pytest
from django.db import connection

from storage import api
from storage.exceptions import InvalidInput
from storage.models import ScrapedPair, ScrapeSession
from storage.services import near_duplicates, sessions
from storage.services.near_duplicates import find_near_duplicates, remove_near_duplicates
from tests.helpers.planted_corpus import planted_corpus
from tests.helpers.processes import manage

BASE = "How do I fix a python import error in my virtualenv when pip installs the package twice?"
ANSWER = "Delete the virtualenv, create it again and install the package once with pip; then import works."


def make_session(pairs: list[tuple[str, str]]) -> ScrapeSession:
    session = sessions.create_scrape_session(source="reddit")
    sessions.add_scraped_pairs(session_id=session.pk, pairs=[{"input": i, "output": o} for i, o in pairs])
    session.refresh_from_db()
    return session


def ids(session: ScrapeSession) -> list[int]:
    return list(session.pairs.order_by("id").values_list("id", flat=True))


def signature_rows() -> tuple[int, int]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {near_duplicates.SIGNATURES}")
        signatures = cursor.fetchone()[0]
        bands = 0
        for table in near_duplicates.BAND_TABLES:  # the big band table and the recent one
            cursor.execute(f"SELECT count(*) FROM {table}")
            bands += cursor.fetchone()[0]
        return signatures, bands


@pytest.mark.django_db
def test_planted_variants_are_found_and_distinct_pairs_on_one_topic_are_not():
    corpus = planted_corpus(originals=300, variants=120, seed=14)
    session = make_session([(p["input"], p["output"]) for p in corpus.pairs])
    pair_ids = ids(session)
    clusters = find_near_duplicates(session_ids=[session.pk]).clusters
    cluster_of = {pair_id: n for n, cluster in enumerate(clusters) for pair_id in cluster}
    found = sum(
        1
        for variant, source in corpus.planted.items()
        if pair_ids[variant] in cluster_of and cluster_of.get(pair_ids[variant]) == cluster_of.get(pair_ids[source])
    )
    assert found / len(corpus.planted) >= 0.95
    # Precision over every two pairs put in one cluster: both must come from the same original.
    family = {pair_ids[i]: i for i in range(len(corpus.pairs))}
    family.update({pair_ids[v]: s for v, s in corpus.planted.items()})
    together = [(a, b) for cluster in clusters for a, b in itertools.combinations(cluster, 2)]
    right = sum(family[a] == family[b] for a, b in together)
    assert together and right / len(together) >= 0.99


@pytest.mark.django_db
def test_clusters_are_sorted_and_hold_each_kind_of_variant():
    session = make_session(
        [
            ("Something else entirely about baking bread in a hot oven", "Use more flour and less water."),
            (BASE, ANSWER),
            (BASE.upper(), ANSWER),
            (BASE.replace("twice", "again"), ANSWER),
            (BASE, ANSWER + "\n\n-- sent from my phone"),
            (BASE.replace("?", "!"), ANSWER.replace(";", ",")),
        ]
    )
    _unrelated, *rest = ids(session)
    assert find_near_duplicates(session_ids=[session.pk]).clusters == [rest]
    assert api.find_near_duplicates([session.pk]) == [rest]


@pytest.mark.django_db
def test_a_second_session_is_checked_against_stored_signatures_without_signing_them_again():
    stored = make_session([(BASE, ANSWER), ("Unrelated question about tomato plants?", "Water them daily.")])
    first = find_near_duplicates(session_ids=[stored.pk])
    assert (first.signed, first.clusters) == (2, [])
    assert signature_rows() == (2, 2 * 16)
    new = make_session([(BASE + " Thanks!", ANSWER), ("A bike chain question", "Oil it.")])
    second = find_near_duplicates(session_ids=[new.pk])
    assert second.signed == 2  # only the new session's pairs
    assert second.clusters == [[ids(stored)[0], ids(new)[0]]]
    again = find_near_duplicates(session_ids=[new.pk, stored.pk])
    assert (again.signed, again.clusters) == (0, second.clusters)
    only_given = find_near_duplicates(session_ids=[new.pk], against_stored=False)
    assert only_given.clusters == []


@pytest.mark.django_db
def test_unsigned_pairs_of_other_sessions_are_signed_once_for_the_lookup():
    stored = make_session([(BASE, ANSWER)])
    new = make_session([(BASE.lower(), ANSWER)])
    result = find_near_duplicates(session_ids=[new.pk])
    assert (result.signed, result.clusters) == (2, [[ids(stored)[0], ids(new)[0]]])
    assert find_near_duplicates(session_ids=[new.pk]).signed == 0


@pytest.mark.django_db
def test_a_pair_edited_with_plain_sql_is_signed_again():
    session = make_session([(BASE, ANSWER), ("Completely different text about gardens", "Compost helps.")])
    a, b = ids(session)
    assert find_near_duplicates(session_ids=[session.pk]).clusters == []
    with connection.cursor() as cursor:  # the desktop app edits with its own UPDATE
        cursor.execute("UPDATE scraped_pairs SET input_text = %s, output_text = %s WHERE id = %s", [BASE, ANSWER, b])
    result = find_near_duplicates(session_ids=[session.pk])
    assert (result.signed, result.clusters) == (1, [[a, b]])
    assert signature_rows() == (2, 2 * 16)  # the stale band rows went with the stale signature


@pytest.mark.django_db
def test_signatures_of_deleted_pairs_are_ignored_and_pruned():
    stored = make_session([(BASE, ANSWER)])
    new = make_session([(BASE + "!", ANSWER)])
    find_near_duplicates(session_ids=[stored.pk, new.pk])
    with connection.cursor() as cursor:  # the desktop app deletes with its own SQL; nothing cascades to ours
        cursor.execute("DELETE FROM scraped_pairs WHERE session_id = %s", [stored.pk])
    assert find_near_duplicates(session_ids=[new.pk]).clusters == []
    assert near_duplicates.orphan_signature_count() == 1
    assert near_duplicates.prune_orphan_signatures() == 1
    assert signature_rows() == (1, 16)


@pytest.mark.django_db
@pytest.mark.parametrize(("keep", "kept"), [("oldest", 0), ("longest", 2)])
def test_remove_keeps_one_per_cluster_and_pair_count_exact(keep, kept):
    session = make_session([(BASE, ANSWER), (BASE.upper(), ANSWER), (BASE, ANSWER + " Good luck!"), ("x y z w", "q")])
    pair_ids = ids(session)
    dry = remove_near_duplicates(session_ids=[session.pk], keep=keep, dry_run=True)
    assert (len(dry.removed), ScrapedPair.objects.count()) == (2, 4)
    result = remove_near_duplicates(session_ids=[session.pk], keep=keep)
    assert result.per_session == {session.pk: 2}
    assert ids(session) == sorted([pair_ids[kept], pair_ids[3]])
    session.refresh_from_db()
    assert session.pair_count == 2
    assert near_duplicates.orphan_signature_count() == 0


@pytest.mark.django_db
def test_remove_never_deletes_pairs_of_other_sessions():
    stored = make_session([(BASE, ANSWER)])
    new = make_session([(BASE.lower(), ANSWER), (BASE + " ", ANSWER + ".")])
    before = ids(new)
    assert api.remove_near_duplicates([new.pk]) == before  # the stored pair is the oldest: it stays
    assert len(ids(stored)) == 1 and ids(new) == []
    new.refresh_from_db()
    assert new.pair_count == 0


@pytest.mark.django_db
@pytest.mark.parametrize("threshold", [0.2, 1.5, "0.8", True])
def test_bad_thresholds_are_refused(threshold):
    session = make_session([(BASE, ANSWER)])
    with pytest.raises(InvalidInput, match="threshold"):
        find_near_duplicates(session_ids=[session.pk], threshold=threshold)


def _desktop_session(db, pairs: list[tuple[str, str]]) -> int:
    """Write a session and its pairs with plain sqlite3, as the desktop app does."""
    conn = sqlite3.connect(db)
    try:
        cursor = conn.execute("INSERT INTO scrape_sessions (source, pair_count) VALUES ('reddit', ?)", (len(pairs),))
        session_id = cursor.lastrowid
        conn.executemany(
            "INSERT INTO scraped_pairs (session_id, input_text, output_text) VALUES (?, ?, ?)",
            [(session_id, i, o) for i, o in pairs],
        )
        conn.commit()
        return session_id
    finally:
        conn.close()


def _pairs_and_count(db, session_id: int) -> tuple[list[int], int]:
    conn = sqlite3.connect(db)
    try:
        rows = [
            r[0] for r in conn.execute("SELECT id FROM scraped_pairs WHERE session_id = ? ORDER BY id", (session_id,))
        ]
        count = conn.execute("SELECT pair_count FROM scrape_sessions WHERE id = ?", (session_id,)).fetchone()[0]
        return rows, count
    finally:
        conn.close()


def test_command_prints_json_clusters_and_removes_with_dry_run_first(migrated_db):
    first = _desktop_session(migrated_db, [(BASE, ANSWER), ("A question on gpu memory", "Lower the batch.")])
    second = _desktop_session(migrated_db, [(BASE.upper(), ANSWER), (BASE + "?", ANSWER), ("Oven?", "Hot.")])
    result = manage(migrated_db, "near_duplicates", str(second), "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"clusters": [[1, 3, 4]]}
    alone = manage(migrated_db, "near_duplicates", str(second), "--json", "--only-given")
    assert json.loads(alone.stdout) == {"clusters": [[3, 4]]}
    dry = manage(migrated_db, "near_duplicates", str(second), "--remove", "--dry-run")
    assert dry.returncode == 0 and "Would remove 2 pair(s)" in dry.stdout, dry.stdout + dry.stderr
    assert _pairs_and_count(migrated_db, second) == ([3, 4, 5], 3)
    removed = manage(migrated_db, "near_duplicates", str(second), "--remove", "--json")
    assert json.loads(removed.stdout) == {"clusters": [[1, 3, 4]], "removed": [3, 4], "dry_run": False}
    assert _pairs_and_count(migrated_db, second) == ([5], 1)
    assert _pairs_and_count(migrated_db, first) == ([1, 2], 2)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "Give one or more SESSION_IDs, or --all"),
        (("1", "--dry-run"), "--dry-run goes with --remove"),
        (("99",), "scrape session 99 does not exist"),
        (("1", "--threshold", "0.1"), "threshold must be a number from 0.5 to 1.0"),
    ],
)
def test_command_refuses_bad_arguments_clearly(migrated_db, args, message):
    _desktop_session(migrated_db, [(BASE, ANSWER)])
    result = manage(migrated_db, "near_duplicates", *args)
    assert result.returncode != 0 and message in result.stderr, result.stderr
