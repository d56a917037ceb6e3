"""No admin list page answers guesses of a secret: filters, searches and sorting give nothing away.

Table-driven: every model admin, every concrete field, every lookup Django has registered for it
(and JSON key paths), a right and a wrong guess of a secret written the way the desktop app writes
it, as a view-only staff user and as a superuser. The two answers must be identical.
"""

from __future__ import annotations

import logging
import re

import pytest
from django.contrib import admin
from django.contrib.auth.models import Permission
from django.db import connection
from django.db.models import JSONField
from django.urls import reverse

from storage.models import AppLog, ScrapedPair, Setting

pytestmark = pytest.mark.django_db

# A RunPod key without its prefix, stored as plain text (not JSON) like an old desktop version.
SECRET = "Q7VXNZK2R8PJ4WMH9TBC"
RIGHT, WRONG = SECRET[:6], "A1B2C3"
ROW_RE = re.compile(r'class="action-select"[^>]*value="([^"]*)"|value="([^"]*)"[^>]*class="action-select"')
COUNT_RE = re.compile(r'<p class="paginator">(.*?)</p>', re.S)


def write_like_the_desktop_app(site_data) -> None:
    """The secret in every column that can hold one, written with plain SQL."""
    run = site_data.runs["completed"]
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO settings (key, value) VALUES ('runpod.api_key', %s) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            [SECRET],
        )
        cursor.execute("INSERT INTO settings (key, value) VALUES ('wandb.api_key', %s)", [f'"{SECRET}"'])
        cursor.execute(
            "INSERT INTO app_logs (timestamp, level, logger, message, exc_info) VALUES "
            "(CURRENT_TIMESTAMP, 'ERROR', 'finefoundry.runpod', %s, %s)",
            [f"pod start failed, key {SECRET}", f"Traceback\nAuthError: {SECRET}"],
        )
        cursor.execute(
            "UPDATE training_runs SET logs_json = %s, metadata_json = %s, hp_json = %s WHERE id = %s",
            [f'["using key {SECRET}"]', f'{{"token": "{SECRET}"}}', f'{{"api_key": "{SECRET}"}}', run.pk],
        )
        cursor.execute(
            "UPDATE training_configs SET config_json = %s WHERE id = %s",
            [f'{{"hp": {{"runpod_key": "{SECRET}"}}}}', site_data.config.pk],
        )


def guesses(field, lookup: str) -> tuple[str, str]:
    """A right and a wrong guess shaped for the lookup."""
    if lookup in {"regex", "iregex"}:
        return f'^"?{RIGHT}', f'^"?{WRONG}'
    if lookup in {"contains", "icontains", "startswith", "istartswith", "exact", "iexact"}:
        return RIGHT, WRONG
    if lookup in {"endswith", "iendswith"}:
        return SECRET[-6:], WRONG
    if lookup in {"gt", "gte"}:
        return SECRET[:3], "ZZZ"
    if lookup in {"lt", "lte"}:
        return SECRET[:3] + "~", "0"
    if lookup == "range":
        return f"{RIGHT},{RIGHT}~", f"{WRONG},{WRONG}~"
    if lookup == "in":
        return SECRET, WRONG
    if lookup in {"has_key", "has_keys", "has_any_keys"}:
        return "token", "nothing"
    if lookup == "contained_by":
        return f'{{"token": "{SECRET}"}}', '{"token": "x"}'
    # Lookups that take no text (isnull, year, ...): still a guess, so a refusal must not depend on it.
    return RIGHT, WRONG


def parameters(model) -> list[tuple[str, str, str]]:
    """(parameter, right value, wrong value) for every lookup on every concrete field of `model`."""
    cases = []
    for field in model._meta.get_fields():
        if not getattr(field, "concrete", False) or field.many_to_many:
            continue
        for lookup in sorted(field.get_lookups()):
            cases.append((f"{field.name}__{lookup}", *guesses(field, lookup)))
        cases.append((field.name, RIGHT, WRONG))
        if isinstance(field, JSONField):
            # Key paths into the JSON document.
            for path in ("token", "hp__runpod_key"):
                for lookup in ("startswith", "regex"):
                    cases.append((f"{field.name}__{path}__{lookup}", *guesses(field, lookup)))
    return cases


