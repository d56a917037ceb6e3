"""Deep and out-of-range pages of the pairs list keep the search and the session filter (no redirect)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from storage.admin import pairs as pairs_admin
from storage.models import ScrapedPair
from storage.services import sessions as sessions_service

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:storage_scrapedpair_changelist")


@pytest.fixture
def small_pages(monkeypatch):
    """Two pairs a page, searches counted up to 5: the 10,000 / 100-per-page case in miniature."""
    monkeypatch.setattr(pairs_admin, "SEARCH_COUNT_CAP", 5)
    monkeypatch.setattr(pairs_admin.ScrapedPairAdmin, "list_per_page", 2)


def shown_ids(page) -> list[int]:
    return [pair.pk for pair in page.context["cl"].result_list]


def test_a_page_past_the_capped_count_shows_its_results_and_keeps_the_search(
    admin_client, session_factory, small_pages
):
    session = session_factory(pairs=12)
    session_factory(pairs=3)  # other pairs that also match
    ids = sorted(ScrapedPair.objects.filter(session=session).values_list("pk", flat=True), reverse=True)
    query = {"q": "question", "session__id__exact": str(session.pk)}
    first = admin_client.get(CHANGELIST, query)
    assert first.context["cl"].result_count == 5 and first.context["cl"].count_is_capped

    deep = admin_client.get(CHANGELIST, {**query, "p": "4"})
    assert deep.status_code == 200
    assert shown_ids(deep) == ids[6:8]
    cl = deep.context["cl"]
    assert (cl.query, cl.page_num, cl.count_is_capped) == ("question", 4, True)
    text = deep.content.decode()
    assert 'value="question"' in text and "p=5" in text  # the next page is offered, with the search


@pytest.mark.parametrize("with_search", [True, False])
def test_a_page_past_the_end_shows_the_last_page_with_the_filter_kept(
    admin_client, session_factory, small_pages, with_search
):
    session = session_factory(pairs=7)
    session_factory(pairs=4)
    ids = sorted(ScrapedPair.objects.filter(session=session).values_list("pk", flat=True), reverse=True)
    query = {"session__id__exact": str(session.pk), **({"q": "question"} if with_search else {})}
    page = admin_client.get(CHANGELIST, {**query, "p": "50"})
    assert page.status_code == 200  # Django redirected to "?e=1", the unfiltered list
    assert shown_ids(page) == ids[6:]
    assert [str(m) for m in page.context["messages"]] == ["There is no page 50; this is page 4 of 4."]
    assert page.context["cl"].get_filters_params() == {"session__id__exact": [str(session.pk)]}
    below = admin_client.get(CHANGELIST, {**query, "p": "0"})
    assert below.status_code == 200 and shown_ids(below) == ids[:2]


def test_deep_pages_of_the_real_cap(admin_client, session_factory):
    """Page 101 of a search with more than 10,000 matches (100 a page)."""
    session = session_factory(pairs=0)
    sessions_service.add_scraped_pairs(
        session_id=session.pk, pairs=[{"input": f"kestrel {i}", "output": "a"} for i in range(10_150)]
    )
    page = admin_client.get(CHANGELIST, {"q": "kestrel", "p": "101"})
    assert page.status_code == 200
    assert [pair.input_text for pair in page.context["cl"].result_list][:2] == ["kestrel 149", "kestrel 148"]
    assert page.context["cl"].query == "kestrel"
