"""Scraped pairs: a list that stays fast at a million rows, and edits that keep pair_count exact."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.options import IncorrectLookupParameters
from django.core.paginator import Paginator
from django.db.models import Sum
from django.db.models.functions import Substr
from django.http import QueryDict
from django.template.defaultfilters import pluralize
from django.urls import path, reverse
from django.utils.functional import cached_property
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext as _

from storage.admin import pair_reader
from storage.admin.base import CHECKBOX_HTML, FineFoundryModelAdmin, OfferedFiltersChangeList
from storage.admin.display import PREVIEW_SCAN_CHARS, PrettyJSONField, preview
from storage.admin.pair_filters import (
    DomainFilter,
    FormFilterMixin,
    HasMetadataFilter,
    InputLengthFilter,
    OutputLengthFilter,
    ScanFlagFilter,
)
from storage.admin.pair_findings import attach_findings, marked_blocks, masked_head
from storage.admin.pair_secrets import filled_slots, secret_slots
from storage.admin.pair_text import SNIPPET_SOURCE_CHARS, match_snippet, term_pattern
from storage.exceptions import InvalidInput
from storage.models import ScrapedPair, ScrapeSession
from storage.search.queries import parse_terms, search_queryset
from storage.services import pair_edits
from storage.services.datasets import conversations
from storage.services.scan import PairScanner, scan_pair
from storage.services.scan_findings import pair_findings
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
    """Holds a pair's texts to the same rules as storage.api (length, no NUL characters).

    Secrets in the texts are shown as numbered slots and put back on save (pair_secrets).
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.slots: dict[str, dict[int, str]] = {}
        if self.instance.pk is None:
            return
        scanner = PairScanner()
        for field in ("input_text", "output_text"):
            text = getattr(self.instance, field) or ""
            masked, values = secret_slots(text, scanner.find(text))
            if values:
                self.initial[field] = masked
                self.slots[field] = values

    def clean_input_text(self):
        return self._checked("input_text", "input")

    def clean_output_text(self):
        return self._checked("output_text", "output")

    def _checked(self, field: str, side: str) -> str:
        text = filled_slots(self.cleaned_data[field], self.slots.get(field, {}))
        # Browsers send a text box's line breaks as CRLF (HTML's form encoding): keep the stored text's own
        # line endings, or a save would rewrite every line of a training text.
        if "\r" not in (getattr(self.instance, field, None) or ""):
            text = text.replace("\r\n", "\n")
        try:
            return check_pair_text(text, side=side)
        except InvalidInput as exc:
            raise forms.ValidationError(str(exc)) from exc


class SessionIdFilter(FormFilterMixin, admin.SimpleListFilter):
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
# With base.CHECKBOX_HTML, the one place that writes Django's changelist markup by hand (the measured hot path of a
# 100-row pairs page; every other page renders through Django's templates). It must stay byte for byte
# what Django's items_for_result writes: test_admin_pairs.py::test_fast_rows_are_what_djangos_generic_rendering_writes
# compares the two, so a Django upgrade that changes the markup fails there first.
ROW_HTML = (
    f'<td class="action-checkbox">{CHECKBOX_HTML}</td><th class="field-id"><a href="{{}}">{{}}</a></th>'
    f'<td class="field-session_link">{SESSION_LINK_HTML}</td>'
    '<td class="field-input_preview">{}</td><td class="field-output_preview">{}</td>'
)
EXTRA_CELL_HTML = '<td class="field-{}">{}</td>'
READ_LINK_HTML = '<a class="ff-read-link" href="{}" title="Read {}">Read</a>'
# Query parameters the reader does not carry: they order or page the list, not select its rows.
NOT_CARRIED_TO_READER = ("p", "o", "all", "e", "_to_field", "_popup")
SEARCH_HELP = (
    "Finds pairs whose input or output contains every term (case-insensitive, anywhere in a word); "
    '"a quoted phrase" is one term. OR, -word and * are not operators: they are searched for as written.'
)


def reader_query(params: QueryDict) -> str:
    """The list's filters and search as the reader's query string."""
    carried = params.copy()
    for name in NOT_CARRIED_TO_READER:
        carried.pop(name, None)
    return carried.urlencode()