def answer(response) -> tuple:
    """What a guess learns: the status, where a redirect goes, the count line and the rows shown."""
    body = response.content.decode(errors="replace") if response.status_code == 200 else ""
    rows = sorted(a or b for a, b in ROW_RE.findall(body))
    count = COUNT_RE.search(body)
    location = response.get("Location", "").split("?")[0]
    return response.status_code, location, re.sub(r"<[^>]+>", "", count.group(1)).split() if count else None, rows


def changelists():
    return [
        (model, reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist"))
        for model in admin.site._registry
    ]


@pytest.fixture
def quiet_refusals():
    """Each refused lookup is logged with a traceback by django.security: thousands here."""
    loggers = [logging.getLogger(name) for name in ("django.security.DisallowedModelAdminLookup", "django.request")]
    for each in loggers:
        each.disabled = True
    yield
    for each in loggers:
        each.disabled = False


@pytest.fixture
def viewer(client, django_user_model):
    user = django_user_model.objects.create_user("viewer", password="pw", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__startswith="view_"))
    client.force_login(user)
    return client


@pytest.mark.reliability
@pytest.mark.usefixtures("quiet_refusals")
@pytest.mark.parametrize("who", ["viewer", "admin_client"])
def test_no_lookup_on_any_field_of_any_admin_tells_a_right_guess_from_a_wrong_one(request, site_data, who):
    write_like_the_desktop_app(site_data)
    client = request.getfixturevalue(who)
    differing, checked = [], 0
    for model, url in changelists():
        # A filter the page offers, so the walk also covers guesses next to a legitimate filter.
        for parameter, right, wrong in parameters(model):
            answers = [answer(client.get(url, {parameter: value})) for value in (right, wrong)]
            checked += 1
            if answers[0] != answers[1]:
                differing.append((url, parameter, answers))
    assert checked > 1000
    assert differing == [], "\n".join(map(str, differing))


@pytest.mark.usefixtures("quiet_refusals")
@pytest.mark.parametrize("who", ["viewer", "admin_client"])
def test_search_and_sorting_give_nothing_away_either(request, site_data, who):
    write_like_the_desktop_app(site_data)
    client = request.getfixturevalue(who)
    for model, url in changelists():
        model_admin = admin.site._registry[model]
        for q in ((RIGHT, WRONG), (SECRET, "Q7VXNZK2R8PJ4WMH9TBD"), (f'"key {RIGHT}"', f'"key {WRONG}"')):
            answers = [answer(client.get(url, {"q": value})) for value in q]
            assert answers[0] == answers[1], (url, q)
        # Sorting by any column, both ways, with a search that a right guess would narrow.
        for index in range(1, len(model_admin.list_display) + 1):
            for order in (str(index), f"-{index}"):
                answers = [answer(client.get(url, {"o": order, "q": value})) for value in (RIGHT, WRONG)]
                assert answers[0] == answers[1], (url, order)


def test_the_token_regex_oracle_of_the_issue_is_refused(admin_client, site_data):
    url = reverse("admin:storage_setting_changelist")
    for guess in (site_data.hf_token[:5], "hf_X"):
        response = admin_client.get(url, {"key": "huggingface.token", "value__regex": f'^"{guess}'})
        assert response.status_code == 400
    logs = reverse("admin:storage_applog_changelist")
    assert admin_client.get(logs, {"message__regex": "^pod"}).status_code == 400
    assert admin_client.get(logs, {"exc_info__icontains": "Auth"}).status_code == 400


