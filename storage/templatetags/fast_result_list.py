"""`{% fast_result_list cl %}`: Django's result_list, with rows the ModelAdmin writes out itself.

Django renders every cell through generic lookups and escaping: for the pairs list that is
most of a 100-row page. A ModelAdmin that defines `row_cells(changelist, obj)` returns the
row's finished cells instead; popups and editable lists keep Django's own rendering.
"""

from __future__ import annotations

from django import template
from django.contrib.admin.templatetags import admin_list
from django.contrib.admin.templatetags.base import InclusionAdminNode

register = template.Library()


def fast_result_list(cl):
    context = admin_list.result_list(cl) if cl.is_popup or cl.formset else None
    if context is not None:
        return context
    headers = list(admin_list.result_headers(cl))
    return {
        "cl": cl,
        "result_hidden_fields": [],
        "result_headers": headers,
        "num_sorted_fields": sum(1 for h in headers if h["sortable"] and h["sorted"]),
        "results": [admin_list.ResultList(None, cl.model_admin.row_cells(cl, obj)) for obj in cl.result_list],
    }


@register.tag(name="fast_result_list")
def fast_result_list_tag(parser, token):
    return InclusionAdminNode(
        parser, token, func=fast_result_list, template_name="change_list_results.html", takes_context=False
    )
