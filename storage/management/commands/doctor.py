"""Check the database and the storage root; with --fix, repair what can be repaired safely.

    python manage.py doctor
    python manage.py doctor --fix --stuck-after-minutes 180

Exits non-zero while a problem is left: without --fix whenever something is found, with --fix
when something could not be repaired. storage/services/doctor.py says what each check does.
"""

from __future__ import annotations

import datetime as dt

from django.core.management.base import BaseCommand, CommandError
from django.template.defaultfilters import pluralize

from storage.exceptions import StorageError
from storage.services.doctor import CHECKS, DoctorContext, run_checks


class Command(BaseCommand):
    help = (
        "Check SQLite integrity, pair counts, runs stuck in running, storage directories without a run and runs "
        "without a directory. Reports only, unless --fix."
    )

    def add_arguments(self, parser):
        parser.add_argument("--fix", action="store_true", help="repair what can be repaired safely")
        parser.add_argument(
            "--stuck-after-minutes",
            type=int,
            default=60,
            metavar="N",
            help="a running run not updated for N minutes is stuck (default 60)",
        )
        parser.add_argument("--full", action="store_true", help="PRAGMA integrity_check instead of quick_check")
        parser.add_argument(
            "--check", action="append", metavar="NAME", help=f"run only this check: {', '.join(c.name for c in CHECKS)}"
        )

    def handle(self, *args, **options):
        if options["stuck_after_minutes"] < 1:
            raise CommandError("--stuck-after-minutes must be at least 1")
        context = DoctorContext(
            fix=options["fix"],
            stuck_after=dt.timedelta(minutes=options["stuck_after_minutes"]),
            full_integrity_check=options["full"],
        )
        try:
            reports = run_checks(context, only=options["check"])
        except StorageError as exc:
            raise CommandError(str(exc)) from exc
        verbose = options["verbosity"] >= 1
        for report in reports:
            if report.skipped:
                if verbose:
                    self.stdout.write(f"-  {report.check.title}: skipped, {report.skipped}")
            elif all(finding.note for finding in report.findings):
                if verbose:
                    self.stdout.write(self.style.SUCCESS(f"ok {report.check.title}"))
                    for finding in report.findings:
                        self.stdout.write(f"   - {finding.problem}")
            else:
                self.stdout.write(self.style.WARNING(f"!! {report.check.title}:"))
                for finding in report.findings:
                    status = "fixed: " if finding.fixed else ""
                    action = f" ({status}{finding.action})" if finding.action else ""
                    self.stdout.write(f"   - {finding.problem}{action}")
        unresolved = sum(len(report.unresolved) for report in reports)
        fixed = sum(finding.fixed for report in reports for finding in report.findings)
        if fixed and verbose:
            self.stdout.write(self.style.SUCCESS(f"Fixed {fixed} problem{pluralize(fixed)}."))
        if unresolved:
            hint = "" if options["fix"] else "; run with --fix to repair what can be repaired"
            raise CommandError(f"doctor found {unresolved} problem{pluralize(unresolved)}{hint}", returncode=1)
        if verbose:
            # "left" only where something was repaired: nothing was wrong otherwise.
            self.stdout.write(self.style.SUCCESS("No problems left." if fixed else "No problems found."))
