"""Search pairs by the text of their input and output: every term must appear in one of the two.

Syntax, as in the Django admin: words separated by spaces are separate terms; "a phrase in
quotes" (double or single) is one term, spaces included. Matching is icontains: a substring,
case-insensitive for ASCII letters, so `learn` finds "Machine Learning". Terms of three or more
characters go through the full-text index (storage.search.index) where there is one; shorter
terms, and every term on databases without the index, are matched by scanning. Either way the
result is exactly what icontains finds.
"""

from __future__ import annotations

import functools
import operator

from django.db import connections
from django.db.models import Count, Max, Min, Q, QuerySet
from django.db.models.expressions import RawSQL
from django.utils.text import smart_split, unescape_string_literal

from storage.exceptions import InvalidInput, NotFound
from storage.models import ScrapedPair, ScrapeSession
from storage.search import index as search_index
from storage.search import postgres
from storage.validation import optional_int, require_int, require_text

MAX_LIMIT = 10_000


def parse_terms(query: str) -> list[str]:
    """Split a search string into terms: words, and quoted phrases with their quotes removed."""
    terms: list[str] = []
    for bit in smart_split(query):
        if len(bit) >= 2 and bit[0] in "\"'" and bit[0] == bit[-1]:
            bit = unescape_string_literal(bit)
        if bit.strip() and bit not in terms:
            terms.append(bit)
    return terms


def pick_trigrams(term: str, shares: dict[str, float]) -> list[str]:
    """The few trigrams of `term` that narrow the candidates most: rarest first, then overlapping ones.

    Trigrams that do not overlap are nearly independent, so their shares multiply; picking stops
    at MAX_TRIGRAMS_PER_TERM or once the product is ENOUGH_SELECTIVITY. Without shares (all 1.0)
    this spreads the picks over the term.
    """
    positions: dict[str, int] = {}
    for start in range(len(term) - 2):
        positions.setdefault(term[start : start + 3], start)
    ranked = sorted(positions, key=lambda gram: (shares.get(gram, 1.0), positions[gram]))
    chosen: list[str] = []
    estimate = 1.0
    for overlapping in (False, True):
        for gram in ranked:
            if len(chosen) == search_index.MAX_TRIGRAMS_PER_TERM or estimate <= search_index.ENOUGH_SELECTIVITY:
                return chosen
            if gram in chosen or (
                not overlapping and any(abs(positions[gram] - positions[other]) < 3 for other in chosen)
            ):
                continue
            chosen.append(gram)
            estimate *= shares.get(gram, 1.0)
    return chosen


def match_expression(picks: list[list[str]]) -> str:
    """An FTS5 query that every pair containing all the terms satisfies: all their picked trigrams."""
    return " AND ".join(search_index.quoted(gram) for gram in dict.fromkeys(g for grams in picks for g in grams))


def term_filters(terms: list[str]) -> list[Q]:
    """One condition per term: it appears in the input or in the output (icontains)."""
    return [Q(input_text__icontains=text) | Q(output_text__icontains=text) for text in terms]


def search_queryset(queryset: QuerySet, term: str) -> QuerySet:
    """Narrow a queryset of pairs to those matching a search string; other filters are kept."""
    terms = parse_terms(term)
    if not terms:
        return queryset
    if any("\x00" in text for text in terms):
        # No stored text holds a NUL (every write refuses one), so nothing matches; PostgreSQL
        # would reject the parameter outright, SQLite would scan for nothing.
        return queryset.none()
    queryset = queryset.filter(*term_filters(terms))
    indexed_terms = [text for text in terms if len(text) >= search_index.MIN_TERM_CHARS]
    mark = search_index.search_mark(using=queryset.db) if indexed_terms else None
    if mark is None:
        return queryset
    if connections[queryset.db].vendor == "postgresql":
        return postgres_candidates(queryset, terms, indexed_terms, mark)
    every_gram = [text[i : i + 3] for text in indexed_terms for i in range(len(text) - 2)]
    shares = search_index.trigram_shares(every_gram, using=queryset.db)
    picks = [pick_trigrams(text, shares) for text in indexed_terms]
    expression = match_expression(picks)
    # No more pairs can match than hold the rarest picked trigram, so only a query whose every
    # trigram is common may be dense enough for a plain scan to win.
    rarest = min(shares.get(gram, 1.0) for grams in picks for gram in grams)
    if rarest >= search_index.DENSE_SHARE and is_dense(queryset.db, expression, terms):
        return queryset
    # One IN (... UNION ALL ...) rather than an OR of two conditions: SQLite then walks the
    # candidate ids (in id order, so ORDER BY id needs no sort) instead of scanning the table.
    return queryset.filter(pk__in=RawSQL(*search_index.candidates_sql(expression, mark)))


