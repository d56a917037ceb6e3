"""One form per kind of setting: secrets, Ollama, proxy, offline mode, and JSON for any other key.

Every form's `setting_value()` returns what to store (or KEEP_CURRENT). No form field is named
like the model's `value` column, so Django never copies raw input into it.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from storage.admin.display import PrettyJSONField
from storage.models import Setting
from storage.redaction import is_secret_setting
from storage.services.settings import decode_setting_value, masked_value

KEEP_CURRENT = object()
PROXY_SCHEMES = ("http", "https", "socks4", "socks4a", "socks5", "socks5h")


class SettingForm(forms.ModelForm):
    """The key; subclasses add the fields for the value."""

    kind = "JSON"
    fixed_key: str | None = None

    class Meta:
        model = Setting
        fields = ("key",)
        widgets = {"key": forms.TextInput(attrs={"class": "vTextField"})}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.fixed_key and "key" in self.fields:
            self.fields["key"].disabled = True
            self.fields["key"].initial = self.fixed_key
        stored = self.instance.value if self.instance.pk and not self.instance._state.adding else None
        self.current = decode_setting_value(stored) if stored is not None else None
        if self.current is not None:
            self.initial.update(self.initial_from(self.current))

    def initial_from(self, current: Any) -> dict[str, Any]:
        return {}

    def setting_value(self) -> Any:
        raise NotImplementedError


class SecretSettingForm(SettingForm):
    kind = "secret"

    secret = forms.CharField(
        label="Value",
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"class": "vTextField", "autocomplete": "new-password"}),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.current:
            self.fields[
                "secret"
            ].help_text = (
                f"Stored: {masked_value(self.current)}. Leave blank to keep it; type a new value to replace it."
            )
        else:
            self.fields["secret"].required = True

    def setting_value(self) -> Any:
        return self.cleaned_data["secret"] or KEEP_CURRENT


def check_url(url: str, schemes: tuple[str, ...]) -> str:
    """Return `url` if it is empty or starts with one of `schemes` and '://'; else raise saying which are allowed."""
    scheme, separator, rest = url.partition("://")
    if url and not (separator and rest and scheme.lower() in schemes):
        raise ValidationError(f"Give a URL starting with {' or '.join(s + '://' for s in schemes)}")
    return url


class ObjectSettingForm(SettingForm):
    """A setting whose value is a JSON object with one form field per key in `value_keys`."""

    value_keys: tuple[str, ...] = ()

    def initial_from(self, current: Any) -> dict[str, Any]:
        current = current if isinstance(current, dict) else {}
        return {key: current.get(key) for key in self.value_keys}

    def setting_value(self) -> Any:
        # Keys FineFoundry may add later are kept as they are.
        value = dict(self.current) if isinstance(self.current, dict) else {}
        value.update({key: self.cleaned_data[key] for key in self.value_keys})
        return value


class OllamaSettingForm(ObjectSettingForm):
    kind = "Ollama"
    value_keys = ("enabled", "base_url", "default_model")

    enabled = forms.BooleanField(required=False, label="Use a local Ollama server")
    # Not a URLField: that refuses host names without a dot, such as http://ollama:11434 in Docker.
    base_url = forms.CharField(
        required=False,
        label="Base URL",
        help_text="For example http://127.0.0.1:11434",
        widget=forms.TextInput(attrs={"class": "vTextField"}),
    )
    default_model = forms.CharField(
        required=False, label="Default model", widget=forms.TextInput(attrs={"class": "vTextField"})
    )

    def clean_base_url(self) -> str:
        return check_url(self.cleaned_data["base_url"], ("http", "https"))


class ProxySettingForm(ObjectSettingForm):
    kind = "proxy"
    value_keys = ("enabled", "tor", "url")

    enabled = forms.BooleanField(required=False, label="Use a proxy for scraping")
    tor = forms.BooleanField(required=False, label="Route through Tor")
    url = forms.CharField(
        required=False,
        label="Proxy URL",
        help_text="For example socks5h://127.0.0.1:9050 or http://proxy.example:8080",
        widget=forms.TextInput(attrs={"class": "vTextField"}),
    )

    def clean_url(self) -> str:
        return check_url(self.cleaned_data["url"], PROXY_SCHEMES)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if cleaned.get("enabled") and not cleaned.get("tor") and not cleaned.get("url"):
            raise ValidationError("An enabled proxy needs a URL, or Tor.")
        return cleaned


class OfflineModeSettingForm(SettingForm):
    kind = "switch"

    offline = forms.BooleanField(required=False, label="Offline mode (no network access from FineFoundry)")

    def initial_from(self, current: Any) -> dict[str, Any]:
        return {"offline": current is True or str(current).lower() in ("true", "1")}

    def setting_value(self) -> Any:
        return self.cleaned_data["offline"]


class JSONSettingForm(SettingForm):
    kind = "JSON"

    # Not required: an empty value is JSON null, which FineFoundry reads as "not set".
    json_value = PrettyJSONField(
        label="Value (JSON)", required=False, rows=8, help_text='Any JSON: "text", 42, true, [1, 2], {...}'
    )

    def initial_from(self, current: Any) -> dict[str, Any]:
        return {"json_value": current}

    def setting_value(self) -> Any:
        return self.cleaned_data["json_value"]


KNOWN_SETTING_FORMS: dict[str, type[SettingForm]] = {
    "huggingface.token": SecretSettingForm,
    "runpod.api_key": SecretSettingForm,
    "ollama": OllamaSettingForm,
    "proxy": ProxySettingForm,
    "app.offline_mode": OfflineModeSettingForm,
}
KNOWN_SETTING_TITLES = {
    "huggingface.token": "Hugging Face token",
    "runpod.api_key": "RunPod API key",
    "ollama": "Ollama",
    "proxy": "Proxy",
    "app.offline_mode": "Offline mode",
}


def setting_form_for(key: str | None) -> type[SettingForm]:
    if key in KNOWN_SETTING_FORMS:
        return KNOWN_SETTING_FORMS[key]
    return SecretSettingForm if is_secret_setting(key) else JSONSettingForm
