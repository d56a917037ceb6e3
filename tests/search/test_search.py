"""Searching pairs: the syntax, results identical to icontains with or without the index, paging and errors."""

from __future__ import annotations

import pytest
from django.db.models import Q

from storage import api
from storage.exceptions import InvalidInput, NotFound
from storage.models import ScrapedPair
from storage.search import index as search_index
from storage.search.queries import parse_terms, pick_trigrams, search_pairs, search_queryset
from storage.services import sessions

PAIRS = [
    ("How do I fine-tune Llama 3 with LoRA?", "Use LoRA adapters and a small learning rate."),
    ("What is a learning rate?", "The step size of each update."),
    ("Translate: ünïcödé 🚀", "Unicode with a rocket"),
    ("Progress at 100% already", "Then stop the run."),
    ("snake_case or camelCase?", "PEP 8 says snake_case."),
    ('She said "hello world" twice', "Quotes are fine."),
    ("Hello   World spacing", "answer"),
    ("question alpha", "answer omega"),
    ("ab", "xy"),
]

QUERIES = [
    "lora",
    "LoRA",
    "learning rate",
    '"learning rate"',
    "'small learning'",
    '"rate learning"',
    "llama lora adapters",
    "question omega",
    '"alpha answer"',
    "ünïcödé",
    "ÜNÏCÖDÉ",
    "🚀",
    "100%",
    "0%",
    "snake_case",
    "e_c",
    '"hello world"',
    "hello",
    "ab",
    "a",
    "x",
    "nothing-like-this",
    "fine-tune llama",
]


@pytest.fixture
def corpus(session_factory):
    first = session_factory(source="reddit")
    second = session_factory(source="synthetic")
    half = len(PAIRS) // 2
    sessions.add_scraped_pairs(session_id=first.pk, pairs=[{"input": i, "output": o} for i, o in PAIRS[:half]])
    sessions.add_scraped_pairs(session_id=second.pk, pairs=[{"input": i, "output": o} for i, o in PAIRS[half:]])
    return first, second


def icontains_ids(query: str, pairs=None) -> list[int]:
    pairs = ScrapedPair.objects.all() if pairs is None else pairs
    for term in parse_terms(query):
        pairs = pairs.filter(Q(input_text__icontains=term) | Q(output_text__icontains=term))
    return sorted(pairs.values_list("pk", flat=True))


def searched_ids(query: str, pairs=None) -> list[int]:
    pairs = ScrapedPair.objects.all() if pairs is None else pairs
    return sorted(search_queryset(pairs, query).values_list("pk", flat=True))


def inputs(ids: list[int]) -> list[str]:
    return list(ScrapedPair.objects.filter(pk__in=ids).order_by("id").values_list("input_text", flat=True))


@pytest.mark.parametrize(
    ("query", "terms"),
    [
        ("lora adapters", ["lora", "adapters"]),
        ('"learning rate" llama', ["learning rate", "llama"]),
        ("'single quoted' x", ["single quoted", "x"]),
        ('say "he said \\"hi\\""', ["say", 'he said "hi"']),
        ('a "" b', ["a", "b"]),
        ("same same", ["same"]),
        ("   ", []),
    ],
)
def test_query_syntax_splits_words_and_keeps_quoted_phrases_whole(query, terms):
    assert parse_terms(query) == terms


@pytest.mark.parametrize(
    ("term", "shares", "picked"),
    [
        # Rarest first; an overlapping trigram only once no other is left.
        ("learning rate", {"lea": 0.02, "rni": 0.02, "ing": 0.2, " ra": 0.4}, ["lea", "rni"]),
        ("the model", {"del": 0.1, "mod": 0.15, "ode": 0.26, "e m": 0.4, "the": 1.0}, ["del", "e m", "mod", "ode"]),
        ("quokka", {"quo": 0.0, "uok": 0.0, "okk": 0.0, "kka": 0.0}, ["quo"]),
        # Nothing known: spread over the term.
        ("abcdefghijkl", {}, ["abc", "def", "ghi", "jkl"]),
        ("ab", {}, []),
    ],
)
def test_each_term_is_narrowed_by_its_rarest_trigrams(term, shares, picked):
    assert pick_trigrams(term, shares) == picked


@pytest.mark.parametrize("backend", ["auto", "like"])
@pytest.mark.parametrize("query", QUERIES)
def test_results_are_exactly_what_icontains_finds(settings, corpus, backend, query):
    settings.FINEFOUNDRY_SEARCH_BACKEND = backend
    assert searched_ids(query) == icontains_ids(query)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("lora", ["How do I fine-tune Llama 3 with LoRA?"]),
        ('"learning rate"', ["How do I fine-tune Llama 3 with LoRA?", "What is a learning rate?"]),
        ('"rate learning"', []),
        ("question omega", ["question alpha"]),  # one term in the input, the other in the output
        ('"alpha answer"', []),  # a phrase never spans input and output
        ("100%", ["Progress at 100% already"]),
        ("e_c", ["snake_case or camelCase?"]),  # _ and % are literal characters, not wildcards
        ('"hello world"', ['She said "hello world" twice']),
        ("ab", ["ab"]),
        ("x", ["ab"]),
    ],
)
def test_search_finds_what_a_user_expects(corpus, query, expected):
    assert inputs(searched_ids(query)) == expected


