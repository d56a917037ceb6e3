"""Secrets (tokens, API keys) never appear in full in anything the admin sends back."""

from __future__ import annotations

import secrets

import pytest
from django.contrib.admin import site as admin_site
from django.contrib.admin.models import LogEntry
from django.urls import reverse
from django.views.debug import ExceptionReporter, SafeExceptionReporterFilter

from storage.models import AppLog, Setting, TrainingRun
from storage.services import runs
from storage.services import settings as settings_service
from tests.helpers.admin_pages import MODELS, pages_of

pytestmark = pytest.mark.django_db

SETTING_CHANGE = "admin:storage_setting_change"


def every_admin_page() -> list[str]:
    extra = [
        "/admin/",
        reverse("admin:storage_applog_clear"),
        *(f"{reverse('admin:storage_setting_add')}?key={key}" for key in ("huggingface.token", "runpod.api_key")),
    ]
    return extra + [url for model in MODELS for url in pages_of(model)]


def assert_secret_absent(body: str, *values: str) -> None:
    for secret in values:
        assert secret not in body
        # Not even a long piece of it: at most the last four characters may show.
        assert secret[:-4] not in body
        assert secret[-12:] not in body


def test_no_admin_page_shows_a_secret(admin_client, site_data):
    known = (site_data.hf_token, site_data.runpod_key)
    # The token also reached places that are not settings: a run's logs, a log record.
    run = site_data.runs["running"]
    runs.update_training_run(run_id=run.pk, logs=[*run.logs, f"login with {site_data.hf_token} ok"])
    AppLog.objects.create(level="ERROR", logger="finefoundry.hf", message=f"401 for token {site_data.hf_token}")

    for url in every_admin_page():
        response = admin_client.get(url)
        assert response.status_code == 200, url
        assert_secret_absent(response.content.decode(), *known)

    listing = admin_client.get(reverse("admin:storage_setting_changelist")).content.decode()
    assert f"••••{site_data.hf_token[-4:]}" in listing
    assert f"••••{site_data.runpod_key[-4:]}" in listing


def test_replacing_a_secret_leaves_no_trace_of_it(admin_client, site_data):
    new_token = "hf_" + "ReplacementToken" * 2 + "Q7rT"
    url = reverse(SETTING_CHANGE, args=["huggingface.token"])
    response = admin_client.post(url, {"secret": new_token}, follow=True)
    assert response.status_code == 200
    assert settings_service.get_setting(key="huggingface.token") == new_token
    assert_secret_absent(response.content.decode(), new_token)

    history = admin_client.get(reverse("admin:storage_setting_history", args=["huggingface.token"]))
    assert_secret_absent(history.content.decode(), new_token)
    assert b"Changed Value." in history.content
    for entry in LogEntry.objects.all():
        assert_secret_absent(entry.change_message + entry.object_repr, new_token)
    for page in (url, "/admin/", reverse("admin:storage_setting_changelist")):
        assert_secret_absent(admin_client.get(page).content.decode(), new_token)


def test_a_blank_secret_keeps_the_stored_one(admin_client, site_data):
    response = admin_client.post(reverse(SETTING_CHANGE, args=["runpod.api_key"]), {"secret": ""})
    assert response.status_code == 302
    assert settings_service.get_setting(key="runpod.api_key") == site_data.runpod_key
    assert not LogEntry.objects.filter(change_message__contains="Value").exists()


def test_a_rejected_form_does_not_echo_the_typed_secret(admin_client, site_data):
    typed = "hf_" + "TypedButRejected" * 2 + "x1Y2"
    # The key already exists, so the add form is refused and shown again.
    url = reverse("admin:storage_setting_add") + "?key=huggingface.token"
    response = admin_client.post(url, {"secret": typed})
    assert response.status_code == 200
    assert response.context["adminform"].form.errors
    assert_secret_absent(response.content.decode(), typed)
    assert Setting.objects.get(key="huggingface.token").value != f'"{typed}"'


def test_error_reports_hide_the_posted_secret(admin_client, site_data):
    typed = "hf_" + "SecretInErrorReport" * 2
    response = admin_client.post(reverse(SETTING_CHANGE, args=["huggingface.token"]), {"secret": typed})
    request = response.wsgi_request
    cleansed = SafeExceptionReporterFilter().get_post_parameters(request)
    assert cleansed["secret"] != typed
    assert set(cleansed["secret"]) == {"*"}


def test_a_secret_pasted_into_another_setting_is_masked_in_the_list(admin_client, site_data):
    settings_service.set_setting(key="copied.by.mistake", value={"note": site_data.runpod_key})
    listing = admin_client.get(reverse("admin:storage_setting_changelist")).content.decode()
    assert_secret_absent(listing, site_data.runpod_key)


def test_a_key_that_looks_like_a_credential_is_treated_as_one(admin_client, site_data):
    settings_service.set_setting(key="openai.api_key", value="sk-" + "a1B2c3D4" * 4)
    listing = admin_client.get(reverse("admin:storage_setting_changelist")).content.decode()
    assert "a1B2c3D4a1B2" not in listing
    page = admin_client.get(reverse(SETTING_CHANGE, args=["openai.api_key"])).content.decode()
    assert 'type="password"' in page
    assert "a1B2c3D4a1B2" not in page


def test_run_logs_with_a_token_are_masked_on_the_run_page(admin_client, site_data):
    run = TrainingRun.objects.get(pk=site_data.runs["failed"].pk)
    runs_logs = [*run.logs, f"HF_TOKEN={site_data.hf_token}"]
    runs.update_training_run(run_id=run.pk, logs=runs_logs)
    page = admin_client.get(reverse("admin:storage_trainingrun_change", args=[run.pk])).content.decode()
    assert_secret_absent(page, site_data.hf_token)
    assert "[REDACTED]" in page


def test_the_report_of_a_failed_save_hides_the_typed_secret(admin_user, site_data, monkeypatch, rf):
    # Made at run time, so the report's source excerpts cannot contain it.
    typed = "hf_" + secrets.token_hex(20)

    def broken_store(**kwargs):
        raise RuntimeError("database is full")

    # A failure deep in the save, such as a full disk, is what produces an error report.
    monkeypatch.setattr(settings_service, "set_setting", broken_store)
    request = rf.post(reverse(SETTING_CHANGE, args=["huggingface.token"]), {"secret": typed})
    request.user = admin_user
    request._dont_enforce_csrf_checks = True
    with pytest.raises(RuntimeError) as failure:
        admin_site._registry[Setting].change_view(request, "huggingface.token")
    # The report Django's handler would make: the traceback from the view down.
    traceback = failure.tb
    while traceback.tb_frame.f_code.co_name != "change_view":
        traceback = traceback.tb_next
    report = ExceptionReporter(request, RuntimeError, failure.value, traceback).get_traceback_html()
    assert "database is full" in report and "broken_store" in report
    assert_secret_absent(report, typed)
    assert_secret_absent(report, site_data.hf_token)
