"""db.training_configs as FineFoundry's helpers/training_config.py uses it (all through `from db import ...`)."""

from __future__ import annotations

import pytest

from storage.models import AppState, TrainingConfig

HP = {"base_model": "m", "epochs": 1, "lr": "2e-4", "bsz": 2, "grad_accum": 4, "max_steps": 10, "output_dir": "/o"}


def config(target=None, **hp):
    result = {"hp": {**HP, **hp}}
    if target is not None:
        result["meta"] = {"train_target": target}
    return result


def test_save_get_replace_and_delete(ff):
    assert ff.get_training_config("missing") is None
    ff.save_training_config("a", config("Local"))
    assert ff.get_training_config("a") == config("Local")
    ff.save_training_config("a", config("Runpod - Pod"))
    assert ff.get_training_config("a") == config("Runpod - Pod")
    assert TrainingConfig.objects.get(name="a").train_target == "Runpod - Pod"
    assert ff.delete_training_config("a") is True and ff.delete_training_config("a") is False


def test_a_config_without_a_target_is_stored_with_an_empty_one_as_upstream(ff):
    ff.save_training_config("plain", {"hp": HP})
    assert TrainingConfig.objects.get(name="plain").train_target == ""


def test_list_is_sorted_and_a_target_also_lists_configs_without_one(ff):
    ff.save_training_config("b-local", config("Local"))
    ff.save_training_config("a-pod", config("Runpod - Pod"))
    ff.save_training_config("c-none", {"hp": HP})
    assert ff.list_training_configs() == ["a-pod", "b-local", "c-none"]
    assert ff.list_training_configs("local") == ["b-local", "c-none"]
    assert ff.training_configs.list_training_configs(train_target="  RUNPOD ") == ["a-pod", "c-none"]


def test_rename_answers_like_the_desktop_app(ff):
    ff.save_training_config("old", config())
    ff.save_training_config("taken", config())
    assert ff.rename_training_config("missing", "x") == (False, "Config 'missing' not found")
    assert ff.rename_training_config("old", "taken") == (False, "Config 'taken' already exists")
    assert ff.rename_training_config("old", "new") == (True, "OK")
    assert ff.list_training_configs() == ["new", "taken"]


def test_last_used_config(ff):
    assert ff.get_last_used_config() is None
    ff.set_last_used_config("a")
    ff.set_last_used_config("b")
    assert ff.get_last_used_config() == "b"
    assert AppState.objects.get(key="last_used_config").value == "b"


@pytest.mark.parametrize(
    ("value", "answer"),
    [
        ("not a dict", (False, "Config is not a dictionary")),
        ({}, (False, "Missing or invalid 'hp' section")),
        ({"hp": {**HP, "lr": " ", "epochs": None}}, (False, "Missing required hp fields: epochs, lr")),
        (config(), (True, "Note: no dataset specified (hf_dataset_id/json_path)")),
        (config(hf_dataset_id="org/set"), (True, "OK")),
        (config(json_path="/d.json"), (True, "OK")),
    ],
)
def test_validate_config(ff, value, answer):
    assert ff.validate_config(value) == answer
