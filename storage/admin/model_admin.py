"""The ModelAdmin bases every FineFoundry admin uses: our stylesheet, no facet counts; a read-only variant."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.admin import helpers
from django.utils.html import format_html
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _


class FineFoundryModelAdmin(admin.ModelAdmin):
    """A ModelAdmin with FineFoundry's stylesheet and without facet counts (a COUNT per filter choice)."""

    show_facets = admin.ShowFacets.NEVER

    class Media:
        css = {"all": ("storage/admin.css",)}

    @admin.display(description=mark_safe('<input type="checkbox" id="action-toggle">'))
    def action_checkbox(self, obj):
        """Django's row checkbox, written out directly.

        The stock one renders a form widget template per row: a third of a 100-row pairs page.
        """
        label = format_html(_("Select this object for an action - {}"), obj)
        return format_html(
            '<input type="checkbox" name="{}" value="{}" class="action-select" aria-label="{}">',
            helpers.ACTION_CHECKBOX_NAME,
            obj.pk,
            label,
        )


class ReadOnlyModelAdmin(FineFoundryModelAdmin):
    """Records written by FineFoundry, not by people: one can look at them and delete them, not add or edit."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
