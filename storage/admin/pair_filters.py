"""Filters of the pairs list beyond the session: text length, metadata, the source URL's domain.

Each is a SimpleListFilter, so its parameter is on the page's lookup allowlist (storage.admin.base) and
nothing else about the column can be asked: the domain filter compares the host of the URL only, never
its path or query string (where a token may sit).

The length and metadata filters compare one expression with a constant: its length class (0 short,
1 medium, 2 long) or whether it holds metadata (0 or 1). Migration 0012 indexes exactly these
expressions with the id, so a filter that matches few pairs or none reads only its index entries,
newest first, instead of walking the table (a range on length() alone would not do: SQLite then
prefers walking the ids to avoid sorting). The SQL written here must stay the SQL indexed there;
tests/admin/test_pair_filter_indexes.py asks each engine's EXPLAIN that it does. A domain (a
substring and a regex, which no index can answer) is first looked up in the source_url index alone.
"""

from __future__ import annotations

import re
from collections import Counter
from urllib.parse import urlsplit

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.db.models import F, Func, IntegerField, Q

from storage.models import ScrapedPair

SHORT_CHARS = 200
LONG_CHARS = 2_000
# The domains offered come from the newest pairs only: a bounded read, whatever the table's size.
DOMAIN_SAMPLE = 2_000
DOMAIN_CHOICES = 8
# A domain with at most this many pairs is found through the source_url index (the list's count cap).
DOMAIN_PROBE = 10_000
DOMAIN_RE = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$")
# Metadata that holds nothing, as the desktop app and this app write it.
EMPTY_METADATA = ("", "{}", "[]", "null")


class FormFilterMixin:
    """A filter whose template has a small GET form: it needs the page's other parameters as hidden fields."""

    def choices(self, changelist):
        self.other_params = [
            (name, value)
            for name, values in changelist.get_filters_params().items()
            if name != self.parameter_name
            for value in (values if isinstance(values, list) else [values])
        ]
        if changelist.query:
            self.other_params.append(("q", changelist.query))
        self.current = self.value() or ""
        yield from super().choices(changelist)


class LengthClass(Func):
    """0 for a short text, 1 for a medium one, 2 for a long one: the expression migration 0012 indexes."""

    template = (
        f"CASE WHEN length(%(expressions)s) < {SHORT_CHARS} THEN 0"
        f" WHEN length(%(expressions)s) <= {LONG_CHARS} THEN 1 ELSE 2 END"
    )
    output_field = IntegerField()


class HoldsMetadata(Func):
    """1 when the stored metadata text holds something, 0 when not: the expression migration 0012 indexes.

    Compared as the stored text: an empty document is empty whatever JSON type it is.
    """

    template = (
        "CASE WHEN %(expressions)s IS NULL OR %(expressions)s IN ("
        + ", ".join(f"'{text}'" for text in EMPTY_METADATA)
        + ") THEN 0 ELSE 1 END"
    )
    output_field = IntegerField()


class LengthFilter(admin.SimpleListFilter):
    """Short (< 200 characters), medium or long (> 2,000) texts on one side."""

    column = ""
    CLASSES = {"short": 0, "medium": 1, "long": 2}

    def lookups(self, request, model_admin):
        return (
            ("short", f"short (< {SHORT_CHARS:,})"),
            ("medium", f"medium ({SHORT_CHARS:,}–{LONG_CHARS:,})"),
            ("long", f"long (> {LONG_CHARS:,})"),
        )

    def queryset(self, request, queryset):
        value = self.value()
        if value is None:
            return queryset
        if value not in self.CLASSES:
            raise IncorrectLookupParameters(f"{self.parameter_name} must be short, medium or long, got {value!r}")
        name = f"{self.parameter_name}_class"
        return queryset.alias(**{name: LengthClass(F(self.column))}).filter(**{name: self.CLASSES[value]})


class InputLengthFilter(LengthFilter):
    title = "input length"
    parameter_name = "input_length"
    column = "input_text"


class OutputLengthFilter(LengthFilter):
    title = "output length"
    parameter_name = "output_length"
    column = "output_text"


