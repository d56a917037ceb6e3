"""Fill an empty database with a small, believable demo dataset, so a new install has something to show.

python manage.py seed_demo
python manage.py seed_demo --seed 7 --force
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from storage.demo.seed import seed_demo
from storage.exceptions import StorageError
from storage.validation import parse_timestamp


class Command(BaseCommand):
    help = (
        "Add demo sessions from every source with pairs, training runs in every status with trainer logs, "
        "configs, settings (with obviously fake secrets), evaluations and application logs. Refuses a database "
        "that already has data unless --force."
    )

    def add_arguments(self, parser):
        parser.add_argument("--seed", type=int, default=0, help="the same seed gives the same data (default 0)")
        parser.add_argument(
            "--force", action="store_true", help="add the demo data beside existing data (nothing is replaced)"
        )
        parser.add_argument("--now", metavar="DATETIME", help="date the history relative to this UTC time, not now")

    def handle(self, *args, **options):
        try:
            now = parse_timestamp(options["now"], name="--now")
            summary = seed_demo(seed=options["seed"], now=now, force=options["force"])
        except StorageError as exc:
            raise CommandError(str(exc)) from exc
        if options["verbosity"] >= 1:
            self.stdout.write(
                self.style.SUCCESS(
                    f"Demo data added: {summary.sessions} sessions with {summary.pairs:,} pairs, {summary.runs} "
                    f"training runs, {summary.evaluations} evaluations, {summary.configs} configs, "
                    f"{summary.settings} settings, {summary.logs} log records."
                )
            )
