"""The settings admin: a fitting form for each known key, JSON for the rest."""

from __future__ import annotations

import pytest
from django.urls import reverse

from storage.models import Setting
from storage.services import settings as settings_service

pytestmark = pytest.mark.django_db

ADD = reverse("admin:storage_setting_add")


def change_url(key: str) -> str:
    return reverse("admin:storage_setting_change", args=[key])


def stored(key: str):
    return settings_service.get_setting(key=key)


def form_fields(client, url: str) -> list[str]:
    return list(client.get(url).context["adminform"].form.fields)


@pytest.mark.parametrize(
    ("key", "fields"),
    [
        ("huggingface.token", ["secret"]),
        ("runpod.api_key", ["secret"]),
        ("ollama", ["enabled", "base_url", "default_model"]),
        ("proxy", ["enabled", "tor", "url"]),
        ("app.offline_mode", ["offline"]),
        ("ui.theme", ["json_value"]),
    ],
)
def test_each_known_key_gets_its_own_fields(admin_client, site_data, key, fields):
    assert form_fields(admin_client, change_url(key)) == fields


def test_ollama_form_keeps_keys_it_does_not_know(admin_client, site_data):
    settings_service.set_setting(key="ollama", value={"enabled": False, "base_url": "", "timeout": 30})
    data = {"enabled": "on", "base_url": "http://gpu-box:11434", "default_model": "llama3.1:8b"}
    assert admin_client.post(change_url("ollama"), data).status_code == 302
    assert stored("ollama") == {
        "enabled": True,
        "base_url": "http://gpu-box:11434",
        "default_model": "llama3.1:8b",
        "timeout": 30,
    }


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({"enabled": "on", "url": ""}, "An enabled proxy needs a URL, or Tor."),
        ({"url": "127.0.0.1:9050"}, "Give a URL starting with http:// or https:// or socks4://"),
        ({"url": "ftp://host"}, "Give a URL starting with http:// or https:// or socks4://"),
    ],
)
def test_proxy_form_refuses_unusable_settings(admin_client, site_data, data, error):
    response = admin_client.post(change_url("proxy"), data)
    assert response.status_code == 200
    assert error in str(response.context["adminform"].form.errors)
    assert stored("proxy") == {"enabled": False, "tor": False, "url": ""}


def test_proxy_form_saves_a_socks_url(admin_client, site_data):
    data = {"enabled": "on", "url": "socks5h://127.0.0.1:9050"}
    assert admin_client.post(change_url("proxy"), data).status_code == 302
    assert stored("proxy") == {"enabled": True, "tor": False, "url": "socks5h://127.0.0.1:9050"}


def test_offline_mode_is_a_checkbox_stored_as_a_boolean(admin_client, site_data):
    assert admin_client.post(change_url("app.offline_mode"), {"offline": "on"}).status_code == 302
    assert stored("app.offline_mode") is True
    assert admin_client.post(change_url("app.offline_mode"), {}).status_code == 302
    assert stored("app.offline_mode") is False


@pytest.mark.parametrize(
    ("text", "value"), [('"light"', "light"), ("[1, 2]", [1, 2]), ('{"a": {"b": null}}', {"a": {"b": None}})]
)
def test_other_keys_are_edited_as_json(admin_client, site_data, text, value):
    assert admin_client.post(change_url("ui.theme"), {"json_value": text}).status_code == 302
    assert stored("ui.theme") == value


def test_invalid_json_is_refused_with_where_it_broke(admin_client, site_data):
    response = admin_client.post(change_url("ui.theme"), {"json_value": '{"a": 1,\n "b": }'})
    assert response.status_code == 200
    assert "Not valid JSON" in response.context["adminform"].form.errors["json_value"][0]
    assert "(line 2, column 7)" in response.context["adminform"].form.errors["json_value"][0]
    assert stored("ui.theme") == "dark"


def test_add_page_offers_the_known_settings_not_yet_stored(admin_client, db):
    settings_service.set_setting(key="ollama", value={})
    text = admin_client.get(ADD).content.decode()
    assert f"{ADD}?key=huggingface.token" in text
    assert f"{ADD}?key=ollama" not in text


def test_adding_a_known_setting_fixes_its_key(admin_client, db):
    url = f"{ADD}?key=runpod.api_key"
    assert form_fields(admin_client, url) == ["key", "secret"]
    # A different key typed into the (disabled) field is ignored.
    response = admin_client.post(url, {"key": "something.else", "secret": "rpa_" + "N3wKey" * 4})
    assert response.status_code == 302
    assert stored("runpod.api_key") == "rpa_" + "N3wKey" * 4
    assert not Setting.objects.filter(key="something.else").exists()


def test_adding_a_secret_needs_a_value(admin_client, db):
    response = admin_client.post(f"{ADD}?key=huggingface.token", {"secret": ""})
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["secret"]
    assert not Setting.objects.exists()


def test_adding_an_unknown_key_stores_its_json(admin_client, db):
    response = admin_client.post(ADD, {"key": "ui.font_size", "json_value": "14"})
    assert response.status_code == 302
    assert stored("ui.font_size") == 14


def test_legacy_plain_text_values_can_be_edited(admin_client, db):
    Setting.objects.create(key="legacy", value="not json {")
    page = admin_client.get(change_url("legacy"))
    assert page.status_code == 200
    assert admin_client.post(change_url("legacy"), {"json_value": '"fixed"'}).status_code == 302
    assert stored("legacy") == "fixed"


def test_ollama_form_refuses_a_url_without_http(admin_client, site_data):
    response = admin_client.post(change_url("ollama"), {"base_url": "127.0.0.1:11434"})
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["base_url"] == ["Give a URL starting with http:// or https://"]
