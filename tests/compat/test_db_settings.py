"""db.settings as FineFoundry's helpers/settings.py and settings_ollama.py use it."""

from __future__ import annotations

import math

import pytest

from storage.models import Setting

VALUES = [
    "test_value",
    42,
    3.14,
    True,
    None,
    "",
    [1, 2, 3],
    {"level1": {"level2": {"value": 42, "list": [1, 2, 3]}}},
    'String with "quotes" and\nnewlines',
    "日本語の値",
    "x" * 100_000,
]


@pytest.mark.parametrize("value", VALUES, ids=range(len(VALUES)))
def test_values_come_back_as_set(ff, value):
    ff.settings.set_setting("section.sub.key", value)
    assert ff.settings.get_setting("section.sub.key") == value


def test_nan_is_stored_and_read_back(ff):
    ff.settings.set_setting("training.last_loss", float("nan"))
    assert math.isnan(ff.settings.get_setting("training.last_loss"))
    assert Setting.objects.get(key="training.last_loss").value == "NaN"  # Python's json text, as the desktop app writes


def test_missing_key_gives_the_default_and_positional_default(ff):
    assert ff.settings.get_setting("missing") is None
    assert ff.settings.get_setting("missing", "fallback") == "fallback"
    assert ff.settings.get_setting("missing", default=False) is False


def test_get_all_update_and_delete(ff):
    assert ff.settings.get_all_settings() == {}
    ff.settings.set_setting("key1", "value1")
    ff.settings.set_setting("key2", 42)
    ff.settings.set_setting("key1", "updated")
    assert ff.settings.get_all_settings() == {"key1": "updated", "key2": 42}
    assert ff.settings.delete_setting("key1") is True
    assert ff.settings.delete_setting("key1") is False
    assert ff.settings.get_setting("key1") is None


@pytest.mark.parametrize(
    ("getter", "setter", "key"),
    [
        ("get_hf_token", "set_hf_token", "huggingface.token"),
        ("get_runpod_api_key", "set_runpod_api_key", "runpod.api_key"),
    ],
)
def test_tokens_are_stripped_and_empty_when_unset(ff, getter, setter, key):
    get, put = getattr(ff.settings, getter), getattr(ff.settings, setter)
    assert get() == ""
    put("  tok_0123456789abcdef \n")
    assert get() == "tok_0123456789abcdef"
    assert ff.settings.get_setting(key) == "tok_0123456789abcdef"  # the key FineFoundry's own code reads
    ff.settings.set_setting(key, None)
    assert get() == ""


@pytest.mark.parametrize(
    ("getter", "setter", "key", "config"),
    [
        ("get_ollama_config", "set_ollama_config", "ollama", {"enabled": True, "base_url": "http://127.0.0.1:11434"}),
        ("get_proxy_config", "set_proxy_config", "proxy", {"http": "http://proxy:8080", "https": "https://proxy:8080"}),
    ],
)
def test_config_sections_round_trip_and_are_empty_dicts_when_unset(ff, getter, setter, key, config):
    get, put = getattr(ff.settings, getter), getattr(ff.settings, setter)
    assert get() == {}
    put(config)
    assert get() == config
    assert ff.settings.get_setting(key) == config


def test_db_path_of_the_configured_database_is_accepted_and_another_refused(ff, settings, tmp_path):
    ff.settings.set_setting("k", 1, db_path=str(settings.FINEFOUNDRY_DB))
    assert ff.settings.get_setting("k", None, str(settings.FINEFOUNDRY_DB)) == 1
    with pytest.raises(ValueError, match="FINEFOUNDRY_DB"):
        ff.settings.get_setting("k", db_path=str(tmp_path / "other.db"))


def test_a_token_that_is_not_text_is_refused(ff):
    with pytest.raises(ValueError, match="must be a string"):
        ff.settings.set_hf_token(None)
    assert ff.settings.get_all_settings() == {}