class HasMetadataFilter(admin.SimpleListFilter):
    title = "metadata"
    parameter_name = "has_metadata"

    def lookups(self, request, model_admin):
        return (("yes", "has metadata"), ("no", "no metadata"))

    def queryset(self, request, queryset):
        value = self.value()
        if value is None:
            return queryset
        if value not in ("yes", "no"):
            raise IncorrectLookupParameters(f"has_metadata must be yes or no, got {value!r}")
        return queryset.alias(holds_metadata=HoldsMetadata(F("metadata"))).filter(holds_metadata=int(value == "yes"))


def url_domain(url: str | None) -> str | None:
    """The host of an http(s) URL, lower case, without "www."; None for anything else."""
    try:
        parts = urlsplit(url or "")
        host = parts.hostname
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not host:
        return None
    return host.removeprefix("www.")


def domain_q(domain: str) -> Q:
    """URLs whose host is `domain` or one of its subdomains, http or https, any port, any user part."""
    host = r"([^/?#@]*@)?([^/?#@]*\.)?" + re.escape(domain) + r"(:[0-9]*)?([/?#]|$)"
    # The LIKE first: it runs in C and turns most rows away before the regex (a Python call per row on SQLite).
    return Q(source_url__icontains=domain) & Q(source_url__iregex=r"^https?://" + host)


class DomainFilter(FormFilterMixin, admin.SimpleListFilter):
    """The source URL's domain: the commonest among the newest pairs, or any domain typed in."""

    title = "source domain"
    parameter_name = "domain"
    template = "admin/storage/scrapedpair/domain_filter.html"

    def lookups(self, request, model_admin):
        # The newest rows whatever their URL: a WHERE here would walk the whole table when few pairs have one.
        newest = ScrapedPair.objects.order_by("-id").values_list("source_url", flat=True)
        counts = Counter(filter(None, map(url_domain, newest[:DOMAIN_SAMPLE])))
        offered = [domain for domain, _ in counts.most_common(DOMAIN_CHOICES)]
        chosen = self.domain()
        if chosen and chosen not in offered:
            offered.insert(0, chosen)
        return [(domain, domain) for domain in offered]

    def domain(self) -> str | None:
        value = (self.value() or "").strip().lower().removeprefix("www.")
        if not value:
            return None
        if not DOMAIN_RE.match(value) or len(value) > 253:
            raise IncorrectLookupParameters(f"domain must be a host name like example.org, got {value!r}")
        return value

    def queryset(self, request, queryset):
        domain = self.domain()
        if domain is None:
            return queryset
        # First the pairs of that domain from the source_url index alone (migration 0012: URLs only, no texts),
        # at most DOMAIN_PROBE of them. Few or none: the page reads exactly those ids. Many: it walks the
        # table newest first, where matches are close together, as before.
        probe = ScrapedPair.objects.filter(source_url__isnull=False).filter(domain_q(domain)).order_by()
        ids = list(probe.values_list("id", flat=True)[: DOMAIN_PROBE + 1])
        if len(ids) <= DOMAIN_PROBE:
            return queryset.filter(pk__in=ids)
        return queryset.filter(domain_q(domain))


class ScanFlagFilter(admin.SimpleListFilter):
    """Flagged by the safe-to-publish scan: any kind, one kind, or not flagged; from the stored current scans.

    Only what the last scan of each session stored counts (storage/services/scan_findings.py): a pair edited
    since has no findings until its session is scanned again, a pair never scanned is "not flagged".
    """

    title = "flagged by the scan"
    parameter_name = "scan"
    FLAGGED = "flagged"
    NOT_FLAGGED = "not_flagged"

    def lookups(self, request, model_admin):
        # Imported here so this filter stays one self-contained block of the module.
        from storage.sensitive_text import KINDS

        return (
            (self.FLAGGED, "flagged (any kind)"),
            *((kind, f"flagged: {kind.replace('_', ' ')}") for kind in KINDS),
            (self.NOT_FLAGGED, "not flagged (or not scanned)"),
        )

    def queryset(self, request, queryset):
        from storage.sensitive_text import KINDS
        from storage.services.scan_findings import flagged_pairs

        value = self.value()
        if value is None:
            return queryset
        if value == self.FLAGGED:
            return flagged_pairs(queryset)
        if value == self.NOT_FLAGGED:
            return flagged_pairs(queryset, flagged=False)
        if value in KINDS:
            return flagged_pairs(queryset, kind=value)
        raise IncorrectLookupParameters(f"scan must be flagged, not_flagged or a kind of finding, got {value!r}")
