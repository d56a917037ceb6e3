"""Delete application log records, in short batches so log writers are never held up for long.

python manage.py clear_logs --older-than-days 30 --keep-last 1000
python manage.py clear_logs --below-level WARNING --before 2024-12-01 --dry-run
python manage.py clear_logs --all --vacuum
python manage.py clear_logs --level DEBUG --vacuum-full   # once, on an adopted desktop file
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from storage.exceptions import StorageError
from storage.models import AppLog
from storage.services import logs

CRITERIA = ("older_than_days", "before", "level", "below_level", "keep_last")


class Command(BaseCommand):
    help = (
        "Delete app_logs records older than a number of days or a moment, of one level or below one, "
        "always keeping the newest --keep-last. Both desktop timestamp formats are compared correctly."
    )

    def add_arguments(self, parser):
        parser.add_argument("--older-than-days", type=int, metavar="N", help="records older than N days")
        parser.add_argument("--before", metavar="DATETIME", help="records before this UTC time, e.g. 2024-12-01T08:00")
        levels = parser.add_mutually_exclusive_group()
        levels.add_argument("--level", type=str.upper, choices=AppLog.Level.values, help="only records of this level")
        levels.add_argument(
            "--below-level",
            type=str.upper,
            choices=AppLog.Level.values,
            help="only records less severe than this level (--below-level WARNING: DEBUG and INFO)",
        )
        parser.add_argument("--keep-last", type=int, metavar="N", help="never delete the N newest (matching) records")
        parser.add_argument("--all", action="store_true", help="delete every record (needed when no filter is given)")
        parser.add_argument("--dry-run", action="store_true", help="report what would be deleted; delete nothing")
        parser.add_argument(
            "--vacuum",
            action="store_true",
            help="give the freed space back to the filesystem after, in short steps (SQLite: auto_vacuum=INCREMENTAL)",
        )
        parser.add_argument(
            "--vacuum-full",
            action="store_true",
            help="on a database without incremental auto-vacuum (an adopted desktop file): one full VACUUM that"
            " blocks every other writer while it rewrites the file, and switches it to incremental for next time",
        )

    def handle(self, *args, **options):
        criteria = {name: options[name] for name in CRITERIA}
        if options["all"] and any(value is not None for value in criteria.values()):
            raise CommandError("--all deletes every record; it cannot be combined with a filter")
        if not options["all"] and all(value is None for value in criteria.values()):
            raise CommandError(
                "say which records to delete: --older-than-days, --before, --level, --below-level, --keep-last,"
                " or --all for every record"
            )
        try:
            selected = logs.logs_to_clear(**criteria)
            if options["dry_run"]:
                self.report_dry_run(selected)
                return
            batches = []
            deleted = logs.clear_logs_matching(selected, on_batch=lambda count, seconds: batches.append(seconds))
        except StorageError as exc:
            raise CommandError(str(exc)) from exc
        if options["verbosity"] >= 1:
            longest = f"; longest {max(batches) * 1000:.0f} ms" if batches else ""
            self.stdout.write(
                self.style.SUCCESS(f"Deleted {deleted:,} log records in {len(batches)} batches{longest}.")
            )
        if options["vacuum"] or options["vacuum_full"]:
            self.stdout.write(self.vacuum_report(logs.reclaim_space(full=options["vacuum_full"])))

    def vacuum_report(self, done: logs.Reclaimed) -> str:
        longest = f"; longest {max(done.steps) * 1000:.0f} ms" if done.steps else ""
        return {
            "incremental": f"Returned {done.pages:,} free pages to the filesystem in {len(done.steps)} steps{longest}.",
            "full": f"Returned {done.pages:,} free pages to the filesystem with a full VACUUM ({longest[2:]});"
            " this database now has incremental auto-vacuum, so --vacuum will do from now on.",
            "automatic": "This database returns freed space by itself (auto_vacuum=FULL); nothing to do.",
            "needs-full": f"This database has {done.pages:,} free pages but no incremental auto-vacuum (it was created"
            " by the desktop app). Returning them needs a one-time full VACUUM that rewrites the whole file and"
            " blocks every other writer until it is done (the desktop app may fail with 'database is locked'"
            " meanwhile). Run clear_logs --vacuum-full when nothing else is writing; it also switches the file to"
            " incremental auto-vacuum, so --vacuum works in short steps after that. Nothing was vacuumed.",
            "analyze": "Freed space marked for reuse (VACUUM ANALYZE app_logs).",
            "unsupported": "This database has no way to return freed space; skipped --vacuum.",
        }[done.how]

    def report_dry_run(self, selected) -> None:
        by_level = logs.count_by_level(selected)
        total = sum(by_level.values())
        detail = ", ".join(f"{level} {count:,}" for level, count in by_level.items())
        self.stdout.write(
            f"Would delete {total:,} log records{f' ({detail})' if detail else ''}. Dry run: nothing deleted."
        )
