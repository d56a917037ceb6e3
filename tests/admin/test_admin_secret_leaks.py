"""No page, title, message, history entry, export, error page or log row shows a stored secret.

The secrets are written the way the desktop app writes them: plain sqlite3, plain text, any key
shape (a RunPod key without its `rpa_` prefix, a custom `wandb.api_key`), and reach the other
tables in plain text too (log messages, run logs, configs), as an older desktop version left them.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Permission
from django.db import connection
from django.test import Client
from django.urls import reverse

from storage.dblog.handler import DatabaseLogHandler
from storage.models import AppLog
from storage.services.datasets import exporting
from tests.admin.test_admin_secrets import every_admin_page
from tests.helpers.logs import stored_rows

PROJECT_ROOT = Path(__file__).resolve().parent.parent.parent
# Made at run time, so no source excerpt of a debug page can contain them.
RUNPOD_KEY = "".join(secrets.choice("ABCDEFGHJKLMNPQRSTUVWXYZ23456789") for _ in range(32))
WANDB_KEY = secrets.token_hex(20)
HF_TOKEN = "hf_" + secrets.token_urlsafe(24).replace("-", "x").replace("_", "y")
ALL = (RUNPOD_KEY, WANDB_KEY, HF_TOKEN)


def assert_no_secret(text: str, where: str) -> None:
    for secret in ALL:
        # Neither the whole nor a piece of it (at most the last four characters may show), nor its first
        # ten characters (a preview's end cutting a secret short must not show its start).
        for piece in (secret, secret[:-4], secret[4:], secret[:10]):
            assert piece not in text, f"{where} shows a secret"


def desktop_writes(db_path: str, site_data) -> dict[str, int]:
    """What the desktop app does with plain sqlite3: settings as raw text, secrets inside other rows."""
    run = site_data.runs["completed"]
    with sqlite3.connect(db_path, timeout=30) as db:
        db.execute("DELETE FROM settings WHERE key IN ('runpod.api_key', 'huggingface.token')")
        db.execute("INSERT INTO settings (key, value) VALUES ('runpod.api_key', ?)", [RUNPOD_KEY])
        db.execute("INSERT INTO settings (key, value) VALUES ('wandb.api_key', ?)", [WANDB_KEY])
        db.execute("INSERT INTO settings (key, value) VALUES ('huggingface.token', ?)", [f'"{HF_TOKEN}"'])
        rows = {}
        for logger, message in (
            ("finefoundry.runpod", f"Starting pod with key {RUNPOD_KEY}"),
            ("finefoundry.wandb", f"wandb login {WANDB_KEY}\nsecond line"),
            ("finefoundry.hf", f"push_to_hub as {HF_TOKEN} failed"),
        ):
            cursor = db.execute(
                "INSERT INTO app_logs (timestamp, level, logger, message, exc_info) VALUES (?, 'ERROR', ?, ?, ?)",
                ["2026-01-01T10:00:00.000000", logger, message, f"Traceback\nError: {message}"],
            )
            rows[logger] = cursor.lastrowid
        db.execute(
            "UPDATE training_runs SET logs_json = ?, metadata_json = ?, hp_json = ? WHERE id = ?",
            [
                f'["login {HF_TOKEN}", "pod {RUNPOD_KEY}"]',
                f'{{"wandb": "{WANDB_KEY}"}}',
                f'{{"epochs": 1, "api_key": "{RUNPOD_KEY}"}}',
                run.pk,
            ],
        )
        db.execute(
            "UPDATE training_configs SET config_json = ? WHERE id = ?",
            [f'{{"hp": {{"runpod_key": "{RUNPOD_KEY}", "wandb": "{WANDB_KEY}"}}}}', site_data.config.pk],
        )
        db.execute(
            "UPDATE scrape_sessions SET metadata_json = ? WHERE id = ?",
            [f'{{"hf_token": "{HF_TOKEN}"}}', site_data.reddit.pk],
        )
        # Pasted into scraped texts: the session page's first pair, with the token across its preview's
        # end (character 100), and the session's last pair, whose page the walk visits.
        first, last = db.execute(
            "SELECT min(id), max(id) FROM scraped_pairs WHERE session_id = ?", [site_data.chan.pk]
        ).fetchone()
        db.execute(
            "UPDATE scraped_pairs SET output_text = ? WHERE id = ?",
            ["word " * 18 + f"{HF_TOKEN} then {RUNPOD_KEY}\nand {WANDB_KEY}", first],
        )
        db.execute(
            "UPDATE scraped_pairs SET input_text = ?, output_text = ? WHERE id = ?",
            [f"my key is {RUNPOD_KEY}", f"login {HF_TOKEN}\nwandb {WANDB_KEY}", last],
        )
        rows["pairs"] = (first, last)
    return rows


@pytest.mark.django_db(transaction=True)
@pytest.mark.sqlite_only("the desktop app writes its secrets with plain sqlite3 into the database file")
def test_no_page_title_history_export_or_log_row_shows_a_secret(site_data, admin_user, tmp_path):
    client = Client()
    client.force_login(admin_user)
    log_ids = desktop_writes(str(connection.settings_dict["NAME"]), site_data)
    # A history entry an older version wrote with the message in the record's name.
    legacy = LogEntry.objects.create(
        user=admin_user,
        object_id="1",
        object_repr=f"ERROR finefoundry.runpod: Starting pod with key {RUNPOD_KEY}",
        action_flag=3,
    )

    pair_pages = [
        reverse(f"admin:storage_scrapedpair_{page}", args=[pk])
        for pk in log_ids.pop("pairs")
        for page in ("change", "read")
    ]
    record_pages = [
        reverse(f"admin:storage_applog_{page}", args=[pk]) for pk in log_ids.values() for page in ("change", "delete")
    ]
    for url in [*every_admin_page(), *record_pages, *pair_pages]:
        response = client.get(url)
        assert response.status_code == 200, url
        assert_no_secret(response.content.decode(), url)
    # A staff user who may only view sees every page read-only: the texts are shown, never a secret.
    viewer = admin_user.__class__.objects.create_user("viewer", password="pw", is_staff=True)
    viewer.user_permissions.add(*Permission.objects.filter(codename__startswith="view_"))
    as_viewer = Client()
    as_viewer.force_login(viewer)
    for url in [*every_admin_page(), *record_pages, *pair_pages]:
        response = as_viewer.get(url)
        assert response.status_code in (200, 302, 403), url
        assert_no_secret(response.content.decode(), f"{url} (view only)")
    page = as_viewer.get(pair_pages[0]).content.decode()
    assert '<div class="readonly">' in page and "[SECRET]" in page and "word word" in page
    page = client.get(record_pages[0]).content.decode()
    assert re.search(r"<title>log record \d+ \(ERROR, finefoundry.runpod\)", page)

    # Deleting records: the confirmation message and the history kept for ever.
    for pk in log_ids.values():
        response = client.post(reverse("admin:storage_applog_delete", args=[pk]), {"post": "yes"}, follow=True)
        assert response.status_code == 200
        assert_no_secret(response.content.decode(), "delete message")
    assert LogEntry.objects.exclude(pk=legacy.pk).count() == len(log_ids)
    for entry in LogEntry.objects.exclude(pk=legacy.pk):
        assert_no_secret(entry.object_repr + entry.change_message, "django_admin_log")
    dashboard = client.get("/admin/").content.decode()
    assert_no_secret(dashboard, "dashboard with recent actions")
    assert "Starting pod with key [REDACTED]" in dashboard

    # An export of the session whose metadata holds a token.
    out = tmp_path / "export.jsonl"
    exporting.export_sessions(session_ids=[site_data.reddit.pk], fmt="jsonl", output_path=out)
    assert_no_secret(out.read_text(encoding="utf-8"), "export")

    # Log records written now: masked with every secret setting's stored value, whatever its key.
    logger = logging.getLogger("finefoundry.tests.leaks")
    handler = DatabaseLogHandler()
    logger.addHandler(handler)
    try:
        logger.error("retrying with %s and %s and %s", RUNPOD_KEY, WANDB_KEY, HF_TOKEN)
        assert handler.flush(timeout=30)
    finally:
        logger.removeHandler(handler)
        handler.close()
    rows = stored_rows(connection.settings_dict["NAME"], logger="finefoundry.tests.leaks")
    assert_no_secret(repr(rows), "app_logs")
    row = rows[-1]
    assert row["message"] == "retrying with [REDACTED] and [REDACTED] and [REDACTED]"


@pytest.mark.django_db
def test_a_log_records_name_never_holds_its_message(site_data):
    record = AppLog.objects.create(level="ERROR", logger="finefoundry.runpod", message=f"key {RUNPOD_KEY}")
    assert str(record) == f"log record {record.pk} (ERROR, finefoundry.runpod)"


def staff_client(django_user_model, *codenames: str) -> Client:
    user = django_user_model.objects.create_user(f"staff{len(codenames)}", password="pw", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.django_db
def test_the_dashboard_shows_only_what_the_user_may_view(site_data, django_user_model, settings):
    run_name = site_data.runs["failed"].name
    error = "Training failed: CUDA out of memory"
    storage_root = str(settings.FINEFOUNDRY_STORAGE_ROOT)
    database = str(connection.settings_dict["NAME"])

    nothing = staff_client(django_user_model).get("/admin/")
    assert nothing.status_code == 200
    text = nothing.content.decode()
    for shown in (run_name, error, "unsloth/Qwen2.5-7B", "Qwen2.5-7B", storage_root, database, "reddit", 'id="dash-'):
        assert shown not in text, shown

    logs_only = staff_client(django_user_model, "view_applog").get("/admin/").content.decode()
    assert error in logs_only
    assert run_name not in logs_only and storage_root not in logs_only and 'id="dash-pairs"' not in logs_only

    runs_only = staff_client(django_user_model, "view_applog", "view_trainingrun").get("/admin/").content.decode()
    assert run_name in runs_only and 'id="dash-runs"' in runs_only and database not in runs_only


@pytest.mark.django_db
@pytest.mark.sqlite_only("the failing save is made with an SQLite trigger")
def test_a_failed_token_save_with_debug_on_shows_no_secret(site_data, admin_user, settings, monkeypatch):
    """A real failure in the save (the database refuses the write), rendered as Django's debug page."""
    settings.DEBUG = True
    # The 500 is logged to app_logs by a writer on its own connection, which would outlive this test's rollback.
    monkeypatch.setattr(logging.getLogger("django.request"), "disabled", True)
    desktop_stored = f'"{HF_TOKEN}"'
    with connection.cursor() as cursor:
        cursor.execute("UPDATE settings SET value = %s WHERE key = 'huggingface.token'", [desktop_stored])
        cursor.execute("INSERT INTO settings (key, value) VALUES ('wandb.api_key', %s)", [WANDB_KEY])
        cursor.execute(
            "CREATE TRIGGER refuse_settings BEFORE UPDATE ON settings "
            "BEGIN SELECT RAISE(ABORT, 'settings are read-only on this machine'); END"
        )
    typed = "hf_" + secrets.token_urlsafe(24).replace("-", "x").replace("_", "y")
    client = Client(raise_request_exception=False)
    client.force_login(admin_user)
    response = client.post(reverse("admin:storage_setting_change", args=["huggingface.token"]), {"secret": typed})
    assert response.status_code == 500
    page = response.content.decode()
    assert "settings are read-only on this machine" in page  # it is the debug page, with the real error
    for secret in (typed, HF_TOKEN, WANDB_KEY):
        assert secret not in page and secret[3:-4] not in page


