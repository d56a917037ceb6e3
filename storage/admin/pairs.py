"""Scraped pairs: a list that stays fast at a million rows, and edits that keep pair_count exact."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.options import IncorrectLookupParameters
from django.core.paginator import Paginator
from django.db.models import Sum
from django.db.models.functions import Substr
from django.template.defaultfilters import pluralize
from django.urls import reverse
from django.utils.functional import cached_property
from django.utils.html import format_html
from django.utils.translation import gettext as _

from storage.admin.base import FineFoundryModelAdmin, OfferedFiltersChangeList
from storage.admin.display import PREVIEW_CHARS, PrettyJSONField, preview
from storage.exceptions import InvalidInput
from storage.models import ScrapedPair, ScrapeSession
from storage.search.queries import search_queryset
from storage.services import pair_edits
from storage.services.sessions import check_pair_text

SESSION_PARAM = "session__id__exact"
# Query parameters that change what is shown but not which rows match.
NON_FILTER_PARAMS = frozenset({"p", "o", "all", "e", "_to_field", "_popup", "_changelist_filters"})
# Counting every match of a search is the slow part of a search page; beyond this the count is capped,
# unless a deeper page is asked for (see count_limit).
SEARCH_COUNT_CAP = 10_000
FILTER_CHOICES = 15


# Row ids are 64-bit signed integers; a larger number names no session (SQLite would overflow on it).
NO_SESSION = -1


def session_id_param(value: str | None) -> int | None:
    if value in (None, ""):
        return None
    try:
        number = int(value)
    except ValueError as exc:
        raise IncorrectLookupParameters(f"session id must be a number, got {value!r}") from exc
    return number if -(2**63) <= number < 2**63 else NO_SESSION


class ScrapedPairForm(forms.ModelForm):
    """Holds a pair's texts to the same rules as storage.api (length, no NUL characters)."""

    def clean_input_text(self):
        return self._checked("input_text", "input")

    def clean_output_text(self):
        return self._checked("output_text", "output")

    def _checked(self, field: str, side: str) -> str:
        try:
            return check_pair_text(self.cleaned_data[field], side=side)
        except InvalidInput as exc:
            raise forms.ValidationError(str(exc)) from exc


class SessionIdFilter(admin.SimpleListFilter):
    """Filter by session id; offers the selected and the newest sessions, never a list of all of them."""

    title = "session"
    parameter_name = SESSION_PARAM
    template = "admin/storage/scrapedpair/session_filter.html"

    def lookups(self, request, model_admin):
        selected = session_id_param(self.value())
        columns = ("id", "name", "source", "pair_count")
        sessions = list(ScrapeSession.objects.order_by("-id").only(*columns)[:FILTER_CHOICES])
        if selected is not None and selected not in {s.pk for s in sessions}:
            sessions[:0] = ScrapeSession.objects.filter(pk=selected).only(*columns)
        return [(str(s.pk), f"{s.pk}: {s.label} ({s.pair_count or 0:,})") for s in sessions]

    def queryset(self, request, queryset):
        selected = session_id_param(self.value())
        return queryset if selected is None else queryset.filter(session_id=selected)


def requested_page(request) -> int:
    try:
        return int(request.GET.get("p", 1))
    except ValueError:
        return 1


def count_limit(request, per_page: int) -> int:
    """How far to count a search: the cap, or past the page asked for, so deep pages (and a next one) exist."""
    page = requested_page(request)
    return SEARCH_COUNT_CAP if page <= 1 else max(SEARCH_COUNT_CAP, page * per_page + 1)


class KnownCountPaginator(Paginator):
    """A paginator told its count, so the page never runs COUNT(*) over a million rows."""

    def __init__(self, *args, count: int, **kwargs):
        super().__init__(*args, **kwargs)
        self.known_count = count

    @cached_property
    def count(self) -> int:
        return self.known_count