def test_a_plain_text_secret_in_a_log_message_is_not_searchable(admin_client, site_data):
    write_like_the_desktop_app(site_data)
    logs = reverse("admin:storage_applog_changelist")
    record = AppLog.objects.get(logger="finefoundry.runpod")
    # Its own words do not find it either: a search that finds it for "pod" would for "pod Q7V" too.
    for q in (RIGHT, "pod start", SECRET):
        assert str(record.pk) not in answer(admin_client.get(logs, {"q": q}))[3]
    # Records without a secret are found by message and by logger.
    assert answer(admin_client.get(logs, {"q": "CUDA out"}))[3] == [str(site_data.error_log.pk)]
    assert str(record.pk) in answer(admin_client.get(logs, {"q": "finefoundry.runpod"}))[3]


def test_filters_the_pages_offer_still_work(admin_client, site_data):
    """The allowlist refuses what a page does not offer, not what it does."""

    def rows(name: str, params: dict) -> list[str]:
        response = admin_client.get(reverse(f"admin:storage_{name}_changelist"), params)
        assert response.status_code == 200, (name, params)
        return answer(response)[3]

    assert rows("applog", {"level": "ERROR"}) == [str(site_data.error_log.pk)]
    assert len(rows("applog", {"level": "WARNING+"})) == 2
    assert len(rows("applog", {"timestamp__gte": "2024-11-30", "timestamp__lt": "2024-12-02"})) == 1
    assert rows("trainingrun", {"status__exact": "failed"}) == [str(site_data.runs["failed"].pk)]
    assert len(rows("scrapesession", {"source": "reddit"})) == 1
    assert len(rows("scrapedpair", {"session__id__exact": site_data.chan.pk})) == 25
    assert len(rows("scrapedpair", {"input_length": "short", "output_length": "short", "has_metadata": "no"})) == 65
    assert rows("scrapedpair", {"domain": "example.org"}) == []
    assert len(rows("evaluationrun", {"benchmark": "hellaswag"})) == 1
    assert rows("trainingconfig", {"train_target": "Local"}) == [str(site_data.config.pk)]
    # Related lookups Django's own filters do not offer are refused, as are unknown fields.
    for name, params in (
        ("scrapedpair", {"session__source": "reddit"}),
        ("scrapedpair", {"input_text__startswith": "question"}),
        ("scrapedpair", {"source_url__contains": "token"}),
        ("scrapedpair", {"domain__contains": "x"}),
        ("trainingrun", {"status": "failed"}),
        ("evaluationrun", {"training_run__name__startswith": "qwen"}),
        ("setting", {"nonexistent": "1"}),
    ):
        response = admin_client.get(reverse(f"admin:storage_{name}_changelist"), params)
        assert response.status_code == 400, (name, params)


@pytest.mark.parametrize("name", ["scrapesession", "applog", "setting", "trainingrun", "scrapedpair"])
def test_a_search_of_a_thousand_words_gets_an_answer_not_a_500(admin_client, site_data, name):
    words = " ".join(f"w{i}" for i in range(1200))
    response = admin_client.get(reverse(f"admin:storage_{name}_changelist"), {"q": words})
    assert response.status_code == 200
    assert "Search uses at most 20 words" in response.content.decode()
    long = admin_client.get(reverse(f"admin:storage_{name}_changelist"), {"q": "x" * 60_000})
    assert long.status_code == 200


@pytest.mark.parametrize("value", [str(2**63), str(2**64 + 5), str(-(2**63) - 1), "9" * 40])
def test_a_session_id_past_64_bits_lists_no_pairs(admin_client, site_data, value):
    response = admin_client.get(reverse("admin:storage_scrapedpair_changelist"), {"session__id__exact": value})
    assert response.status_code == 200
    assert answer(response)[3] == []
    assert ScrapedPair.objects.count() == 65


def test_a_filter_or_search_on_a_secret_column_fails_the_system_check():
    from storage.admin.base import FineFoundryModelAdmin

    class LeakySettingAdmin(FineFoundryModelAdmin):
        search_fields = ("value",)
        list_filter = ("value",)

    errors = LeakySettingAdmin(Setting, admin.site).check()
    assert {error.id for error in errors} == {"storage.E001"}
    assert len([e for e in errors if e.id == "storage.E001"]) == 2