def deploy_check(tmp_path, **env) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy"],
        cwd=PROJECT_ROOT,
        env={
            **os.environ,
            "FINEFOUNDRY_DB": str(tmp_path / "finefoundry.db"),
            "DJANGO_DEBUG": "0",
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
            **env,
        },
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_leaves_only_the_warnings_the_readme_explains(tmp_path):
    over_https = deploy_check(tmp_path, DJANGO_HTTPS="1")
    assert over_https.returncode == 0, over_https.stderr
    assert re.findall(r"security\.W\d+", over_https.stdout + over_https.stderr) == ["security.W021"]
    loopback = deploy_check(tmp_path, DJANGO_HTTPS="0")
    found = sorted(re.findall(r"security\.W\d+", loopback.stdout + loopback.stderr))
    assert found == ["security.W004", "security.W008", "security.W012", "security.W016"]
    readme = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    for warning in [*found, "security.W021"]:
        assert f"`{warning.split('.')[1]}`" in readme


@pytest.mark.django_db
def test_every_admin_response_has_a_strict_content_security_policy(admin_client, site_data):
    for url in ("/admin/", reverse("admin:storage_trainingrun_change", args=[site_data.runs["completed"].pk])):
        policy = admin_client.get(url)["Content-Security-Policy"]
        assert "script-src 'self'" in policy and "style-src 'self'" in policy
        assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
        assert "frame-ancestors 'none'" in policy


