"""scrape_sessions.pair_count, the one owner: every write that adds, moves or removes pairs adjusts it here.

The desktop app reads pair_count instead of counting; the dashboard and the pairs list sum it. So every
writer adjusts it in the same transaction as its pairs, through `adjust_pair_counts` (a delta, for the
hot paths) or `recount_pairs` (count(*), for set-based writers that do not know their delta cheaply).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from django.db import connections, transaction
from django.db.models import Count, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce

from storage.models import ScrapedPair, ScrapeSession

# COALESCE: rows written by old desktop versions may carry NULL.
ADJUST_SQL = "UPDATE scrape_sessions SET pair_count = COALESCE(pair_count, 0) + %s WHERE id = %s"


def adjust_pair_counts(deltas: Mapping[int, int], *, using: str = "default") -> None:
    """Add each session's delta (+n added, -n removed) to its pair_count, in one statement per batch."""
    rows = [(delta, session_id) for session_id, delta in deltas.items() if delta]
    if not rows:
        return
    with connections[using].cursor() as cursor:
        if len(rows) == 1:  # the scrapers' hot path: one session per call
            cursor.execute(ADJUST_SQL, rows[0])
        else:
            cursor.executemany(ADJUST_SQL, rows)


def recount_pairs(session_ids: Iterable[int] | None = None, *, using: str = "default") -> int:
    """Set pair_count from the real number of pairs: of these sessions, or of every drifted one when None.

    Return how many sessions were updated.
    """
    if session_ids is None:
        with transaction.atomic(using=using):
            return drifted(ScrapeSession.objects.using(using)).update(pair_count=actual_pair_count())
    ids = list(session_ids)
    if not ids:
        return 0
    placeholders = ", ".join(["%s"] * len(ids))
    with connections[using].cursor() as cursor:
        cursor.execute(
            "UPDATE scrape_sessions SET pair_count ="
            " (SELECT count(*) FROM scraped_pairs WHERE scraped_pairs.session_id = scrape_sessions.id)"
            f" WHERE id IN ({placeholders})",
            ids,
        )
        return cursor.rowcount


def actual_pair_count():
    """A subquery for the number of pairs a session really has."""
    counts = (
        ScrapedPair.objects.filter(session=OuterRef("pk"))
        .order_by()
        .values("session")
        .annotate(n=Count("*"))
        .values("n")
    )
    return Coalesce(Subquery(counts), 0)


def drifted(sessions):
    """The sessions whose stored pair_count is not their real number of pairs."""
    return sessions.filter(Q(pair_count__isnull=True) | ~Q(pair_count=actual_pair_count()))


def pair_count_drift(*, using: str = "default") -> list[tuple[int, int | None, int]]:
    """Sessions whose stored pair_count is wrong, as (session id, stored, actual)."""
    sessions = drifted(ScrapeSession.objects.using(using).annotate(actual=actual_pair_count())).order_by("id")
    return [(s.pk, s.pair_count, s.actual) for s in sessions]


def repair_pair_counts(*, using: str = "default") -> int:
    """Set every drifted pair_count to the real number of pairs; return how many sessions changed."""
    return recount_pairs(None, using=using)
