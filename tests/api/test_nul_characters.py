"""NUL characters get the same clear answer on SQLite and PostgreSQL (which cannot store them at all)."""

from __future__ import annotations

import pytest

from storage import api
from storage.exceptions import InvalidInput

NUL_TEXT = "before\x00after"


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda s: api.add_scraped_pairs(s, [{"input": NUL_TEXT, "output": "x"}]), "pair 0: 'input' contains a NUL"),
        (lambda s: api.search_pairs(NUL_TEXT), "query contains a NUL character"),
        (lambda s: api.create_scrape_session("reddit", NUL_TEXT), "contains a NUL character"),
        (lambda s: api.set_setting(NUL_TEXT, "v"), "contains a NUL character"),
    ],
)
def test_the_api_refuses_nul_with_the_same_message(session_factory, call, message):
    session = session_factory(pairs=2)
    with pytest.raises(InvalidInput, match=message):
        call(session.pk)


def test_searching_for_a_nul_finds_nothing_instead_of_failing(admin_client, session_factory):
    from storage.models import ScrapedPair
    from storage.search.queries import search_queryset

    session_factory(pairs=3)
    assert search_queryset(ScrapedPair.objects.all(), NUL_TEXT).count() == 0
    # The admin's search form refuses the term itself and says so; no 500 on either engine.
    page = admin_client.get("/admin/storage/scrapedpair/", {"q": NUL_TEXT})
    assert page.status_code == 200
