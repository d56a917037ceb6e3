"""The near-duplicate review page (clusters, marked words, remove with confirmation) and the answers cap."""

from __future__ import annotations

import random

import pytest
from django.urls import reverse

from storage.admin.word_diff import marked_words
from storage.models import ScrapedPair, ScrapeSession
from storage.services import sessions as sessions_service
from storage.services.settings import set_setting
from tests.helpers.planted_corpus import original

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:storage_scrapesession_changelist")
REVIEW = reverse("admin:storage_scrapesession_near_duplicates")
BASE = "How do I fix a python import error in my virtualenv when pip installs the package twice?"
ANSWER = "Delete the virtualenv, create it again and install the package once with pip; then import works."


def make_session(pairs, **kwargs) -> ScrapeSession:
    session = sessions_service.create_scrape_session(source="reddit", **kwargs)
    sessions_service.add_scraped_pairs(session_id=session.pk, pairs=[{"input": i, "output": o} for i, o in pairs])
    session.refresh_from_db()
    return session


def pair_ids(session) -> list[int]:
    return list(session.pairs.order_by("id").values_list("id", flat=True))


def test_marked_words_escape_html_and_mark_only_the_difference():
    old, new = marked_words("keep <b>this</b> word", "keep <b>that</b> word & more")
    assert old == "keep <del>&lt;b&gt;this&lt;/b&gt;</del> word"
    assert new == "keep <ins>&lt;b&gt;that&lt;/b&gt;</ins> word <ins>&amp; more</ins>"


def test_action_opens_the_review_page_with_clusters_side_by_side(admin_client):
    stored = make_session([(BASE, ANSWER)])
    session = make_session([(BASE.replace("twice", "again"), ANSWER), ("Unrelated <script>", "text")])
    response = admin_client.post(CHANGELIST, {"action": "find_near_duplicates", "_selected_action": [session.pk]})
    assert response.status_code == 302 and response.url.startswith(REVIEW)
    page = admin_client.get(response.url)
    html = page.content.decode()
    assert page.status_code == 200
    assert "<del>twice?</del>" not in html  # the first pair is shown as it is
    assert "<ins>again?</ins>" in html
    # The stored pair of another session is shown but cannot be removed; the session's own pair can.
    assert f'id="remove-{pair_ids(session)[0]}"' in html and f'id="remove-{pair_ids(stored)[0]}"' not in html


def test_marked_pairs_are_removed_only_after_confirmation_and_counts_stay_exact(admin_client):
    session = make_session([(BASE, ANSWER), (BASE.upper(), ANSWER), (BASE + " Thanks!", ANSWER)])
    first, second, third = pair_ids(session)
    data = {"sessions": str(session.pk), "threshold": "0.8", "remove": [str(second)], "review": "1"}
    confirm = admin_client.post(REVIEW, data)
    assert confirm.status_code == 200 and "Yes, remove 1 pair(s)" in confirm.content.decode()
    assert ScrapedPair.objects.count() == 3
    done = admin_client.post(REVIEW, {**data, "confirm": "yes"}, follow=True)
    assert "Removed 1 near-duplicate pair(s)." in done.content.decode()
    assert pair_ids(session) == [first, third]
    session.refresh_from_db()
    assert session.pair_count == 2


def test_keep_one_per_cluster_marks_every_other_member_and_never_other_sessions(admin_client):
    stored = make_session([(BASE, ANSWER)])
    session = make_session([(BASE.lower(), ANSWER), (BASE + "!", ANSWER), ("Oven temperature?", "Hot.")])
    data = {"sessions": str(session.pk), "threshold": "0.8", "keep_one": "1"}
    confirm = admin_client.post(REVIEW, data)
    assert confirm.context["doomed"] == pair_ids(session)[:2]
    admin_client.post(REVIEW, {**data, "remove": [str(i) for i in pair_ids(session)[:2]], "confirm": "yes"})
    assert len(pair_ids(stored)) == 1 and len(pair_ids(session)) == 1


def test_pairs_of_other_sessions_cannot_be_removed_by_a_forged_post(admin_client):
    stored = make_session([(BASE, ANSWER)])
    session = make_session([(BASE.lower(), ANSWER)])
    data = {"sessions": str(session.pk), "threshold": "0.8", "remove": [str(pair_ids(stored)[0])], "confirm": "yes"}
    admin_client.post(REVIEW, data)
    assert len(pair_ids(stored)) == 1


@pytest.mark.parametrize("query", [{"sessions": "x", "threshold": "0.8"}, {"sessions": "1", "threshold": "0.1"}, {}])
def test_bad_review_parameters_go_back_with_a_message(admin_client, query):
    response = admin_client.get(REVIEW, query, follow=True)
    assert "Cannot review" in response.content.decode()


def test_review_pages_clusters(admin_client):
    rng = random.Random(3)
    originals = [original(rng) for _ in range(25)]
    session = make_session(
        [(p["input"], p["output"]) for p in originals] + [(p["input"].upper(), p["output"]) for p in originals]
    )
    first = admin_client.get(REVIEW, {"sessions": session.pk, "threshold": "0.8"})
    second = admin_client.get(REVIEW, {"sessions": session.pk, "threshold": "0.8", "page": "2"})
    assert (len(first.context["rows"]), len(second.context["rows"])) == (20, 5)
    assert "page 1 of 2" in first.content.decode()


def test_cap_answers_previews_then_removes(admin_client):
    session = make_session([("Same question?", f"answer {n}") for n in range(5)] + [("same  QUESTION?", "more")])
    other = make_session([("Other?", "one"), ("Other?", "two")])
    action = {"action": "cap_answers_per_prompt", "_selected_action": [session.pk, other.pk]}
    form = admin_client.post(CHANGELIST, action)
    assert form.status_code == 200 and "Count what would go" in form.content.decode()
    preview = admin_client.post(CHANGELIST, {**action, "max_answers": "2", "preview": "1"})
    assert "1 prompt(s) have more than 2 answers: 4 pair(s) would be removed" in preview.content.decode()
    assert ScrapedPair.objects.count() == 8
    admin_client.post(CHANGELIST, {**action, "max_answers": "2", "apply": "1"})
    assert ScrapedPair.objects.filter(session=session).count() == 2
    session.refresh_from_db()
    other.refresh_from_db()
    assert (session.pair_count, other.pair_count) == (2, 2)


def test_the_review_page_masks_what_the_scan_finds_in_the_texts_it_compares(admin_client):
    token = "hf_PastedIntoAQuestionAbcdef0123"
    set_setting(key="runpod.api_key", value="PLAINRUNPODKEY7X9Y2Z")  # stored by the desktop app, no key shape
    answer = f"{ANSWER} Pod key PLAINRUNPODKEY7X9Y2Z, mail jane.doe@example.com"
    make_session([(f"{BASE} My token: {token}", answer)])
    session = make_session([(f"{BASE.replace('twice', 'again')} My token: {token}", answer)])
    response = admin_client.post(CHANGELIST, {"action": "find_near_duplicates", "_selected_action": [session.pk]})
    html = admin_client.get(response.url).content.decode()
    assert f'id="remove-{pair_ids(session)[0]}"' in html and "kept" in html  # the cluster is on the page
    for secret in (token, token[:10], "jane.doe@example.com", "PLAINRUNPODKEY"):
        assert secret not in html
    # One token masks alike in both texts: only the changed word is marked.
    assert "<ins>again?</ins> My token: [SECRET]" in html
    assert html.count("Pod key [SECRET], mail [EMAIL]") == 2
