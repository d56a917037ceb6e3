"""Import a dataset file as pairs: validated completely first, then written in one transaction.

python manage.py import_pairs data.jsonl
python manage.py import_pairs chat.json --format chatml --source synthetic --name "Support chats"
python manage.py import_pairs more.csv --session 3
python manage.py import_pairs messy.jsonl --skip-invalid   # import the valid records, list the others
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.template.defaultfilters import pluralize

from storage.exceptions import StorageError
from storage.services.datasets.importing import IMPORT_FORMATS, import_pairs


class Command(BaseCommand):
    help = (
        "Import pairs from a json, jsonl, chatml, alpaca, sharegpt or csv file (FineFoundry's JSON and ChatML "
        "files too). Every record is checked first; a bad file changes nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", metavar="FILE")
        parser.add_argument("--format", default="auto", choices=IMPORT_FORMATS, dest="fmt")
        parser.add_argument("--source", help='source of the new session (default "import")')
        parser.add_argument("--name", help="name of the new session (default: the file name)")
        parser.add_argument("--session", type=int, metavar="ID", help="add to this existing session instead")
        parser.add_argument(
            "--skip-invalid",
            action="store_true",
            help="import the valid records and list each invalid one (file, record, line, reason); "
            "without it, one invalid record stops the whole import",
        )

    def handle(self, *args, **options):
        try:
            result = import_pairs(
                path=options["file"],
                fmt=options["fmt"],
                source=options["source"],
                name=options["name"],
                session_id=options["session"],
                skip_invalid=options["skip_invalid"],
            )
        except StorageError as exc:
            raise CommandError(str(exc)) from exc
        # Every skipped record, whatever the verbosity: the file needs fixing there.
        for skipped in result.skipped:
            self.stderr.write(f"skipped {skipped}")
        for note in result.not_exported:
            self.stderr.write(f"note: {note}")
        if options["verbosity"] >= 1:
            where = "new session" if result.created else "session"
            left_out = len(result.skipped)
            self.stdout.write(
                self.style.SUCCESS(
                    f"Imported {result.count:,} pair{pluralize(result.count)} "
                    f"({result.shape} records, {result.container}) "
                    f"into {where} {result.session_id}"
                    + (f"; skipped {left_out:,} invalid record{pluralize(left_out)}." if left_out else ".")
                )
            )