@pytest.mark.django_db
def test_editable_json_shows_a_secret_masked_and_keeps_it_on_save(admin_client, site_data):
    session = site_data.reddit
    with connection.cursor() as cursor:
        cursor.execute("INSERT INTO settings (key, value) VALUES ('wandb.api_key', %s)", [WANDB_KEY])
        cursor.execute(
            "UPDATE scrape_sessions SET metadata_json = %s WHERE id = %s",
            [f'{{"wandb": "{WANDB_KEY}", "max_pairs": 40}}', session.pk],
        )
    url = reverse("admin:storage_scrapesession_change", args=[session.pk])
    page = admin_client.get(url)
    form = page.context["adminform"].form
    assert_no_secret(page.content.decode(), url)
    data = {name: form[name].value() for name in form.fields}
    data["metadata"] = form.fields["metadata"].prepare_value(form.initial["metadata"])
    data = {name: "" if value is None else value for name, value in data.items()}

    # Saved as shown: the stored secret stays.
    assert admin_client.post(url, data).status_code == 302
    session.refresh_from_db()
    assert session.metadata == {"wandb": WANDB_KEY, "max_pairs": 40}

    # An edit that keeps the mask would overwrite the secret with it: refused.
    data["metadata"] = '{"wandb": "[REDACTED]", "max_pairs": 41}'
    refused = admin_client.post(url, data)
    assert refused.status_code == 200
    assert "Still holds [REDACTED]" in refused.content.decode()
    session.refresh_from_db()
    assert session.metadata == {"wandb": WANDB_KEY, "max_pairs": 40}
