"""Delete application log records, in short batches so log writers are never held up for long.

python manage.py clear_logs --older-than-days 30 --keep-last 1000
python manage.py clear_logs --below-level WARNING --before 2024-12-01 --dry-run
python manage.py clear_logs --all --vacuum
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
        parser.add_argument("--vacuum", action="store_true", help="give the freed space back to the filesystem after")

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
        if options["vacuum"]:
            if logs.reclaim_space():
                self.stdout.write("Freed space returned to the filesystem (VACUUM).")
            else:
                self.stdout.write("This database has no way to return freed space; skipped --vacuum.")

    def report_dry_run(self, selected) -> None:
        by_level = logs.count_by_level(selected)
        total = sum(by_level.values())
        detail = ", ".join(f"{level} {count:,}" for level, count in by_level.items())
        self.stdout.write(
            f"Would delete {total:,} log records{f' ({detail})' if detail else ''}. Dry run: nothing deleted."
        )
