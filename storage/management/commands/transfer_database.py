"""Copy the whole database to another engine: SQLite → PostgreSQL, or PostgreSQL → an SQLite file."""

from __future__ import annotations

import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from storage.exceptions import StorageError
from storage.services.transfer import transfer_database


def configured_url() -> str:
    database = settings.DATABASES["default"]
    if database["ENGINE"].endswith("postgresql"):
        return "postgresql://{USER}:{PASSWORD}@{HOST}:{PORT}/{NAME}".format(
            **{key: database.get(key) or "" for key in ("USER", "PASSWORD", "HOST", "NAME")},
            PORT=database.get("PORT") or 5432,
        )
    return str(database["NAME"])


class Command(BaseCommand):
    help = (
        "Copy every table (ids, sequences, timestamps and JSON text kept) from one database to an empty one "
        "on the other engine, checking first what the target cannot hold and verifying counts and checksums."
    )

    def add_arguments(self, parser):
        parser.add_argument("--to", required=True, help="postgres://user:pass@host/db, or an SQLite file path")
        parser.add_argument("--from", dest="source", help="the source (default: the configured database)")
        parser.add_argument("--replace", action="store_true", help="Overwrite a target that already has rows.")

    def handle(self, *args, **options):
        source = options["source"] or configured_url()
        start = time.perf_counter()
        try:
            report = transfer_database(
                source_url=source, target_url=options["to"], replace=options["replace"], progress=self.stdout.write
            )
        except StorageError as exc:
            raise CommandError(str(exc)) from None
        for table, count in report.counts.items():
            self.stdout.write(f"  {table:<18}{count:>12,} rows  sha256 {report.checksums[table][:16]}")
        self.stdout.write(
            self.style.SUCCESS(
                f"Transferred and verified {len(report.counts)} tables in {time.perf_counter() - start:.1f} s."
            )
        )
