"""The ModelAdmin bases every FineFoundry admin uses: our stylesheet, no facet counts, only the filters a
page offers; a read-only variant.

Django's changelist applies any lookup on a local field that the query string names
(`?value__regex=^"hf_R`), which makes every list page an oracle for the secrets in its columns: the
number of rows answers a guess. Here a list page filters by what its own filters offer and nothing
else (any other parameter is a 400 "Bad Request"), searches a bounded number of words, and a system
check refuses a search field, filter or sort column on a column that can hold a secret.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.exceptions import DisallowedModelAdminLookup
from django.contrib.admin.views.main import ChangeList
from django.core import checks
from django.db.models import JSONField
from django.db.models.constants import LOOKUP_SEP
from django.utils.html import format_html
from django.utils.safestring import mark_safe
from django.utils.text import capfirst, smart_split, unescape_string_literal
from django.utils.translation import gettext as _

from storage.admin.display import pretty_json
from storage.admin.masked_json import MaskedJSONForm

# Columns that can hold a secret a desktop version wrote in plain text; every JSON column counts too.
SECRET_COLUMNS: dict[str, frozenset[str]] = {
    "storage.setting": frozenset({"value"}),
    "storage.applog": frozenset({"message", "exc_info"}),
    "auth.user": frozenset({"password"}),
}
# SQLite refuses a WHERE deeper than 1,000 terms ("Expression tree is too large"); people type a few.
MAX_SEARCH_TERMS = 20
MAX_SEARCH_CHARS = 1_000
# The name a JSON column takes in a read-only page's fieldsets (FineFoundryModelAdmin.get_fieldsets).
MASKED_JSON = "_masked"


def secret_columns(model) -> frozenset[str]:
    """The fields of `model` that can hold a secret: never filtered, searched or sorted by."""
    json_fields = {field.name for field in model._meta.get_fields() if isinstance(field, JSONField)}
    return SECRET_COLUMNS.get(model._meta.label_lower, frozenset()) | json_fields


def search_terms(search_term: str) -> list[str]:
    """The words of a search as Django's admin splits them ("quoted phrases" are one word)."""
    return [
        unescape_string_literal(bit) if bit[:1] in "\"'" and len(bit) > 1 and bit[0] == bit[-1] else bit
        for bit in smart_split(search_term)
    ]


class OfferedFiltersChangeList(ChangeList):
    """A changelist that applies only the parameters its list filters (and date hierarchy) consumed."""

    def get_filters(self, request):
        filter_specs, has_filters, remaining, may_have_duplicates, has_active_filters = super().get_filters(request)
        hierarchy = {f"{self.date_hierarchy}__gte", f"{self.date_hierarchy}__lt"} if self.date_hierarchy else set()
        unoffered = sorted(set(remaining) - hierarchy)
        if unoffered:
            raise DisallowedModelAdminLookup(f"Filtering by {', '.join(unoffered)} is not offered on this page")
        return filter_specs, has_filters, remaining, may_have_duplicates, has_active_filters


