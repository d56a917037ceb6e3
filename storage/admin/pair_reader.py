"""The reader: one pair at a time, full texts, next and previous within the list's filter and search, edit in place.

The list's query string travels along (`…/42/read/?q=lora&session__id__exact=3`) and the neighbours come
from the very queryset the list shows (the admin's ChangeList, with its allowlisted filters and search),
walked by id: the list is newest first, so "next" is the next lower id.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseBadRequest, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse

from storage.admin.display import pretty_json
from storage.admin.pair_filters import url_domain
from storage.admin.pair_findings import marked_blocks
from storage.exceptions import InvalidInput
from storage.services import pair_edits
from storage.services.scan import scan_pair

EDIT_FIELDS = ("input_text", "output_text")
# Set on a request whose changelist is built for its rows only (ScrapedPairAdmin.known_count reads it).
NO_COUNT = "ff_changelist_rows_only"


def reader_url(pair_id: int, query: str) -> str:
    url = reverse("admin:storage_scrapedpair_read", args=(pair_id,))
    return f"{url}?{query}" if query else url


def neighbours(model_admin, request, pair_id: int) -> tuple[int | None, int | None]:
    """(previous, next) pair ids in the list's order, among the pairs the list's filters and search select."""
    # The ChangeList counts its rows for the paginator (a capped count, most of a search's cost); not needed here.
    setattr(request, NO_COUNT, True)
    changelist = model_admin.get_changelist_instance(request)
    ids = changelist.queryset.order_by().values_list("pk", flat=True)
    previous = ids.filter(pk__gt=pair_id).order_by("pk").first()
    following = ids.filter(pk__lt=pair_id).order_by("-pk").first()
    return previous, following


def reader_view(model_admin, request, object_id: str):
    pair = model_admin.get_object(request, unquote(object_id))
    if pair is None:
        raise Http404(f"pair {object_id} does not exist")
    if not model_admin.has_view_or_change_permission(request, pair):
        raise PermissionDenied
    can_change = model_admin.has_change_permission(request, pair)
    query = request.GET.urlencode()
    form_class = model_admin.get_form(request, pair, change=True, fields=EDIT_FIELDS)
    form = None
    if request.method == "POST":
        if not can_change:
            raise PermissionDenied
        form = form_class(request.POST, instance=pair)
        if form.is_valid():
            edited = form.save(commit=False)
            try:
                pair_edits.save_pair(edited, previous_session_id=edited.session_id)
            except InvalidInput as exc:
                form.add_error(None, str(exc))
            else:
                model_admin.log_change(request, edited, model_admin.construct_change_message(request, form, None))
                model_admin.message_user(request, f"{edited} was saved.", messages.SUCCESS)
                return HttpResponseRedirect(reader_url(edited.pk, query))
        pair.refresh_from_db()
    elif can_change:
        form = form_class(instance=pair)
    try:
        previous, following = neighbours(model_admin, request, pair.pk)
    except IncorrectLookupParameters as exc:
        return HttpResponseBadRequest(f"These list filters are not valid: {exc}")
    changelist_url = reverse("admin:storage_scrapedpair_changelist")
    found = scan_pair(pair=pair)
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.model._meta,
        "title": f"Reading {pair}",
        "pair": pair,
        # Whatever the scan finds in the text as it is now is marked and masked, never shown (issue 14).
        "input_html": marked_blocks(pair.input_text, [f for f, _ in found if f.side == "input"]),
        "output_html": marked_blocks(pair.output_text, [f for f, _ in found if f.side == "output"]),
        "findings_count": len(found),
        "metadata_html": pretty_json(pair.metadata) if pair.metadata else None,
        "source_link": pair.source_url if url_domain(pair.source_url) else None,
        "form": form,
        "editing": form is not None and form.is_bound,
        "previous_url": reader_url(previous, query) if previous else None,
        "next_url": reader_url(following, query) if following else None,
        "list_url": f"{changelist_url}?{query}" if query else changelist_url,
        "session_url": f"{changelist_url}?session__id__exact={pair.session_id}",
        "change_url": reverse("admin:storage_scrapedpair_change", args=(pair.pk,)),
        "filtered": bool(query),
        "query_text": request.GET.get("q", ""),
    }
    return TemplateResponse(request, "admin/storage/scrapedpair/reader.html", context)
