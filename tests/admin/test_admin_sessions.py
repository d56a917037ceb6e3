"""The scrape session admin: list, change page, streamed downloads, and deletes that never list every pair."""

from __future__ import annotations

import csv
import io
import json

import pytest
from django.contrib.admin.models import DELETION, LogEntry
from django.db import connection
from django.urls import reverse

from storage.models import ScrapedPair, ScrapeSession
from storage.services import sessions as sessions_service

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:storage_scrapesession_changelist")


def change_url(session) -> str:
    return reverse("admin:storage_scrapesession_change", args=[session.pk])


def run_action(client, action: str, sessions, **extra):
    data = {"action": action, "_selected_action": [s.pk for s in sessions], **extra}
    return client.post(CHANGELIST, data)


def body_of(response) -> str:
    return b"".join(response.streaming_content).decode()


def test_list_shows_label_source_format_and_count_sorted_by_count(admin_client, session_factory):
    small = session_factory(source="reddit", pairs=3, name="small one")
    big = session_factory(source="4chan", pairs=12)
    page = admin_client.get(CHANGELIST, {"o": "5"})  # 5th column, pair count, ascending
    text = page.content.decode()
    assert "small one" in text and f"4chan #{big.pk}" in text
    assert list(page.context["cl"].result_list) == [small, big]
    descending = admin_client.get(CHANGELIST, {"o": "-5"})
    assert list(descending.context["cl"].result_list) == [big, small]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"source": "4chan"}, ["4chan"]),  # the parameter the page's own filter links use
        ({"q": "MachineLearning"}, ["reddit"]),
        ({}, ["reddit", "4chan", "synthetic"]),
    ],
)
def test_list_filters_and_search(admin_client, site_data, params, expected):
    page = admin_client.get(CHANGELIST, params)
    assert sorted(s.source for s in page.context["cl"].result_list) == sorted(expected)


def test_change_page_shows_metadata_first_pairs_and_a_link_to_all_pairs(admin_client, session_factory):
    session = session_factory(source="reddit", metadata={"subreddit": "LocalLLaMA"}, name="llama")
    sessions_service.add_scraped_pairs(
        session_id=session.pk,
        pairs=[{"input": "long question " + "x" * 5000, "output": f"answer {i}"} for i in range(15)],
    )
    text = admin_client.get(change_url(session)).content.decode()
    assert "LocalLLaMA" in text
    assert text.count("answer ") == 10  # the first ten pairs only
    assert "x" * 200 not in text  # texts are cut short
    assert f"?session__id__exact={session.pk}" in text
    assert reverse("admin:storage_scrapesession_export", args=[session.pk, "jsonl"]) in text


def test_pair_count_and_created_at_are_read_only(admin_client, session_factory):
    session = session_factory(pairs=2)
    response = admin_client.post(
        change_url(session), {"source": "reddit", "dataset_format": "standard", "pair_count": 999, "metadata": ""}
    )
    assert response.status_code == 302
    session.refresh_from_db()
    assert session.pair_count == 2


@pytest.mark.parametrize("fmt", ["json", "jsonl", "chatml", "alpaca", "csv"])
def test_download_action_streams_every_pair_of_the_selected_sessions(admin_client, session_factory, fmt):
    first = session_factory(pairs=3)
    second = session_factory(pairs=2)
    response = run_action(admin_client, f"download_{fmt}", [first, second])
    assert response.status_code == 200
    assert response.streaming
    assert "attachment" in response["Content-Disposition"]
    text = body_of(response)
    if fmt == "json":
        records = json.loads(text)
    elif fmt == "csv":
        records = list(csv.DictReader(io.StringIO(text)))
    else:
        records = [json.loads(line) for line in text.splitlines()]
    assert len(records) == 5


def test_download_link_streams_one_session_as_jsonl(admin_client, session_factory):
    session = session_factory(pairs=4)
    response = admin_client.get(reverse("admin:storage_scrapesession_export", args=[session.pk, "jsonl"]))
    assert response.status_code == 200
    assert response["Content-Disposition"] == f'attachment; filename="session-{session.pk}.jsonl"'
    lines = body_of(response).splitlines()
    assert json.loads(lines[0]) == {"input": "question 0", "output": "answer 0"}
    assert len(lines) == 4


@pytest.mark.parametrize(("session_id", "fmt"), [(None, "docx"), (999999, "jsonl")])
def test_download_link_answers_404_for_an_unknown_format_or_session(admin_client, session_factory, session_id, fmt):
    session_id = session_id or session_factory(pairs=1).pk
    url = reverse("admin:storage_scrapesession_export", args=[session_id, fmt])
    assert admin_client.get(url).status_code == 404


