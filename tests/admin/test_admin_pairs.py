"""The scraped pair admin: cheap list pages, a session filter without a list of every session, exact pair counts."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from storage.admin import pairs as pairs_admin
from storage.admin.pair_filters import DOMAIN_SAMPLE
from storage.models import ScrapedPair, ScrapeSession
from storage.services import sessions as sessions_service

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:storage_scrapedpair_changelist")


def counts(*sessions) -> list[int]:
    return [ScrapeSession.objects.get(pk=s.pk).pair_count for s in sessions]


def test_list_cuts_texts_short_in_sql_and_never_counts_the_whole_table(admin_client, session_factory):
    session = session_factory(source="reddit")
    sessions_service.add_scraped_pairs(session_id=session.pk, pairs=[{"input": "I" * 5000, "output": "O" * 5000}])
    with CaptureQueriesContext(connection) as queries:
        page = admin_client.get(CHANGELIST)
    text = page.content.decode()
    assert "I" * 100 in text and "I" * 101 not in text
    assert "O" * 101 not in text
    pair_queries = [q["sql"] for q in queries.captured_queries if "scraped_pairs" in q["sql"]]
    assert pair_queries, "the page must read pairs"
    for sql in pair_queries:
        assert "COUNT(" not in sql.upper(), sql
        if f"LIMIT {DOMAIN_SAMPLE}" in sql:
            # The domain filter's choices: the source URLs of the newest pairs, a bounded read.
            assert sql.startswith('SELECT "scraped_pairs"."source_url" AS "source_url" FROM'), sql
            assert " WHERE " not in sql, sql  # the newest rows, not the newest rows that have a URL
            continue
        # Only the first characters of each text leave the database, and never more than a page of rows.
        selected = re.sub(r"SUBSTR(?:ING)?\([^)]*\)", "", sql.split(" FROM ")[0])  # SUBSTRING on PostgreSQL
        assert "input_text" not in selected and "output_text" not in selected, sql
        assert "LIMIT 100" in sql, sql


def test_a_pair_count_that_drifted_low_still_shows_one_page(admin_client, session_factory):
    session = session_factory(pairs=150)
    ScrapeSession.objects.filter(pk=session.pk).update(pair_count=0)
    page = admin_client.get(CHANGELIST, {"session__id__exact": session.pk})
    assert len(page.context["cl"].result_list) == 100


def test_list_is_newest_first_and_says_how_many(admin_client, session_factory):
    session = session_factory(pairs=3)
    page = admin_client.get(CHANGELIST)
    ids = [pair.pk for pair in page.context["cl"].result_list]
    assert ids == sorted(ids, reverse=True)
    assert page.context["cl"].result_count == session.pair_count == 3


def test_session_filter_shows_one_session_and_counts_from_its_pair_count(admin_client, session_factory):
    wanted = session_factory(source="reddit", pairs=4)
    session_factory(source="4chan", pairs=6)
    page = admin_client.get(CHANGELIST, {"session__id__exact": wanted.pk})
    assert page.status_code == 200
    assert {pair.session_id for pair in page.context["cl"].result_list} == {wanted.pk}
    assert page.context["cl"].result_count == 4
    # The filter offers a few sessions and a way to the rest, not a select of every session.
    assert b"<select" not in page.content.split(b'id="changelist-filter"')[1]
    assert b"Other sessions" in page.content


def test_session_filter_lists_only_recent_sessions(admin_client, session_factory):
    sessions = [session_factory(source=f"source-{i}") for i in range(20)]
    page = admin_client.get(CHANGELIST, {"session__id__exact": sessions[0].pk})
    (spec,) = [spec for spec in page.context["cl"].filter_specs if spec.parameter_name == "session__id__exact"]
    choices = spec.lookup_choices
    shown = {int(value) for value, _ in choices}
    assert sessions[0].pk in shown  # the selected one, although it is the oldest
    assert len(shown) <= 16


def test_a_bad_session_id_is_refused_cleanly(admin_client, session_factory):
    session_factory(pairs=1)
    response = admin_client.get(CHANGELIST, {"session__id__exact": "abc"})
    assert response.status_code == 302
    assert response["Location"].endswith("?e=1")


def test_search_finds_pairs_by_their_text(admin_client, session_factory):
    session = session_factory(source="reddit")
    sessions_service.add_scraped_pairs(
        session_id=session.pk,
        pairs=[{"input": "How do I fine-tune Llama?", "output": "Use LoRA."}, {"input": "Hi", "output": "Hello"}],
    )
    page = admin_client.get(CHANGELIST, {"q": "lora"})
    assert [pair.input_text for pair in page.context["cl"].result_list] == ["How do I fine-tune Llama?"]
    assert page.context["cl"].result_count == 1


def test_adding_a_pair_raises_its_session_count(admin_client, session_factory):
    session = session_factory(pairs=2)
    response = admin_client.post(
        reverse("admin:storage_scrapedpair_add"),
        {"session": session.pk, "input_text": "new question", "output_text": "new answer", "metadata": ""},
    )
    assert response.status_code == 302
    assert counts(session) == [3]
    assert ScrapedPair.objects.filter(session=session).count() == 3


def test_moving_a_pair_moves_one_count_along(admin_client, session_factory):
    source = session_factory(pairs=3)
    target = session_factory(pairs=1)
    pair = ScrapedPair.objects.filter(session=source).first()
    response = admin_client.post(
        reverse("admin:storage_scrapedpair_change", args=[pair.pk]),
        {"session": target.pk, "input_text": "edited", "output_text": pair.output_text, "metadata": ""},
    )
    assert response.status_code == 302
    assert counts(source, target) == [2, 2]
    pair.refresh_from_db()
    assert (pair.session_id, pair.input_text) == (target.pk, "edited")


def test_editing_a_pair_in_place_keeps_the_count(admin_client, session_factory):
    session = session_factory(pairs=2)
    pair = ScrapedPair.objects.filter(session=session).first()
    response = admin_client.post(
        reverse("admin:storage_scrapedpair_change", args=[pair.pk]),
        {"session": session.pk, "input_text": "changed", "output_text": "changed too", "metadata": '{"lang": "en"}'},
    )
    assert response.status_code == 302
    assert counts(session) == [2]
    pair.refresh_from_db()
    assert pair.metadata == {"lang": "en"}


def test_deleting_one_pair_lowers_the_count(admin_client, session_factory):
    session = session_factory(pairs=2)
    pair = ScrapedPair.objects.filter(session=session).first()
    response = admin_client.post(reverse("admin:storage_scrapedpair_delete", args=[pair.pk]), {"post": "yes"})
    assert response.status_code == 302
    assert counts(session) == [1]


def test_bulk_delete_confirms_per_session_and_adjusts_each_count(admin_client, session_factory):
    first = session_factory(pairs=5)
    second = session_factory(pairs=4)
    chosen = list(ScrapedPair.objects.filter(session=first).values_list("pk", flat=True)[:2])
    chosen += list(ScrapedPair.objects.filter(session=second).values_list("pk", flat=True)[:3])
    data = {"action": "delete_selected", "_selected_action": chosen}
    confirm = admin_client.post(CHANGELIST, data)
    assert confirm.status_code == 200
    text = confirm.content.decode()
    assert "2 pairs of session" in text and "3 pairs of session" in text
    done = admin_client.post(CHANGELIST, {**data, "post": "yes"})
    assert done.status_code == 302
    assert counts(first, second) == [3, 1]
    assert not ScrapedPair.objects.filter(pk__in=chosen).exists()


def test_delete_everything_a_filter_selects(admin_client, session_factory):
    doomed = session_factory(pairs=6)
    kept = session_factory(pairs=2)
    url = f"{CHANGELIST}?session__id__exact={doomed.pk}"
    some = ScrapedPair.objects.filter(session=doomed).first().pk
    data = {"action": "delete_selected", "_selected_action": [some], "select_across": "1", "post": "yes"}
    assert admin_client.post(url, data).status_code == 302
    assert counts(doomed, kept) == [0, 2]


def test_a_search_with_more_matches_than_the_cap_says_so(admin_client, session_factory, monkeypatch):
    monkeypatch.setattr(pairs_admin, "SEARCH_COUNT_CAP", 5)
    session_factory(pairs=8)
    page = admin_client.get(CHANGELIST, {"q": "question"})
    assert page.context["cl"].result_count == 5
    assert "5+ results" in page.content.decode() and "5+ scraped pairs" in page.content.decode()
    unfiltered = admin_client.get(CHANGELIST).content.decode()
    assert "8 scraped pairs" in unfiltered and "+" not in unfiltered.split('class="paginator"')[1][:80]


@pytest.mark.parametrize("query", [{}, {"q": "lora"}, {"q": "lora", "session__id__exact": "SESSION"}])
def test_row_links_lead_back_to_the_same_filtered_list(admin_client, session_factory, query):
    session = session_factory()
    sessions_service.add_scraped_pairs(session_id=session.pk, pairs=[{"input": "LoRA rank?", "output": "8 or 16."}])
    pair = ScrapedPair.objects.get()
    query = {key: str(session.pk) if value == "SESSION" else value for key, value in query.items()}
    page = admin_client.get(CHANGELIST, query).content.decode()
    change_url = reverse("admin:storage_scrapedpair_change", args=(pair.pk,))
    (href,) = re.findall(rf'href="({re.escape(change_url)}[^"]*)"', page)
    expected = admin_client.get(CHANGELIST, query).context["preserved_filters"]
    assert href.replace("&amp;", "&") == (f"{change_url}?{expected}" if query else change_url)


@pytest.mark.parametrize(
    "query", [{}, {"q": "rank"}, {"q": '"rank <script>"', "input_length": "medium"}, {"has_metadata": "no"}]
)
def test_fast_rows_are_what_djangos_generic_rendering_writes(admin_client, session_factory, query):
    from django.contrib.admin.templatetags.admin_list import items_for_result

    session = session_factory(name="<b>tricky</b> & co")
    sessions_service.add_scraped_pairs(
        session_id=session.pk,
        pairs=[{"input": "LoRA rank <script>?" + "x" * 300, "output": "8 & 16"}, {"input": "rank?", "output": "ok"}],
    )
    cl = admin_client.get(CHANGELIST, query).context["cl"]
    assert len(cl.result_list) == (1 if "input_length" in query else 2)
    for pair in cl.result_list:
        row = "".join(cl.model_admin.row_cells(cl, pair))
        assert row == "".join(items_for_result(cl, pair, None))
        # The added cells are in the comparison: a read link always, a marked snippet when searching.
        assert '<td class="field-read"><a class="ff-read-link"' in row
        assert ("<mark>" in row) == ("q" in query)
