"""The ModelAdmin bases every FineFoundry admin uses: our stylesheet, no facet counts; a read-only variant."""

from __future__ import annotations

from django.contrib import admin


class FineFoundryModelAdmin(admin.ModelAdmin):
    """A ModelAdmin with FineFoundry's stylesheet and without facet counts (a COUNT per filter choice)."""

    show_facets = admin.ShowFacets.NEVER

    class Media:
        css = {"all": ("storage/admin.css",)}


class ReadOnlyModelAdmin(FineFoundryModelAdmin):
    """Records written by FineFoundry, not by people: one can look at them and delete them, not add or edit."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