def test_search_keeps_the_filters_the_queryset_already_has(corpus):
    first, second = corpus
    assert inputs(searched_ids("learning", ScrapedPair.objects.filter(session=second))) == []
    assert inputs(searched_ids("learning", ScrapedPair.objects.filter(session=first))) == [
        "How do I fine-tune Llama 3 with LoRA?",
        "What is a learning rate?",
    ]


def test_an_empty_search_changes_nothing(corpus):
    pairs = ScrapedPair.objects.filter(session=corpus[0])
    assert search_queryset(pairs, '  "" ') is pairs


@pytest.mark.sqlite_only("the FTS5 index's query planning (PostgreSQL: tests/search/test_search_postgres.py)")
def test_long_terms_use_the_index_and_short_ones_scan(corpus):
    assert search_index.FTS_TABLE in str(search_queryset(ScrapedPair.objects.all(), "lora ab").query)
    assert search_index.FTS_TABLE not in str(search_queryset(ScrapedPair.objects.all(), "ab x").query)


def test_the_like_backend_never_touches_the_index(settings, corpus):
    settings.FINEFOUNDRY_SEARCH_BACKEND = "like"
    assert search_index.FTS_TABLE not in str(search_queryset(ScrapedPair.objects.all(), "lora").query)
    assert inputs(searched_ids("lora")) == ["How do I fine-tune Llama 3 with LoRA?"]


@pytest.mark.sqlite_only("the FTS5 index's query planning (PostgreSQL: tests/search/test_search_postgres.py)")
def test_without_the_index_search_falls_back_to_scanning(corpus):
    search_index.uninstall(search_index.connections["default"])
    assert search_index.search_mark() is None
    assert searched_ids("learning rate") == icontains_ids("learning rate") != []
    search_index.install(search_index.connections["default"])
    assert search_index.search_mark() is not None
    assert searched_ids("learning rate") == icontains_ids("learning rate")


@pytest.mark.sqlite_only("the FTS5 index's query planning (PostgreSQL: tests/search/test_search_postgres.py)")
@pytest.mark.parametrize("dense_share", [0.0, 2.0])
def test_dense_and_sparse_strategies_agree(monkeypatch, session_factory, dense_share):
    # DENSE_SHARE 0 makes every term "dense" (scan), 2.0 none (index candidates).
    monkeypatch.setattr(search_index, "DENSITY_SAMPLE", 5)
    monkeypatch.setattr(search_index, "DENSE_SHARE", dense_share)
    session = session_factory()
    pairs = [{"input": f"common words {i}", "output": "the model answers" if i % 3 else "nothing"} for i in range(40)]
    sessions.add_scraped_pairs(session_id=session.pk, pairs=pairs)
    query = '"the model" common'
    uses_index = search_index.FTS_TABLE in str(search_queryset(ScrapedPair.objects.all(), query).query)
    assert uses_index == (dense_share > 1)
    assert searched_ids(query) == icontains_ids(query)
    assert len(searched_ids(query)) == 26


def test_search_pairs_pages_oldest_first_and_filters_by_session(corpus):
    _, second = corpus
    everything = search_pairs(query="e")
    assert [p.pk for p in everything] == icontains_ids("e")
    assert [p.pk for p in search_pairs(query="e", limit=2, offset=1)] == [p.pk for p in everything[1:3]]
    assert {p.session_id for p in search_pairs(query="e", session_id=second.pk)} == {second.pk}


def test_api_search_pairs_returns_plain_dicts(corpus):
    first, _ = corpus
    [found] = api.search_pairs('"small learning rate"', session_id=first.pk)
    assert found == {
        "id": found["id"],
        "session_id": first.pk,
        "input": "How do I fine-tune Llama 3 with LoRA?",
        "output": "Use LoRA adapters and a small learning rate.",
        "source_url": None,
        "metadata": {},
        "created_at": found["created_at"],
    }
    assert isinstance(found["created_at"], str)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"query": "   "}, InvalidInput, "query must not be empty"),
        ({"query": '""'}, InvalidInput, "has no search terms"),
        ({"query": 42}, InvalidInput, "query must be a string"),
        ({"query": "x", "limit": 0}, InvalidInput, "limit must be at least 1"),
        ({"query": "x", "limit": 10_001}, InvalidInput, "limit must be at most 10,000"),
        ({"query": "x", "offset": -1}, InvalidInput, "offset must be at least 0"),
        ({"query": "x", "session_id": "1"}, InvalidInput, "session_id must be an integer"),
        ({"query": "x", "session_id": 999_999}, NotFound, "scrape session 999999 does not exist"),
    ],
)
def test_search_pairs_refuses_bad_arguments(db, kwargs, error, message):
    with pytest.raises(error, match=message):
        search_pairs(**kwargs)
