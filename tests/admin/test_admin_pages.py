"""Every admin page of every model answers a superuser and sends anyone else to the login page."""

from __future__ import annotations

import pytest
from django.urls import reverse

from storage.demo.seed import DEMO_SETTINGS, seed_demo
from storage.models import (
    ScrapeSession,
)
from tests.helpers.admin_pages import MODELS, READ_ONLY, admin_url, pages_of


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_every_page_answers_a_superuser(admin_client, site_data, model):
    assert model.objects.exists(), "site_data must hold a row of every model"
    for url in pages_of(model):
        response = admin_client.get(url)
        assert response.status_code == 200, url


@pytest.mark.parametrize("model", sorted(READ_ONLY, key=lambda m: m.__name__), ids=lambda m: m.__name__)
def test_records_written_by_finefoundry_cannot_be_added_or_edited(admin_client, site_data, model):
    assert admin_client.get(admin_url(model, "add")).status_code == 403
    record = model.objects.first()
    page = admin_client.get(admin_url(model, "change", record.pk))
    assert page.status_code == 200
    assert b'type="submit" value="Save"' not in page.content
    assert admin_client.post(admin_url(model, "change", record.pk), {}).status_code == 403


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_anonymous_users_are_sent_to_the_login_page(client, site_data, model):
    for url in pages_of(model):
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith(reverse("admin:login")), url


def test_staff_without_permissions_sees_nothing(client, site_data, django_user_model):
    django_user_model.objects.create_user("viewer", password="pw", is_staff=True)
    client.login(username="viewer", password="pw")
    assert client.get(admin_url(ScrapeSession, "changelist")).status_code == 403
    session = site_data.reddit
    assert client.get(admin_url(ScrapeSession, "export", session.pk, "jsonl")).status_code == 403


def test_dashboard_needs_login_and_keeps_the_app_list(client, admin_client, site_data):
    assert client.get("/admin/").status_code == 302
    page = admin_client.get("/admin/")
    assert page.status_code == 200
    assert b"Training runs" in page.content
    # Django's own app list stays below the dashboard.
    assert reverse("admin:storage_scrapedpair_changelist").encode() in page.content
    assert reverse("admin:auth_user_changelist").encode() in page.content


def test_every_page_of_the_demo_database_answers_and_hides_its_secrets(admin_client, db):
    seed_demo(seed=0)
    secrets = [DEMO_SETTINGS["huggingface.token"], DEMO_SETTINGS["runpod.api_key"]]
    for url in ["/admin/", *(url for model in MODELS for url in pages_of(model))]:
        response = admin_client.get(url)
        assert response.status_code == 200, url
        body = response.content.decode()
        assert not any(secret in body for secret in secrets), url
