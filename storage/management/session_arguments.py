"""The SESSION_ID... | --all arguments that the curation commands share (dedupe_pairs, near_duplicates, scan_pairs)."""

from __future__ import annotations

from django.core.management.base import CommandError

from storage.models import ScrapeSession


def add_session_arguments(parser) -> None:
    parser.add_argument("session_ids", nargs="*", type=int, metavar="SESSION_ID")
    parser.add_argument("--all", action="store_true", help="Every session.")


def selected_session_ids(options: dict) -> list[int]:
    """The sessions named, or every session's id with --all (possibly none); exactly one of the two is required."""
    if options["all"] == bool(options["session_ids"]):
        raise CommandError("Give one or more SESSION_IDs, or --all (not both).")
    return options["session_ids"] or list(ScrapeSession.objects.order_by("id").values_list("pk", flat=True))
