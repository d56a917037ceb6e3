"""storage.api settings and training-config functions, as FineFoundry code calls them."""

from __future__ import annotations

import pytest
from django.db import connection

from storage import api
from storage.exceptions import InvalidInput

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "value",
    ["hf_abc", 42, 3.5, True, None, ["a", "ü"], {"enabled": True, "nested": {"x": [1, 2]}}],
)
def test_setting_round_trips_json_values(value):
    api.set_setting("some.key", value)
    assert api.get_setting("some.key") == value


def test_get_setting_returns_default_for_missing_key():
    assert api.get_setting("missing", default="fallback") == "fallback"


def test_stored_non_json_value_comes_back_raw():
    with connection.cursor() as cursor:
        cursor.execute("INSERT INTO settings (key, value) VALUES ('legacy', 'not json {')")
    assert api.get_setting("legacy") == "not json {"
    assert api.get_all_settings() == {"legacy": "not json {"}


def test_set_setting_replaces_and_delete_reports_whether_it_existed():
    api.set_setting("ui.theme", "dark")
    api.set_setting("ui.theme", "light")
    assert api.get_all_settings() == {"ui.theme": "light"}
    assert api.delete_setting("ui.theme") is True
    assert api.delete_setting("ui.theme") is False


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        (None, 1, "key must be a string"),
        ("", 1, "key must not be empty"),
        ("k", object(), "not JSON-serialisable"),
    ],
)
def test_set_setting_rejects_bad_input_and_writes_nothing(key, value, message):
    with pytest.raises(ValueError, match=message):
        api.set_setting(key, value)
    assert api.get_all_settings() == {}


def test_setting_str_never_shows_the_value():
    from storage.models import Setting

    api.set_setting("huggingface.token", "hf_supersecretvalue123")
    assert "hf_" not in str(Setting.objects.get())


CONFIG = {
    "hp": {
        "base_model": "unsloth/Qwen2.5-7B",
        "epochs": 3,
        "lr": "2e-4",
        "bsz": 2,
        "grad_accum": 4,
        "max_steps": 200,
        "output_dir": "/data/outputs",
        "hf_dataset_id": "user/ds",
    },
    "meta": {"train_target": "Runpod - Pod"},
}


def test_training_config_save_get_list_filter():
    api.save_training_config("pod.json", CONFIG)
    api.save_training_config("local.json", {**CONFIG, "meta": {"train_target": "Local"}})
    api.save_training_config("any.json", {"hp": {}})
    assert api.get_training_config("pod.json") == CONFIG
    assert api.list_training_configs() == ["any.json", "local.json", "pod.json"]
    # Configs without a target are offered for every target, as in the desktop app.
    assert api.list_training_configs(train_target="runpod") == ["any.json", "pod.json"]
    assert api.get_training_config("missing.json") is None


def test_save_training_config_replaces_existing():
    api.save_training_config("a.json", CONFIG)
    api.save_training_config("a.json", {"hp": {"epochs": 1}})
    assert api.get_training_config("a.json") == {"hp": {"epochs": 1}}


def test_rename_training_config_returns_ok_and_follows_last_used():
    api.save_training_config("a.json", CONFIG)
    api.save_training_config("b.json", CONFIG)
    api.set_last_used_config("a.json")
    assert api.rename_training_config("missing", "x") == (False, "Config 'missing' not found")
    assert api.rename_training_config("a.json", "b.json") == (False, "Config 'b.json' already exists")
    assert api.rename_training_config("a.json", "c.json") == (True, "OK")
    assert api.list_training_configs() == ["b.json", "c.json"]
    assert api.get_last_used_config() == "c.json"


def test_delete_training_config():
    api.save_training_config("a.json", CONFIG)
    assert api.delete_training_config("a.json") is True
    assert api.delete_training_config("a.json") is False


def test_last_used_config_round_trip():
    assert api.get_last_used_config() is None
    api.set_last_used_config("x.json")
    assert api.get_last_used_config() == "x.json"


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        (CONFIG, (True, "OK")),
        ([], (False, "Config is not a dictionary")),
        ({}, (False, "Missing or invalid 'hp' section")),
        (
            {"hp": {"base_model": "m"}},
            (False, "Missing required hp fields: epochs, lr, bsz, grad_accum, max_steps, output_dir"),
        ),
        (
            {"hp": {k: v for k, v in CONFIG["hp"].items() if k != "hf_dataset_id"}},
            (True, "Note: no dataset specified (hf_dataset_id/json_path)"),
        ),
    ],
)
def test_validate_config(config, expected):
    assert api.validate_config(config) == expected


@pytest.mark.parametrize(("name", "config"), [("", CONFIG), (None, CONFIG), ("x", "not a dict"), ("x", {"f": {1, 2}})])
def test_save_training_config_rejects_bad_input(name, config):
    with pytest.raises(InvalidInput):
        api.save_training_config(name, config)
    assert api.list_training_configs() == []


def test_db_path_other_than_the_configured_database_is_refused(tmp_path):
    with pytest.raises(ValueError, match="configured database"):
        api.get_setting("x", db_path=str(tmp_path / "other.db"))