def test_delete_confirmation_counts_pairs_instead_of_listing_them(
    admin_client, session_factory, django_assert_max_num_queries
):
    session = session_factory(pairs=500)
    url = reverse("admin:storage_scrapesession_delete", args=[session.pk])
    # PostgreSQL adds a savepoint pair around the hidden-sessions read; the count stays constant either way.
    with django_assert_max_num_queries(12 if connection.vendor == "sqlite" else 16):
        page = admin_client.get(url)
    text = page.content.decode()
    assert "500 scraped pairs" in text
    assert dict(page.context["model_count"]) == {"scrape sessions": 1, "scraped pairs": 500}
    assert "pair 17" not in text


def test_deleting_a_session_removes_its_pairs_and_logs_it(admin_client, session_factory):
    doomed = session_factory(pairs=30)
    kept = session_factory(pairs=5)
    response = admin_client.post(reverse("admin:storage_scrapesession_delete", args=[doomed.pk]), {"post": "yes"})
    assert response.status_code == 302
    assert not ScrapeSession.objects.filter(pk=doomed.pk).exists()
    assert ScrapedPair.objects.filter(session_id=doomed.pk).count() == 0
    assert ScrapedPair.objects.filter(session_id=kept.pk).count() == 5
    assert LogEntry.objects.filter(action_flag=DELETION, object_id=str(doomed.pk)).exists()


def test_delete_selected_confirms_with_totals_then_deletes(admin_client, session_factory):
    sessions = [session_factory(pairs=10), session_factory(pairs=20)]
    confirm = run_action(admin_client, "delete_selected", sessions)
    assert confirm.status_code == 200
    assert "30 scraped pairs" in confirm.content.decode()
    done = run_action(admin_client, "delete_selected", sessions, post="yes")
    assert done.status_code == 302
    assert not ScrapeSession.objects.filter(pk__in=[s.pk for s in sessions]).exists()
    assert not ScrapedPair.objects.exists()


@pytest.mark.parametrize(
    ("mode", "order"), [("concatenate", ["a0", "a1", "b0", "b1"]), ("interleave", ["a0", "b0", "a1", "b1"])]
)
def test_merge_asks_for_a_name_and_mode_then_makes_a_session_that_records_its_sources(
    admin_client, session_factory, mode, order
):
    first = session_factory(source="reddit")
    second = session_factory(source="4chan")
    sessions_service.add_scraped_pairs(session_id=first.pk, pairs=[{"input": f"a{i}", "output": "x"} for i in range(2)])
    sessions_service.add_scraped_pairs(
        session_id=second.pk, pairs=[{"input": f"b{i}", "output": "y"} for i in range(2)]
    )
    confirm = run_action(admin_client, "merge", [second, first])
    assert confirm.status_code == 200
    assert ScrapeSession.objects.count() == 2  # nothing merged before the confirmation
    default_name = confirm.context["form"].initial["name"]
    assert default_name.startswith(f"Merge of {first.pk}, {second.pk} (")
    response = run_action(admin_client, "merge", [first, second], apply="yes", name="My merge", mode=mode)
    assert response.status_code == 302
    merged = ScrapeSession.objects.exclude(pk__in=[first.pk, second.pk]).get()
    assert merged.name == "My merge"
    assert merged.pair_count == 4
    assert merged.metadata["merged_from"] == [first.pk, second.pk]
    inputs = list(ScrapedPair.objects.filter(session=merged).order_by("id").values_list("input_text", flat=True))
    assert inputs == order
    (message,) = [str(m) for m in admin_client.get(CHANGELIST).context["messages"]]
    assert "Merged 2 sessions" in message and change_url(merged) in message


def test_two_merges_of_the_same_sessions_get_different_default_names(admin_client, session_factory):
    first, second = session_factory(pairs=1), session_factory(pairs=1)
    names = []
    for _ in range(2):
        confirm = run_action(admin_client, "merge", [first, second])
        names.append(confirm.context["form"].initial["name"])
        run_action(admin_client, "merge", [first, second], apply="yes", name=names[-1], mode="concatenate")
    assert names[0] != names[1]
    assert set(ScrapeSession.objects.exclude(pk__in=[first.pk, second.pk]).values_list("name", flat=True)) == set(names)


def test_merge_needs_two_sessions(admin_client, session_factory):
    only = session_factory(pairs=2)
    response = run_action(admin_client, "merge", [only])
    assert response.status_code == 302
    assert ScrapeSession.objects.count() == 1
    messages = [str(m) for m in admin_client.get(CHANGELIST).context["messages"]]
    assert messages == ["Select at least two sessions to merge."]