SESSION_LINK_HTML = '<a class="ff-ellipsis" href="{}" title="Only the pairs of {}">{}</a>'
ROW_HTML = (
    '<td class="action-checkbox"><input type="checkbox" name="{}" value="{}" class="action-select" aria-label="{}">'
    '</td><th class="field-id"><a href="{}">{}</a></th>'
    f'<td class="field-session_link">{SESSION_LINK_HTML}</td>'
    '<td class="field-input_preview">{}</td><td class="field-output_preview">{}</td>'
)


def session_column_label(pair: ScrapedPair) -> str:
    """The session's id before its label: commands take the id."""
    return f"{pair.session_id}: {pair.session.label}"


class PairChangeList(OfferedFiltersChangeList):
    """Rows carry the first characters of input and output, cut in SQL; the full texts never leave the database."""

    def get_queryset(self, request, exclude_parameters=None):
        queryset = super().get_queryset(request, exclude_parameters)
        return queryset.annotate(
            input_preview=Substr("input_text", 1, PREVIEW_CHARS + 1),
            output_preview=Substr("output_text", 1, PREVIEW_CHARS + 1),
        ).only("id", "session_id", "created_at", "session__id", "session__name", "session__source")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Django adds the preserved filters to every row link with a resolve() per row, a tenth of a
        # searched page; the row links here carry them already (see url_for_result).
        self.row_link_query = self.preserved_filters
        self.preserved_filters = ""

    @cached_property
    def checkbox_label(self) -> str:
        # Translated once per page; the row's text is escaped by the row's format_html.
        return _("Select this object for an action - {}")

    @cached_property
    def change_url_prefix(self) -> str:
        return reverse("admin:storage_scrapedpair_change", args=(0,)).removesuffix("0/change/")

    def url_for_result(self, result) -> str:
        # One reverse() per page instead of one per row; pair ids need no quoting.
        url = f"{self.change_url_prefix}{result.pk}/change/"
        return f"{url}?{self.row_link_query}" if self.row_link_query else url

    def get_results(self, request):
        # A page past the end (or below 1) shows the nearest page, keeping the search and the filters:
        # Django would redirect to the unfiltered list.
        last = self.model_admin.get_paginator(request, self.queryset, self.list_per_page).num_pages
        if not 1 <= self.page_num <= last:
            asked, self.page_num = self.page_num, min(max(self.page_num, 1), last)
            self.model_admin.message_user(
                request, f"There is no page {asked:,}; this is page {self.page_num:,} of {last:,}.", messages.WARNING
            )
        super().get_results(request)
        # A search or other filter is counted only up to the cap; the templates then say "10,000+".
        filtered = bool(set(request.GET) - NON_FILTER_PARAMS - {SESSION_PARAM})
        self.count_is_capped = filtered and self.result_count >= count_limit(request, self.list_per_page)
        # The count comes from pair_count; should that have drifted low, a "single page" must still stay one page.
        if not self.result_list.query.is_sliced:
            self.result_list = self.result_list[: self.list_max_show_all if self.show_all else self.list_per_page]