def match_column(pattern):
    """The "match" column of a search: where the first term was found, terms marked."""

    @admin.display(description="match")
    def match(pair: ScrapedPair):
        found = getattr(pair, "scan_findings", {})
        return match_snippet(
            [(side, masked_head(getattr(pair, f"{side}_head", None), found.get(side))) for side in ("input", "output")],
            pattern,
        )

    return match


def read_column(query: str):
    """The "read" column: the reader, carrying the list's filters and search."""

    @admin.display(description="read")
    def read(pair: ScrapedPair):
        return format_html(READ_LINK_HTML, pair_reader.reader_url(pair.pk, query), pair)

    return read


def session_column_label(pair: ScrapedPair) -> str:
    """The session's id before its label: commands take the id."""
    return f"{pair.session_id}: {pair.session.label}"


class PairChangeList(OfferedFiltersChangeList):
    """Rows carry the first characters of input and output, cut in SQL; the full texts never leave the database."""

    def get_queryset(self, request, exclude_parameters=None):
        queryset = super().get_queryset(request, exclude_parameters)
        if self.query.strip():
            # The match column's snippet is found in the first characters only, so no full text leaves SQL.
            queryset = queryset.annotate(
                input_head=Substr("input_text", 1, SNIPPET_SOURCE_CHARS),
                output_head=Substr("output_text", 1, SNIPPET_SOURCE_CHARS),
            )
        return queryset.annotate(
            input_preview=Substr("input_text", 1, PREVIEW_SCAN_CHARS),
            output_preview=Substr("output_text", 1, PREVIEW_SCAN_CHARS),
        ).only("id", "session_id", "created_at", "session__id", "session__name", "session__source")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Django adds the preserved filters to every row link with a resolve() per row, a tenth of a
        # searched page; the row links here carry them already (see url_for_result).
        self.row_link_query = self.preserved_filters
        self.preserved_filters = ""

    @cached_property
    def added_columns(self) -> list:
        """The columns get_list_display added for this request (match, read): functions of a pair."""
        return [column for column in self.list_display if callable(column)]

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
        if not getattr(request, pair_reader.NO_COUNT, False):  # the reader never shows these rows
            attach_findings(self.result_list)


