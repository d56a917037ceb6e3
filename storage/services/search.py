"""Search pairs by the text of their input and output: every term must appear in one of the two.

Syntax, as in the Django admin: words separated by spaces are separate terms; "a phrase in
quotes" (double or single) is one term, spaces included. Matching is icontains: a substring,
case-insensitive for ASCII letters, so `learn` finds "Machine Learning". Terms of three or more
characters go through the full-text index (storage.search_index) where there is one; shorter
terms, and every term on databases without the index, are matched by scanning. Either way the
result is exactly what icontains finds.
"""

from __future__ import annotations

from django.db.models import Count, Max, Min, Q, QuerySet
from django.db.models.expressions import RawSQL
from django.utils.text import smart_split, unescape_string_literal

from storage import search_index
from storage.exceptions import InvalidInput, NotFound
from storage.models import ScrapedPair, ScrapeSession
from storage.services.inputs import optional_int, require_int, require_text

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


def trigrams(term: str) -> list[str]:
    """Up to MAX_TRIGRAMS_PER_TERM distinct trigrams of `term`, spread over its whole length."""
    grams = list(dict.fromkeys(term[i : i + 3] for i in range(len(term) - 2)))
    limit = search_index.MAX_TRIGRAMS_PER_TERM
    if len(grams) > limit:
        step = (len(grams) - 1) / (limit - 1)
        grams = [grams[round(i * step)] for i in range(limit)]
    return grams


def match_expression(terms: list[str]) -> str | None:
    """An FTS5 query that every row containing all `terms` satisfies; None when no term is long enough."""
    tokens = [gram for term in terms if len(term) >= search_index.MIN_TERM_CHARS for gram in trigrams(term)]
    if not tokens:
        return None
    return " AND ".join('"{}"'.format(token.replace('"', '""')) for token in dict.fromkeys(tokens))


def term_filters(terms: list[str]) -> list[Q]:
    """One condition per term: it appears in the input or in the output (icontains)."""
    return [Q(input_text__icontains=text) | Q(output_text__icontains=text) for text in terms]


def search_queryset(queryset: QuerySet, term: str) -> QuerySet:
    """Narrow a queryset of pairs to those matching a search string; other filters are kept."""
    terms = parse_terms(term)
    if not terms:
        return queryset
    queryset = queryset.filter(*term_filters(terms))
    expression = match_expression(terms)
    mark = search_index.search_mark(using=queryset.db) if expression else None
    if mark is None or is_dense(queryset.db, expression, terms):
        return queryset
    # One IN (... UNION ALL ...) rather than an OR of two conditions: SQLite then walks the
    # candidate ids (in id order, so ORDER BY id needs no sort) instead of scanning the table.
    return queryset.filter(pk__in=RawSQL(*search_index.candidates_sql(expression, mark)))


def is_dense(using: str, expression: str, terms: list[str]) -> bool:
    """Tell whether at least DENSE_SHARE of the newest pairs match, judging by the newest candidates.

    Then scanning the table from the newest pair finds a page (or the admin's capped count) of
    matches sooner than listing every candidate from the index would.
    """
    sample = RawSQL(*search_index.newest_candidates_sql(expression, search_index.DENSITY_SAMPLE))
    candidates = ScrapedPair.objects.using(using).filter(pk__in=sample)
    bounds = candidates.aggregate(count=Count("pk"), oldest=Min("pk"), newest=Max("pk"))
    if bounds["count"] < search_index.DENSITY_SAMPLE:
        return False
    matches = candidates.filter(*term_filters(terms)).count()
    return matches / (bounds["newest"] - bounds["oldest"] + 1) >= search_index.DENSE_SHARE


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
