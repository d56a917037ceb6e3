"""Saved training configs (edited as formatted JSON, checked like the desktop app does) and app state."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import Exists, OuterRef

from storage.admin.base import FineFoundryModelAdmin
from storage.admin.display import PrettyJSONField
from storage.exceptions import InvalidInput
from storage.fields import SortableTimestamp
from storage.models import AppState, TrainingConfig
from storage.services import configs


class TrainingConfigForm(forms.ModelForm):
    config = PrettyJSONField(rows=24, label="Config", help_text="JSON with an 'hp' section; checked before saving.")

    class Meta:
        model = TrainingConfig
        fields = ("name", "config")
        widgets = {"name": forms.TextInput(attrs={"class": "vTextField"})}

    def clean_config(self):
        config = self.cleaned_data.get("config")
        ok, message = configs.validate_config(config)
        if not ok:
            raise ValidationError(message)
        # A note (such as "no dataset specified") does not block saving; the admin shows it as a warning.
        self.validation_note = None if message == "OK" else message
        return config


@admin.register(TrainingConfig)
class TrainingConfigAdmin(FineFoundryModelAdmin):
    form = TrainingConfigForm
    list_display = ("name", "train_target", "base_model", "last_used", "updated")
    list_filter = ("train_target",)
    search_fields = ("name", "train_target")
    readonly_fields = ("train_target", "created_at", "updated_at")
    actions = ["set_as_last_used"]

    def get_queryset(self, request):
        last_used = AppState.objects.filter(key=configs.LAST_USED_CONFIG_KEY, value=OuterRef("name"))
        return super().get_queryset(request).annotate(is_last_used=Exists(last_used))

    @admin.display(description="base model")
    def base_model(self, config: TrainingConfig) -> str:
        hp = config.config.get("hp") if isinstance(config.config, dict) else None
        return str(hp.get("base_model") or "—") if isinstance(hp, dict) else "—"

    @admin.display(description="last used", boolean=True, ordering="-is_last_used")
    def last_used(self, config: TrainingConfig) -> bool:
        return bool(getattr(config, "is_last_used", False))

    @admin.display(description="updated", ordering=SortableTimestamp("updated_at"))
    def updated(self, config: TrainingConfig):
        return config.updated_at

    def save_model(self, request, obj, form, change):
        """Rename through the service (it carries the "last used" marker along), then save the config."""
        if change and "name" in form.changed_data:
            ok, message = configs.rename_training_config(old_name=form.initial["name"], new_name=obj.name)
            if not ok:
                raise InvalidInput(message)
        saved = configs.save_training_config(name=obj.name, config=obj.config)
        obj.pk = saved.pk
        obj.refresh_from_db()
        note = getattr(form, "validation_note", None)
        if note:
            self.message_user(request, f"{obj.name}: {note}", messages.WARNING)

    @admin.action(description="Set as the last used config", permissions=["change"])
    def set_as_last_used(self, request, queryset):
        names = list(queryset.values_list("name", flat=True)[:2])
        if len(names) != 1:
            self.message_user(request, "Select exactly one config.", messages.WARNING)
            return
        configs.set_last_used_config(name=names[0])
        self.message_user(request, f"{names[0]} is now the last used config.", messages.SUCCESS)


@admin.register(AppState)
class AppStateAdmin(FineFoundryModelAdmin):
    list_display = ("key", "value")
    search_fields = ("key",)

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        kwargs["widget"] = forms.TextInput(attrs={"class": "vTextField"})
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    def get_readonly_fields(self, request, obj=None):
        return ("key",) if obj is not None else ()