@admin.register(ScrapedPair)
class ScrapedPairAdmin(FineFoundryModelAdmin):
    # No created column: pairs share their session's time, and the texts need the width.
    list_display = ("id", "session_link", "input_preview", "output_preview")
    list_display_links = ("id",)
    list_filter = (SessionIdFilter,)
    list_select_related = ("session",)
    list_per_page = 100
    ordering = ("-id",)
    sortable_by = ("id",)
    search_fields = ("input_text", "output_text")
    search_help_text = "Full-text search in inputs and outputs."
    show_full_result_count = False
    autocomplete_fields = ("session",)
    readonly_fields = ("created_at",)
    fields = ("session", "input_text", "output_text", "source_url", "metadata", "created_at")
    form = ScrapedPairForm

    def get_changelist(self, request, **kwargs):
        return PairChangeList

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        if db_field.name == "metadata":
            return PrettyJSONField(required=False, rows=6, label="Metadata", object_only=True)
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    def row_cells(self, cl: PairChangeList, pair: ScrapedPair) -> list[str]:
        """The row as Django's generic rendering would write it (see fast_result_list), in one format_html."""
        label = session_column_label(pair)
        return [
            format_html(
                ROW_HTML,
                ACTION_CHECKBOX_NAME,
                pair.pk,
                cl.checkbox_label.format(pair),
                cl.url_for_result(pair),
                pair.pk,
                f"{self.changelist_url}?{SESSION_PARAM}={pair.session_id}",
                label,
                label,
                self.input_preview(pair),
                self.output_preview(pair),
            )
        ]

    @cached_property
    def changelist_url(self) -> str:
        return reverse("admin:storage_scrapedpair_changelist")

    @admin.display(description="session")
    def session_link(self, pair: ScrapedPair):
        url = f"{self.changelist_url}?{SESSION_PARAM}={pair.session_id}"
        label = session_column_label(pair)
        return format_html(SESSION_LINK_HTML, url, label, label)

    @admin.display(description="input")
    def input_preview(self, pair: ScrapedPair) -> str:
        return preview(getattr(pair, "input_preview", None) or pair.input_text)

    @admin.display(description="output")
    def output_preview(self, pair: ScrapedPair) -> str:
        return preview(getattr(pair, "output_preview", None) or pair.output_text)

    def get_search_results(self, request, queryset, search_term):
        search_term = self.limited_search_term(request, search_term)
        if not search_term.strip():
            return queryset, False
        return search_queryset(queryset, search_term), False

    def known_count(self, request, queryset) -> int:
        """Count from the sessions' pair_count when only a session is chosen; else count, capped."""
        params = set(request.GET) - NON_FILTER_PARAMS
        if params <= {SESSION_PARAM}:
            sessions = ScrapeSession.objects.all()
            selected = session_id_param(request.GET.get(SESSION_PARAM))
            if selected is not None:
                sessions = sessions.filter(pk=selected)
            return sessions.aggregate(total=Sum("pair_count"))["total"] or 0
        return queryset.order_by().values("pk")[: count_limit(request, self.list_per_page)].count()

    def get_paginator(self, request, queryset, per_page, orphans=0, allow_empty_first_page=True):
        # Asked twice a page (PairChangeList.get_results checks the page first): counted once.
        if getattr(request, "_ff_pair_count", None) is None:
            request._ff_pair_count = self.known_count(request, queryset)
        return KnownCountPaginator(
            queryset,
            per_page,
            orphans=orphans,
            allow_empty_first_page=allow_empty_first_page,
            count=request._ff_pair_count,
        )

    def save_model(self, request, obj, form, change):
        pair_edits.save_pair(obj, previous_session_id=form.initial.get("session") if change else None)

    def delete_model(self, request, obj):
        pair_edits.delete_pairs(ScrapedPair.objects.filter(pk=obj.pk))

    def delete_queryset(self, request, queryset):
        removed = pair_edits.delete_pairs(queryset)
        self.message_user(
            request,
            f"Pair counts lowered in {len(removed)} session{pluralize(len(removed))}.",
            messages.INFO,
        )

    def get_deleted_objects(self, objs, request):
        """Summarise instead of listing every pair: a selection can be all million of them."""
        # The delete view passes a list of one pair, the delete action a queryset.
        pairs = ScrapedPair.objects.filter(pk__in=[obj.pk for obj in objs]) if isinstance(objs, list) else objs
        per_session = pair_edits.pairs_per_session(pairs)
        labels = dict(
            (s.pk, s.label) for s in ScrapeSession.objects.filter(pk__in=list(per_session)).only("id", "name", "source")
        )
        lines = [
            f"{count:,} pair{pluralize(count)} of session {sid}: {labels.get(sid, '(deleted)')}"
            for sid, count in sorted(per_session.items())
        ]
        model_count = {ScrapedPair._meta.verbose_name_plural: sum(per_session.values())}
        return lines, model_count, set(), []