def postgres_candidates(queryset: QuerySet, terms: list[str], indexed_terms: list[str], mark: int) -> QuerySet:
    """PostgreSQL: candidates from the trigram indexes (its planner picks the trigrams), the same dense rule."""
    if newest_are_dense(queryset.db, terms):
        return queryset
    prepare = connections[queryset.db].ops.prep_for_like_query
    patterns = [f"%{prepare(text)}%" for text in indexed_terms]
    return queryset.filter(pk__in=RawSQL(*postgres.candidates_sql(patterns, mark)))


def newest_are_dense(using: str, terms: list[str]) -> bool:
    """Tell whether at least DENSE_SHARE of the newest DENSITY_SAMPLE pairs match, by checking them.

    PostgreSQL has no cheap per-trigram share to gate this on as SQLite's index does, and checking
    a thousand rows costs a few milliseconds.
    """
    newest = ScrapedPair.objects.using(using).order_by("-id").values("pk")[: search_index.DENSITY_SAMPLE]
    matching = functools.reduce(operator.and_, term_filters(terms))
    found = (
        ScrapedPair.objects.using(using)
        .filter(pk__in=newest)
        .aggregate(sampled=Count("pk"), matches=Count("pk", filter=matching))
    )
    return found["sampled"] >= search_index.DENSITY_SAMPLE and (
        found["matches"] / found["sampled"] >= search_index.DENSE_SHARE
    )


def is_dense(using: str, expression: str, terms: list[str]) -> bool:
    """Tell whether at least DENSE_SHARE of the newest pairs match, judging by the newest candidates.

    Then scanning the table from the newest pair finds a page (or the admin's capped count) of
    matches sooner than listing every candidate from the index would.
    """
    sample = RawSQL(*search_index.newest_candidates_sql(expression, search_index.DENSITY_SAMPLE))
    matching = functools.reduce(operator.and_, term_filters(terms))
    found = (
        ScrapedPair.objects.using(using)
        .filter(pk__in=sample)
        .aggregate(candidates=Count("pk"), matches=Count("pk", filter=matching), oldest=Min("pk"), newest=Max("pk"))
    )
    if found["candidates"] < search_index.DENSITY_SAMPLE:
        return False
    return found["matches"] / (found["newest"] - found["oldest"] + 1) >= search_index.DENSE_SHARE


def search_pairs(*, query: str, session_id: int | None = None, limit: int = 50, offset: int = 0) -> list[ScrapedPair]:
    """Pairs matching `query` (optionally in one session), oldest first, one page of them."""
    require_text(query, name="query")
    optional_int(session_id, name="session_id", minimum=1)
    require_int(limit, name="limit", minimum=1)
    require_int(offset, name="offset", minimum=0)
    if limit > MAX_LIMIT:
        raise InvalidInput(f"limit must be at most {MAX_LIMIT:,}, got {limit:,}")
    if not parse_terms(query):
        raise InvalidInput(f"query {query!r} has no search terms")
    pairs = ScrapedPair.objects.all()
    if session_id is not None:
        if not ScrapeSession.objects.filter(pk=session_id).exists():
            raise NotFound(f"scrape session {session_id} does not exist")
        pairs = pairs.filter(session_id=session_id)
    return list(search_queryset(pairs, query).order_by("id")[offset : offset + limit])