class OfferedFiltersOnly:
    """For any ModelAdmin (Django's UserAdmin too): filters only as its page offers, bounded searches."""

    def get_changelist(self, request, **kwargs):
        return OfferedFiltersChangeList

    def offered_filter_roots(self, request) -> set[str]:
        """Parameter names and field paths of this page's own filters."""
        roots = {self.date_hierarchy} if self.date_hierarchy else set()
        for item in self.get_list_filter(request):
            if isinstance(item, type) and issubclass(item, admin.SimpleListFilter):
                roots.add(item.parameter_name)
            else:
                roots.add(item[0] if isinstance(item, (list, tuple)) else item)
        return roots

    def lookup_allowed(self, lookup, value, request=None) -> bool:
        """Only parameters rooted at one of the page's filters; the changelist then refuses what they left."""
        if lookup.split(LOOKUP_SEP, 1)[0] in secret_columns(self.model):
            return False
        roots = self.offered_filter_roots(request)
        return lookup in roots or any(lookup.startswith(f"{root}{LOOKUP_SEP}") for root in roots)

    def limited_search_term(self, request, search_term: str) -> str:
        """The search as typed, cut to MAX_SEARCH_TERMS words and MAX_SEARCH_CHARS characters, with a warning."""
        terms = search_terms(search_term)
        if len(terms) <= MAX_SEARCH_TERMS and len(search_term) <= MAX_SEARCH_CHARS:
            return search_term
        kept = " ".join(terms[:MAX_SEARCH_TERMS])[:MAX_SEARCH_CHARS]
        if request is not None and hasattr(request, "_messages"):
            self.message_user(
                request,
                f"Search uses at most {MAX_SEARCH_TERMS} words and {MAX_SEARCH_CHARS:,} characters; "
                f"searched for the first ones only ({len(terms):,} words, {len(search_term):,} characters given).",
                messages.WARNING,
            )
        return kept

    def get_search_results(self, request, queryset, search_term):
        return super().get_search_results(request, queryset, self.limited_search_term(request, search_term))

    def check(self, **kwargs):
        return [*super().check(**kwargs), *self._check_secret_columns()]

    def _check_secret_columns(self) -> list[checks.CheckMessage]:
        secret = secret_columns(self.model)
        used = {
            "search_fields": [field.lstrip("^=@") for field in self.search_fields],
            "list_filter": [item[0] if isinstance(item, (list, tuple)) else item for item in self.list_filter],
            "sortable_by": list(self.sortable_by or ()),
            "date_hierarchy": [self.date_hierarchy] if self.date_hierarchy else [],
            "list_display": [
                getattr(getattr(self, name, None), "admin_order_field", name) if isinstance(name, str) else None
                for name in self.list_display
            ],
        }
        return [
            checks.Error(
                f"{type(self).__name__}.{option} uses {name!r}, a column that can hold a secret: "
                "every filter, search or sort on it answers guesses of that secret.",
                obj=type(self),
                id="storage.E001",
            )
            for option, names in used.items()
            for name in names
            if isinstance(name, str) and name.split(LOOKUP_SEP, 1)[0] in secret
        ]


class FineFoundryModelAdmin(OfferedFiltersOnly, admin.ModelAdmin):
    """A ModelAdmin with FineFoundry's stylesheet, without facet counts, filtering only as its page offers."""

    show_facets = admin.ShowFacets.NEVER

    class Media:
        css = {"all": ("storage/admin.css",)}

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change, **kwargs)
        # JSON columns can hold a secret a desktop version wrote: shown masked, kept on save.
        return type(form.__name__, (MaskedJSONForm, form), {})

    # Fields a read-only page shows through another display (a method of the admin), by field name.
    read_only_displays: dict[str, str] = {}

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if obj is None or self.has_change_permission(request, obj):
            return fieldsets
        # Read-only, Django would show a column as its raw text, secrets and all: JSON columns are
        # shown masked, and an admin's read_only_displays take the place of their fields.
        json_columns = {f.name for f in self.model._meta.concrete_fields if isinstance(f, JSONField)}

        def shown(field):
            if isinstance(field, (list, tuple)):
                return tuple(shown(each) for each in field)
            if field in self.read_only_displays:
                return self.read_only_displays[field]
            return field + MASKED_JSON if field in json_columns else field

        return [(name, {**options, "fields": shown(options["fields"])}) for name, options in fieldsets]

    def __getattr__(self, name: str):
        """`<json column>_masked`: the column shown read-only with its secrets masked (see get_fieldsets)."""
        if not name.endswith(MASKED_JSON):
            raise AttributeError(name)
        field = self.model._meta.get_field(name.removesuffix(MASKED_JSON))

        def masked(obj):
            return pretty_json(getattr(obj, field.name))

        masked.short_description = capfirst(field.verbose_name)
        return masked

    @admin.display(description=mark_safe('<input type="checkbox" id="action-toggle">'))
    def action_checkbox(self, obj):
        """Django's row checkbox, written out directly.

        The stock one renders a form widget template per row: a third of a 100-row pairs page.
        """
        return row_checkbox(obj.pk, format_html(_("Select this object for an action - {}"), obj))


# Django's row checkbox (django/forms/widgets/input.html with the admin's attrs), byte for byte: the
# changelist's JavaScript finds rows by it. Placeholders: name, pk, aria-label. Also in pairs.ROW_HTML.
CHECKBOX_HTML = '<input type="checkbox" name="{}" value="{}" class="action-select" aria-label="{}">'


def row_checkbox(pk, label: str) -> str:
    """A changelist row's action checkbox labelled `label` (escaped here unless already safe)."""
    return format_html(CHECKBOX_HTML, helpers.ACTION_CHECKBOX_NAME, pk, label)


class ReadOnlyModelAdmin(FineFoundryModelAdmin):
    """Records written by FineFoundry, not by people: one can look at them and delete them, not add or edit."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
