"""Remove duplicate pairs from scrape sessions, keeping the earliest of each; say what went from which session."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.template.defaultfilters import pluralize

from storage.exceptions import StorageError
from storage.management.session_arguments import add_session_arguments, selected_session_ids
from storage.models import ScrapeSession
from storage.services.dedupe import remove_duplicates


class Command(BaseCommand):
    help = (
        "Remove pairs whose input and output repeat an earlier pair of the same session "
        "(or, with --across-sessions, of any of the given sessions). The earliest pair is kept."
    )

    def add_arguments(self, parser):
        add_session_arguments(parser)
        parser.add_argument(
            "--across-sessions",
            action="store_true",
            help="Also remove a pair that an earlier pair of another given session already has.",
        )
        parser.add_argument(
            "--normalize",
            action="store_true",
            help="Compare texts with whitespace runs collapsed, ends trimmed and case ignored.",
        )
        parser.add_argument("--dry-run", action="store_true", help="Count the duplicates; delete nothing.")

    def handle(self, *args, **options):
        session_ids = selected_session_ids(options)
        if not session_ids:
            self.stdout.write("There are no sessions.")
            return
        try:
            result = remove_duplicates(
                session_ids=session_ids,
                normalize=options["normalize"],
                across_sessions=options["across_sessions"],
                dry_run=options["dry_run"],
            )
        except StorageError as exc:
            raise CommandError(str(exc)) from exc
        verb = "Would remove" if options["dry_run"] else "Removed"
        if options["verbosity"] >= 1:
            labels = dict((s.pk, s.label) for s in ScrapeSession.objects.filter(pk__in=list(result.per_session)))
            for session_id, count in result.per_session.items():
                if count or options["verbosity"] >= 2:
                    self.stdout.write(f"  session {session_id} ({labels.get(session_id, '?')}): {count:,}")
        self.stdout.write(
            self.style.SUCCESS(
                f"{verb} {result.removed:,} duplicate pair{pluralize(result.removed)} from "
                f"{len(result.per_session):,} session{pluralize(len(result.per_session))}"
                + (" (nothing deleted: dry run)." if options["dry_run"] else ".")
            )
        )
        if result.changed:
            self.stdout.write(
                f"Left {result.changed:,} pair{pluralize(result.changed)} alone: "
                "they or the pair they repeat changed or went while dedupe ran (run it again to look at them afresh)."
            )
