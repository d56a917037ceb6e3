"""Find personal data and secrets in sessions' pairs before they are published.

python manage.py scan_pairs 3 7
python manage.py scan_pairs --all --json
python manage.py scan_pairs 3 --store      # and store the findings (the admin's scan page and flagged filter)
"""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from storage.exceptions import StorageError
from storage.management.session_arguments import add_session_arguments, selected_session_ids
from storage.sensitive_text import KINDS
from storage.services.scan import scan_sessions
from storage.services.scan_findings import scan_and_store


class Command(BaseCommand):
    help = (
        "Scan pairs (both sides) for e-mail addresses, phone numbers, IP addresses, card numbers and secrets "
        "(tokens, keys, private key blocks, the stored secret settings). Prints counts and masked examples, or "
        'with --json {"findings": [{"pair_id", "side", "kind", "start", "end"}, ...]}.'
    )

    def add_arguments(self, parser):
        add_session_arguments(parser)
        parser.add_argument("--json", action="store_true", help="Print every finding as JSON (offsets only).")
        parser.add_argument(
            "--store",
            action="store_true",
            help="Store the findings (offsets only), replacing each session's earlier ones, as the admin's scan does.",
        )

    def handle(self, *args, **options):
        session_ids = selected_session_ids(options)
        if options["store"] and options["json"]:
            raise CommandError("--store prints a summary per session; run --json without it for the findings.")
        if not session_ids:
            if options["json"]:
                self.stdout.write(json.dumps({"findings": []}))
            else:
                self.stdout.write("There are no sessions.")
            return
        if options["store"]:
            self.store(session_ids)
            return
        try:
            report = scan_sessions(session_ids=session_ids)
        except StorageError as exc:
            raise CommandError(str(exc)) from exc
        if options["json"]:
            self.stdout.write(json.dumps({"findings": [finding.as_dict() for finding in report.findings]}))
            return
        counts = report.counts
        processes = f" by {report.workers} worker processes" if report.workers > 1 else ""
        self.stdout.write(
            f"Scanned {report.pairs_scanned:,} pairs in {len(report.session_ids)} session(s){processes}: "
            f"{len(report.findings):,} findings in {report.flagged_pairs:,} pairs."
        )
        for kind in KINDS:
            self.stdout.write(f"  {kind:<12} {counts[kind]:>9,}")
            if options["verbosity"] >= 1:
                for example in report.examples[kind]:
                    self.stdout.write(f"      pair {example.pair_id} {example.side}: {example.excerpt}")
        if report.findings:
            self.stdout.write(
                self.style.WARNING("Export with --redact to mask them, or --drop-flagged to leave those pairs out.")
            )
        else:
            self.stdout.write(self.style.SUCCESS("Nothing found."))

    def store(self, session_ids: list[int]) -> None:
        try:
            results = scan_and_store(session_ids=session_ids)
        except StorageError as exc:
            raise CommandError(str(exc)) from exc
        for result in results:
            self.stdout.write(
                f"Session {result.session_id}: scanned {result.pairs_scanned:,} pairs, stored {result.findings:,}"
                f" findings in {result.flagged_pairs:,} pairs (replacing its earlier scan)."
            )