@admin.register(ScrapedPair)
class ScrapedPairAdmin(FineFoundryModelAdmin):
    # No created column: pairs share their session's time, and the texts need the width.
    list_display = ("id", "session_link", "input_preview", "output_preview")
    list_display_links = ("id",)
    list_filter = (
        SessionIdFilter,
        InputLengthFilter,
        OutputLengthFilter,
        HasMetadataFilter,
        DomainFilter,
        ScanFlagFilter,
    )
    list_select_related = ("session",)
    list_per_page = 100
    ordering = ("-id",)
    sortable_by = ("id",)
    search_fields = ("input_text", "output_text")
    search_help_text = SEARCH_HELP
    show_full_result_count = False
    autocomplete_fields = ("session",)
    readonly_fields = ("created_at", "findings")
    fields = ("session", "input_text", "output_text", "source_url", "metadata", "created_at", "findings")
    form = ScrapedPairForm
    # Read-only (a user who may only view), the texts are shown as the reader shows them, every finding masked.
    read_only_displays = {"input_text": "input_marked", "output_text": "output_marked"}

    class Media:
        js = ("storage/reader.js",)  # the monospace switch of the text boxes

    def get_changelist(self, request, **kwargs):
        return PairChangeList

    @admin.display(description="safe to publish?")
    def findings(self, pair: ScrapedPair):
        """What the scan finds in this pair as it is stored now, masked."""
        if pair.pk is None:
            return "—"
        found = scan_pair(pair=pair)
        scan, stored = pair_findings(pair=pair)
        if scan is not None:
            listed = format_html(
                '<p class="ff-stored-findings">Flagged in the pairs list by the scan of session {} ({} UTC):'
                " {} finding{}.</p>",
                scan.session_id,
                scan.scanned_at.strftime("%Y-%m-%d %H:%M:%S") if scan.scanned_at else "—",
                len(stored),
                pluralize(len(stored)),
            )
        else:
            listed = format_html(
                '<p class="ff-stored-findings">{}</p>', "Not flagged in the pairs list (no current stored finding)."
            )
        if not found:
            return format_html(
                "{}{}",
                "Nothing found (no e-mail address, phone number, IP address, card number or secret).",
                listed,
            )
        return format_html(
            '<ul class="ff-findings">{}</ul>{}',
            format_html_join(
                "",
                "<li>{} in {} (characters {}–{}): <code>{}</code></li>",
                ((f.kind, f.side, f.start, f.end, excerpt) for f, excerpt in found),
            ),
            listed,
        )

    @admin.display(description="Input text")
    def input_marked(self, pair: ScrapedPair):
        return self._marked(pair, "input")

    @admin.display(description="Output text")
    def output_marked(self, pair: ScrapedPair):
        return self._marked(pair, "output")

    def _marked(self, pair: ScrapedPair, side: str):
        text = getattr(pair, f"{side}_text") or ""
        return marked_blocks(text, PairScanner().find(text))

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        if db_field.name == "metadata":
            return PrettyJSONField(
                required=False, rows=6, label="Metadata", object_only=True, problem=conversations.metadata_problem
            )
        if db_field.name in ("input_text", "output_text"):
            # Sized for texts of thousands of characters; reader.js adds a monospace switch.
            attrs = {"rows": 18, "class": "ff-pair-text", "dir": "auto", "spellcheck": "false"}
            kwargs["widget"] = forms.Textarea(attrs=attrs)
        if db_field.name == "source_url":
            kwargs["widget"] = forms.TextInput(attrs={"class": "vTextField ff-wide"})
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    def get_urls(self):
        read = self.admin_site.admin_view(self.reader_view)
        return [path("<path:object_id>/read/", read, name="storage_scrapedpair_read"), *super().get_urls()]

    def reader_view(self, request, object_id):
        return pair_reader.reader_view(self, request, object_id)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        filters = QueryDict(request.GET.get("_changelist_filters", ""))
        if object_id.isdigit():
            reader_url = pair_reader.reader_url(int(object_id), reader_query(filters))
            extra_context = {**(extra_context or {}), "reader_url": reader_url}
        return super().change_view(request, object_id, form_url, extra_context)

    def get_list_display(self, request):
        columns = [*super().get_list_display(request)]
        terms = parse_terms(self.limited_search_term(None, request.GET.get("q", "")))
        if terms:
            columns.append(match_column(term_pattern(terms)))
        columns.append(read_column(reader_query(request.GET)))
        return columns

    def row_cells(self, cl: PairChangeList, pair: ScrapedPair) -> list[str]:
        """The row as Django's generic rendering would write it (see fast_result_list), in a few format_html."""
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
            ),
            *(format_html(EXTRA_CELL_HTML, column.__name__, column(pair)) for column in cl.added_columns),
        ]

    @cached_property
    def changelist_url(self) -> str:
        return reverse("admin:storage_scrapedpair_changelist")

    @admin.display(description="session")
    def session_link(self, pair: ScrapedPair):
        url = f"{self.changelist_url}?{SESSION_PARAM}={pair.session_id}"
        label = session_column_label(pair)
        return format_html(SESSION_LINK_HTML, url, label, label)

    # What a stored scan found, or the scan finds in the first characters, is masked (attach_findings).
    @admin.display(description="input")
    def input_preview(self, pair: ScrapedPair) -> str:
        head = getattr(pair, "input_preview", None) or pair.input_text
        return preview(masked_head(head, getattr(pair, "scan_findings", {}).get("input")))

    @admin.display(description="output")
    def output_preview(self, pair: ScrapedPair) -> str:
        head = getattr(pair, "output_preview", None) or pair.output_text
        return preview(masked_head(head, getattr(pair, "scan_findings", {}).get("output")))

    def get_search_results(self, request, queryset, search_term):
        search_term = self.limited_search_term(request, search_term)
        if not search_term.strip():
            return queryset, False
        return search_queryset(queryset, search_term), False

    def known_count(self, request, queryset) -> int:
        """Count from the sessions' pair_count when only a session is chosen; else count, capped."""
        if getattr(request, pair_reader.NO_COUNT, False):
            return 0  # the reader wants the list's rows, not how many there are
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
