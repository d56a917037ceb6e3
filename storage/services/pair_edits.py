"""Editing and deleting individual pairs while every session's pair_count stays exact."""

from __future__ import annotations

from django.db import transaction
from django.db.models import Count, QuerySet

from storage.exceptions import InvalidInput, NotFound
from storage.models import ScrapedPair, ScrapeSession
from storage.services.pair_counts import adjust_pair_counts
from storage.services.sessions import check_pair_text


def save_pair(pair: ScrapedPair, *, previous_session_id: int | None = None) -> ScrapedPair:
    """Save a new or edited pair; a new pair, or one moved to another session, moves one count along."""
    if not pair.input_text or not pair.output_text:
        raise InvalidInput("a pair needs both an input and an output")
    check_pair_text(pair.input_text, side="input")
    check_pair_text(pair.output_text, side="output")
    with transaction.atomic():
        if not ScrapeSession.objects.filter(pk=pair.session_id).exists():
            raise NotFound(f"scrape session {pair.session_id} does not exist")
        is_new = pair.pk is None
        pair.save()
        deltas: dict[int, int] = {}
        if is_new or previous_session_id != pair.session_id:
            deltas[pair.session_id] = 1
        if not is_new and previous_session_id not in (None, pair.session_id):
            deltas[previous_session_id] = -1
        adjust_pair_counts(deltas)
    return pair


def pairs_per_session(pairs: QuerySet[ScrapedPair]) -> dict[int, int]:
    """How many of the given pairs each session holds."""
    rows = pairs.order_by().values("session_id").annotate(n=Count("id")).values_list("session_id", "n")
    return dict(rows)


def delete_pairs(pairs: QuerySet[ScrapedPair]) -> dict[int, int]:
    """Delete the given pairs in one statement and lower each session's pair_count; return removed per session."""
    # Whatever the caller's queryset carries (annotations, select_related), delete by primary key.
    pairs = ScrapedPair.objects.using(pairs.db).filter(pk__in=pairs.order_by().values("pk"))
    with transaction.atomic(using=pairs.db):
        removed = pairs_per_session(pairs)
        if not removed:
            return {}
        # ScrapedPair has no dependants, so Django issues one DELETE ... WHERE without loading rows.
        pairs.delete()
        adjust_pair_counts({session_id: -count for session_id, count in removed.items()}, using=pairs.db)
    return removed


def deletion_summary(session_ids: list[int]) -> dict[str, int]:
    """What deleting these sessions removes, counted per model (one index count, never a list of pairs)."""
    return {
        ScrapeSession._meta.verbose_name_plural: ScrapeSession.objects.filter(pk__in=session_ids).count(),
        ScrapedPair._meta.verbose_name_plural: ScrapedPair.objects.filter(session_id__in=session_ids).count(),
    }
