"""Saved training configurations and the "last used" marker the desktop app keeps in app_state."""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.db.models.functions import Lower, Now

from storage.exceptions import InvalidInput
from storage.models import AppState, TrainingConfig
from storage.validation import require_json_object, require_text

LAST_USED_CONFIG_KEY = "last_used_config"
REQUIRED_HP_FIELDS = ("base_model", "epochs", "lr", "bsz", "grad_accum", "max_steps", "output_dir")


def validate_config(config: Any) -> tuple[bool, str]:
    """Check a config's structure the way the desktop app does; return (is_valid, message)."""
    if not isinstance(config, dict):
        return False, "Config is not a dictionary"
    hp = config.get("hp")
    if not isinstance(hp, dict):
        return False, "Missing or invalid 'hp' section"
    missing = [key for key in REQUIRED_HP_FIELDS if not str(hp.get(key) or "").strip()]
    if missing:
        return False, f"Missing required hp fields: {', '.join(missing)}"
    if not (hp.get("hf_dataset_id") or hp.get("json_path")):
        return True, "Note: no dataset specified (hf_dataset_id/json_path)"
    return True, "OK"


def train_target_of(config: dict) -> str | None:
    """The target a config is listed under: "" without one (as the desktop app stores it), None if meta is malformed."""
    meta = config.get("meta") or {}
    if not isinstance(meta, dict):
        return None
    target = meta.get("train_target", "")
    return target if isinstance(target, str) else str(target)


def save_training_config(*, name: str, config: dict) -> TrainingConfig:
    """Create or replace the config called `name`; `train_target` follows `config["meta"]`."""
    require_text(name, name="name")
    require_json_object(config, name="config")
    saved, _ = TrainingConfig.objects.update_or_create(
        name=name,
        defaults={"config": config, "train_target": train_target_of(config), "updated_at": Now()},
    )
    return saved


def get_training_config(*, name: str) -> dict | None:
    config = TrainingConfig.objects.filter(name=name).values_list("config", flat=True).first()
    # Text that is not JSON reads back as a str; the desktop app treats that as missing.
    return config if isinstance(config, dict) else None


def list_training_configs(*, train_target: str | None = None) -> list[str]:
    """Config names A-Z; with a target, those for it plus those with no target at all."""
    configs = TrainingConfig.objects.all()
    if train_target:
        prefix = train_target.strip().lower()
        configs = configs.annotate(target_lower=Lower("train_target")).filter(
            Q(train_target__isnull=True) | Q(train_target="") | Q(target_lower__startswith=prefix)
        )
    return list(configs.order_by("name").values_list("name", flat=True))


def delete_training_config(*, name: str) -> bool:
    deleted, _ = TrainingConfig.objects.filter(name=name).delete()
    return deleted > 0


def rename_training_config(*, old_name: str, new_name: str) -> tuple[bool, str]:
    """Rename a config; return (ok, message) as the desktop app does instead of raising."""
    try:
        require_text(new_name, name="new name")
    except InvalidInput as exc:
        return False, str(exc)
    if old_name == new_name:
        return False, f"Config '{new_name}' already exists"
    try:
        with transaction.atomic():
            if not TrainingConfig.objects.filter(name=old_name).exists():
                return False, f"Config '{old_name}' not found"
            if TrainingConfig.objects.filter(name=new_name).exists():
                return False, f"Config '{new_name}' already exists"
            TrainingConfig.objects.filter(name=old_name).update(name=new_name, updated_at=Now())
            AppState.objects.filter(key=LAST_USED_CONFIG_KEY, value=old_name).update(value=new_name)
    except IntegrityError:
        return False, f"Config '{new_name}' already exists"
    return True, "OK"


def get_last_used_config() -> str | None:
    return AppState.objects.filter(key=LAST_USED_CONFIG_KEY).values_list("value", flat=True).first()


def set_last_used_config(*, name: str) -> None:
    require_text(name, name="name")
    AppState.objects.update_or_create(key=LAST_USED_CONFIG_KEY, defaults={"value": name})
