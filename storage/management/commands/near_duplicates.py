"""Find near-duplicate pairs (MinHash + LSH, then an exact Jaccard check) and optionally keep one per cluster."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from storage.exceptions import StorageError
from storage.management.session_arguments import add_session_arguments, selected_session_ids
from storage.services.near_duplicates import KEEP_POLICIES, find_near_duplicates, remove_near_duplicates


class Command(BaseCommand):
    help = (
        "Cluster the given sessions' pairs whose texts (input and output, normalised, 5-character shingles) "
        "have a Jaccard similarity of at least --threshold, also against every pair already stored in other "
        "sessions. With --remove, keep one pair per cluster and delete the given sessions' others."
    )

    def add_arguments(self, parser):
        add_session_arguments(parser)
        parser.add_argument("--threshold", type=float, default=0.8, help="Jaccard similarity, 0.5 to 1.0 (0.8).")
        parser.add_argument("--json", action="store_true", help='Print {"clusters": [[pair_id, ...], ...]}.')
        parser.add_argument(
            "--only-given",
            action="store_true",
            help="Compare the given sessions' pairs with each other only, not with other sessions' stored pairs.",
        )
        parser.add_argument("--remove", action="store_true", help="Keep one pair per cluster, delete the rest.")
        parser.add_argument(
            "--keep", choices=KEEP_POLICIES, default="oldest", help="Which pair stays: lowest id or most characters."
        )
        parser.add_argument("--dry-run", action="store_true", help="With --remove: say what would go; delete nothing.")

    def handle(self, *args, **options):
        session_ids = selected_session_ids(options)
        if options["dry_run"] and not options["remove"]:
            raise CommandError("--dry-run goes with --remove.")
        if not session_ids:
            raise CommandError("There are no sessions.")
        common = {
            "session_ids": session_ids,
            "threshold": options["threshold"],
            "against_stored": not options["only_given"],
        }
        try:
            if options["remove"]:
                result = remove_near_duplicates(**common, keep=options["keep"], dry_run=options["dry_run"])
            else:
                result = find_near_duplicates(**common)
        except StorageError as exc:
            raise CommandError(str(exc)) from exc
        if options["json"]:
            payload = {"clusters": result.clusters}
            if options["remove"]:
                payload.update(removed=result.removed, dry_run=result.dry_run)
            self.stdout.write(json.dumps(payload))
            return
        if options["verbosity"] >= 2 or not options["remove"]:
            for cluster in result.clusters:
                self.stdout.write("  " + " ".join(map(str, cluster)))
        members = sum(len(cluster) for cluster in result.clusters)
        self.stdout.write(f"{len(result.clusters):,} cluster(s) of near-duplicates, {members:,} pair(s).")
        if options["remove"]:
            verb = "Would remove" if options["dry_run"] else "Removed"
            for session_id, count in result.per_session.items():
                self.stdout.write(f"  session {session_id}: {count:,}")
            self.stdout.write(
                self.style.SUCCESS(
                    f"{verb} {len(result.removed):,} pair(s)"
                    + (" (nothing deleted: dry run)." if result.dry_run else ".")
                )
            )
