"""Application settings: a fitting form per known key, JSON for the rest, and secrets never shown in full."""

from __future__ import annotations

import json

from django.contrib import admin
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.utils.html import format_html_join
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables

from storage.admin.base import FineFoundryModelAdmin
from storage.admin.display import preview
from storage.admin.setting_forms import (
    KEEP_CURRENT,
    KNOWN_SETTING_TITLES,
    setting_form_for,
)
from storage.fields import SortableTimestamp
from storage.models import Setting
from storage.redaction import is_secret_setting, redact
from storage.services import settings as settings_service

SECRET_FORM_FIELDS = ("secret", "json_value")


@admin.register(Setting)
class SettingAdmin(FineFoundryModelAdmin):
    list_display = ("key", "kind", "value_preview", "updated")
    search_fields = ("key",)  # never the value: searching it would let one probe a token
    change_form_template = "admin/storage/setting/change_form.html"

    def key_for(self, request, obj) -> str | None:
        return obj.key if obj is not None else request.GET.get("key")

    def get_form(self, request, obj=None, change=False, **kwargs):
        key = self.key_for(request, obj)
        form = setting_form_for(key)
        if obj is None and key in KNOWN_SETTING_TITLES:
            # Adding a known setting: its key is fixed, so the fields always match the key.
            form = type(form.__name__, (form,), {"fixed_key": key})
        kwargs["form"] = form
        return super().get_form(request, obj, change, **kwargs)

    def get_readonly_fields(self, request, obj=None):
        return ("key", "updated_at") if obj is not None else ()

    def get_fields(self, request, obj=None):
        form = setting_form_for(self.key_for(request, obj))
        fields = [name for name in form.base_fields if name != "key"]
        return ["key", *fields, *(("updated_at",) if obj is not None else ())]

    def get_changeform_initial_data(self, request):
        return {"key": request.GET.get("key", "")}

    @admin.display(description="kind")
    def kind(self, setting: Setting) -> str:
        return setting_form_for(setting.key).kind

    @admin.display(description="value")
    def value_preview(self, setting: Setting) -> str:
        value = settings_service.decode_setting_value(setting.value)
        if is_secret_setting(setting.key):
            return settings_service.masked_value(value) or "—"
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        # A token pasted into some other setting is still masked.
        return redact(preview(text, limit=80), secrets=settings_service.secret_values())

    @admin.display(description="updated", ordering=SortableTimestamp("updated_at"))
    def updated(self, setting: Setting):
        return setting.updated_at

    @method_decorator(sensitive_post_parameters(*SECRET_FORM_FIELDS))
    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        context = dict(extra_context or {})
        if object_id is None and not request.GET.get("key"):
            base = reverse("admin:storage_setting_add")
            context["known_settings"] = format_html_join(
                " ",
                '<a class="button" href="{}?key={}">{}</a>',
                (
                    (base, key, title)
                    for key, title in KNOWN_SETTING_TITLES.items()
                    if not Setting.objects.filter(key=key).exists()
                ),
            )
        return super().changeform_view(request, object_id, form_url, extra_context=context)

    @method_decorator(sensitive_variables())
    def save_model(self, request, obj, form, change):
        value = form.setting_value()
        if value is KEEP_CURRENT:
            return
        settings_service.set_setting(key=obj.key, value=value)
        obj.refresh_from_db()