def test_remove_duplicates_shows_a_dry_run_with_examples_then_removes_on_apply(admin_client, session_factory):
    session = session_factory(source="reddit")
    pairs = [{"input": "Q", "output": "A"}, {"input": "q ", "output": "a"}, {"input": "Q", "output": "A"}]
    sessions_service.add_scraped_pairs(session_id=session.pk, pairs=pairs)
    first_id, second_id, third_id = (
        ScrapedPair.objects.filter(session=session).order_by("id").values_list("pk", flat=True)
    )
    dry = run_action(admin_client, "remove_duplicates", [session])
    assert dry.status_code == 200
    page = dry.content.decode()
    assert "Dry run: nothing has been deleted yet" in page and "lowest pair id" in page
    assert dry.context["examples"][0]["kept"] == first_id and dry.context["examples"][0]["duplicate"] == third_id
    assert ScrapedPair.objects.filter(session=session).count() == 3

    normalized = run_action(admin_client, "remove_duplicates", [session], options="yes", normalize="on", preview="1")
    assert normalized.context["preview"].removed == 2
    assert [e["duplicate"] for e in normalized.context["examples"]] == [second_id, third_id]
    assert ScrapedPair.objects.filter(session=session).count() == 3

    done = run_action(admin_client, "remove_duplicates", [session], options="yes", apply="yes")
    assert done.status_code == 302
    session.refresh_from_db()
    assert session.pair_count == ScrapedPair.objects.filter(session=session).count() == 2
    # The earliest copy is the one kept.
    assert ScrapedPair.objects.filter(session=session, input_text="Q").get().pk == first_id
    (message,) = [str(m) for m in admin_client.get(CHANGELIST).context["messages"]]
    assert message.startswith("Removed 1 duplicate pair")


def test_dedupe_across_sessions_keeps_the_lower_pair_id_whatever_the_order(admin_client, session_factory):
    older, newer = session_factory(source="reddit"), session_factory(source="4chan")
    sessions_service.add_scraped_pairs(session_id=newer.pk, pairs=[{"input": "Q", "output": "A"}])
    sessions_service.add_scraped_pairs(session_id=older.pk, pairs=[{"input": "Q", "output": "A"}])
    kept = ScrapedPair.objects.get(session=newer).pk  # stored first, though its session is newer
    dry = run_action(admin_client, "remove_duplicates", [older, newer], options="yes", across_sessions="on")
    (example,) = dry.context["examples"]
    assert (example["kept"], example["kept_session"], example["duplicate_session"]) == (kept, newer.pk, older.pk)


def test_session_ids_show_in_the_list_the_title_and_the_pair_list(admin_client, session_factory):
    session = session_factory(source="reddit", pairs=2, name="llama q&a")
    rows = admin_client.get(CHANGELIST).content.decode()
    assert f'<th class="field-id"><a href="{change_url(session)}">{session.pk}</a></th>' in rows
    page = admin_client.get(change_url(session))
    assert page.context["subtitle"] == f"Session {session.pk}: llama q&a"
    assert f"<h2>Session {session.pk}: llama q&amp;a</h2>" in page.content.decode()
    pairs = admin_client.get(reverse("admin:storage_scrapedpair_changelist")).content.decode()
    assert f"{session.pk}: llama q&amp;a</a>" in pairs


@pytest.mark.parametrize("bulk", [False, True])
def test_deleting_a_session_names_the_runs_trained_on_it(admin_client, session_factory, run_factory, bulk):
    doomed = session_factory(pairs=3, name="doomed")
    other = session_factory(pairs=1)
    used = run_factory(name="llama-on-doomed", dataset_id=str(doomed.pk))
    run_factory(name="llama-on-other", dataset_id=str(other.pk))
    run_factory(name="hub-run", dataset_source="huggingface", dataset_id=str(doomed.pk))
    if bulk:
        confirm = run_action(admin_client, "delete_selected", [doomed])
    else:
        confirm = admin_client.get(reverse("admin:storage_scrapesession_delete", args=[doomed.pk]))
    text = confirm.content.decode()
    assert "llama-on-doomed</a> was trained on session" in text
    assert "llama-on-other" not in text and "hub-run" not in text

    if bulk:
        run_action(admin_client, "delete_selected", [doomed], post="yes")
    else:
        admin_client.post(reverse("admin:storage_scrapesession_delete", args=[doomed.pk]), {"post": "yes"})
    runs_page = admin_client.get(reverse("admin:storage_trainingrun_changelist")).content.decode()
    assert f'session {doomed.pk} <span class="ff-muted">(deleted)</span>' in runs_page
    assert reverse("admin:storage_scrapesession_change", args=[doomed.pk]) not in runs_page
    assert f"session {other.pk}: {other.label}</a>" in runs_page
    run_page = admin_client.get(reverse("admin:storage_trainingrun_change", args=[used.pk])).content.decode()
    assert f'session {doomed.pk} <span class="ff-muted">(deleted)</span>' in run_page
