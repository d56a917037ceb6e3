"""The training config admin: formatted JSON, the desktop app's validation, rename and "last used"."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from storage.models import TrainingConfig
from storage.services import configs

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:storage_trainingconfig_changelist")
HP = {
    "base_model": "unsloth/Qwen2.5-7B",
    "epochs": 3,
    "lr": "2e-4",
    "bsz": 2,
    "grad_accum": 4,
    "max_steps": 200,
    "output_dir": "/data/outputs",
}


def change_url(config) -> str:
    return reverse("admin:storage_trainingconfig_change", args=[config.pk])


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def test_config_is_edited_as_indented_json(admin_client, site_data):
    text = admin_client.get(change_url(site_data.config)).content.decode()
    assert "{\n  &quot;hp&quot;: {\n    &quot;base_model&quot;: &quot;unsloth/Qwen2.5-7B&quot;," in text


@pytest.mark.parametrize(
    ("config_text", "error"),
    [
        ('{"hp": {"epochs": 3,}}', "Not valid JSON: Expecting property name enclosed in double quotes (line 1"),
        ("[1, 2]", "Config is not a dictionary"),
        ('{"meta": {}}', "Missing or invalid 'hp' section"),
        (
            '{"hp": {"base_model": "m"}}',
            "Missing required hp fields: epochs, lr, bsz, grad_accum, max_steps, output_dir",
        ),
    ],
)
def test_invalid_configs_are_refused_with_the_reason(admin_client, site_data, config_text, error):
    response = admin_client.post(change_url(site_data.config), {"name": site_data.config.name, "config": config_text})
    assert response.status_code == 200
    assert error in response.context["adminform"].form.errors["config"][0]
    site_data.config.refresh_from_db()
    assert "hf_dataset_id" in site_data.config.config["hp"]


def test_a_config_without_dataset_is_saved_with_a_warning(admin_client, site_data):
    config = {"hp": HP, "meta": {"train_target": "Runpod - Pod"}}
    response = admin_client.post(
        reverse("admin:storage_trainingconfig_add"), {"name": "pod.json", "config": json.dumps(config)}, follow=True
    )
    saved = TrainingConfig.objects.get(name="pod.json")
    assert saved.config == config and saved.train_target == "Runpod - Pod"
    assert any("Note: no dataset specified" in m for m in messages_of(response))


def test_renaming_carries_the_last_used_marker_along(admin_client, site_data):
    config = site_data.config
    assert configs.get_last_used_config() == config.name
    response = admin_client.post(change_url(config), {"name": "renamed.json", "config": json.dumps(config.config)})
    assert response.status_code == 302
    assert configs.get_last_used_config() == "renamed.json"
    assert list(TrainingConfig.objects.values_list("name", flat=True)) == ["renamed.json"]


def test_renaming_onto_an_existing_name_is_refused(admin_client, site_data):
    configs.save_training_config(name="other.json", config={"hp": HP})
    response = admin_client.post(
        change_url(site_data.config), {"name": "other.json", "config": json.dumps(site_data.config.config)}
    )
    assert response.status_code == 200
    assert "already exists" in response.context["adminform"].form.errors["name"][0]


def test_set_as_last_used_needs_exactly_one_config(admin_client, site_data):
    other = configs.save_training_config(name="other.json", config={"hp": HP})
    data = {"action": "set_as_last_used", "_selected_action": [other.pk]}
    response = admin_client.post(CHANGELIST, data, follow=True)
    assert configs.get_last_used_config() == "other.json"
    assert messages_of(response) == ["other.json is now the last used config."]
    listing = response.context["cl"].result_list
    assert {c.name: c.is_last_used for c in listing} == {"local_llama.json": False, "other.json": True}

    both = {"action": "set_as_last_used", "_selected_action": [other.pk, site_data.config.pk]}
    response = admin_client.post(CHANGELIST, both, follow=True)
    assert messages_of(response) == ["Select exactly one config."]
    assert configs.get_last_used_config() == "other.json"
