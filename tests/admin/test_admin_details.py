"""Details a new user tripped over: metadata that is not an object, plurals, "View site", dates without a zone."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from storage.models import ScrapedPair, ScrapeSession
from tests.helpers.processes import manage

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("metadata", "kind"),
    [("[1, 2]", "a list"), ('"lang=en"', "a string"), ("3", "a number"), ("true", "true or false")],
)
def test_the_pair_form_refuses_metadata_that_is_not_an_object(admin_client, session_factory, metadata, kind):
    session = session_factory(pairs=1)
    pair = ScrapedPair.objects.get(session=session)
    response = admin_client.post(
        reverse("admin:storage_scrapedpair_change", args=[pair.pk]),
        {"session": session.pk, "input_text": "q", "output_text": "a", "metadata": metadata},
    )
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["metadata"] == [
        f'Must be a JSON object ({{"key": value, …}}), not {kind}.'
    ]
    pair.refresh_from_db()
    assert pair.input_text != "q"


def test_the_session_form_refuses_a_list_and_keeps_an_object(admin_client, session_factory):
    session = session_factory(pairs=0, source="reddit")
    url = reverse("admin:storage_scrapesession_change", args=[session.pk])
    form = {"name": "n", "source": "reddit", "source_details": "", "dataset_format": "standard"}
    refused = admin_client.post(url, {**form, "metadata": '["a"]'})
    assert refused.status_code == 200 and "not a list" in refused.content.decode()
    assert admin_client.post(url, {**form, "metadata": '{"max_pairs": 5}'}).status_code == 302
    assert ScrapeSession.objects.get(pk=session.pk).metadata == {"max_pairs": 5}


def test_no_view_site_link_back_to_the_admin(admin_client):
    page = admin_client.get(reverse("admin:index")).content.decode()
    assert "View site" not in page


def test_dates_say_utc_in_lists_and_pages(admin_client, site_data):
    run = site_data.runs["completed"]
    pages = [
        reverse("admin:storage_scrapesession_changelist"),
        reverse("admin:storage_scrapesession_change", args=[site_data.reddit.pk]),
        reverse("admin:storage_trainingrun_changelist"),
        reverse("admin:storage_trainingrun_change", args=[run.pk]),
        reverse("admin:storage_applog_changelist"),
        reverse("admin:index"),
    ]
    for url in pages:
        text = admin_client.get(url).content.decode()
        assert " UTC" in text, url
    created = ScrapeSession.objects.get(pk=site_data.reddit.pk).created_at
    sessions = admin_client.get(pages[0]).content.decode()
    assert created.strftime("%Y-%m-%d %H:%M:%S UTC") in sessions


def test_import_and_export_messages_read_right(tmp_path):
    db = tmp_path / "finefoundry.db"
    assert manage(db, "migrate", "-v", "0").returncode == 0
    one = tmp_path / "one.jsonl"
    one.write_text(json.dumps({"input": "q", "output": "a"}) + "\n", encoding="utf-8")
    result = manage(db, "import_pairs", str(one), "--source", "test")
    assert result.returncode == 0, result.stderr
    assert "Imported 1 pair (standard records, jsonl) into new session" in result.stdout

    target = tmp_path / "out.jsonl"
    target.write_text("keep", encoding="utf-8")
    result = manage(db, "export_session", "1", "--format", "jsonl", "-o", str(target))
    assert result.returncode == 1
    assert f"{target} already exists; pass --force to replace it" in result.stderr
    assert "overwrite=True" not in result.stderr and target.read_text(encoding="utf-8") == "keep"
