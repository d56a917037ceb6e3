"""Export one or more scrape sessions as a dataset file, streamed and written atomically.

python manage.py export_session 3 --format jsonl --output data.jsonl
python manage.py export_session 3 4 --format chatml --system-prompt "You are helpful." --output -
python manage.py export_session 3 --format jsonl --output data.jsonl --split train=0.9,validation=0.1 --seed 7
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, OutputWrapper
from django.template.defaultfilters import pluralize
from tqdm import tqdm

from storage.exceptions import StorageError
from storage.services.datasets import exporting, splits


class ProgressBar:
    """The export's progress callback, drawn by tqdm on the command's stderr (a terminal)."""

    def __init__(self, stream: OutputWrapper, *, label: str = "pairs"):
        # tqdm writes to the raw stream: OutputWrapper would end each redraw with a newline and colour it.
        # The size is read once, with shutil's fallback: a terminal reporting 0x0 (a bare pty) would get no bar.
        columns, rows = shutil.get_terminal_size()
        self.bar = tqdm(
            file=getattr(stream, "_out", stream), unit=f" {label}", mininterval=0.1, ncols=columns, nrows=rows
        )

    def __call__(self, done: int, total: int) -> None:
        if self.bar.total != total:
            self.bar.total = total
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        self.bar.close()


class Command(BaseCommand):
    help = (
        "Export scrape sessions' pairs as json (FineFoundry's), jsonl, chatml, alpaca, sharegpt or csv. "
        "Writes to a temp file and renames it, so a failed export leaves nothing at the target."
    )

    def add_arguments(self, parser):
        parser.add_argument("session_ids", nargs="+", type=int, metavar="SESSION_ID")
        parser.add_argument("--format", required=True, choices=list(exporting.FORMATS), dest="fmt")
        parser.add_argument(
            "--output",
            "-o",
            metavar="PATH",
            help="file to write, or - for standard output (default: session-ID.EXT in the current directory)",
        )
        parser.add_argument("--system-prompt", metavar="TEXT", help="a system prompt for chatml, sharegpt and alpaca")
        parser.add_argument(
            "--split",
            metavar="NAME=FRACTION,...",
            help="write one file per part, e.g. train=0.9,validation=0.1 gives OUT.train.EXT and OUT.validation.EXT",
        )
        parser.add_argument("--seed", type=int, help="seed for --split (default 0); the same seed, the same split")
        parser.add_argument("--force", action="store_true", help="replace existing files")
        parser.add_argument(
            "--excel-safe",
            action="store_true",
            help="csv only: prefix cells starting with =, +, -, @, tab or CR with ' so spreadsheets do not run them",
        )
        publish = parser.add_mutually_exclusive_group()
        publish.add_argument(
            "--redact",
            action="store_true",
            help="replace what scan_pairs finds with [EMAIL], [PHONE], [IP], [CARD] or [SECRET]",
        )
        publish.add_argument(
            "--drop-flagged", action="store_true", help="leave out every pair in which scan_pairs finds something"
        )

    def handle(self, *args, **options):
        try:
            if options["output"] == "-":
                self.export_to_stdout(options)
            else:
                self.export_to_file(options)
        except StorageError as exc:
            raise CommandError(str(exc)) from exc

    def show_progress(self, options) -> bool:
        return options["verbosity"] >= 1 and self.stderr.isatty()

    def export_to_file(self, options) -> None:
        split = splits.parse_split(options["split"]) if options["split"] is not None else None
        output = options["output"] or exporting.default_filename(options["session_ids"], options["fmt"])
        bar = ProgressBar(self.stderr) if self.show_progress(options) else None
        try:
            result = exporting.export_sessions(
                session_ids=options["session_ids"],
                fmt=options["fmt"],
                output_path=Path(output).expanduser().absolute(),
                system_prompt=options["system_prompt"],
                split=split,
                seed=options["seed"],
                overwrite=options["force"],
                excel_safe=options["excel_safe"],
                redact=options["redact"],
                drop_flagged=options["drop_flagged"],
                progress=bar,
            )
        finally:
            if bar is not None:
                bar.close()
        if options["verbosity"] >= 1:
            for file in result.files:
                part = f" ({file.part})" if file.part else ""
                self.stdout.write(
                    self.style.SUCCESS(f"Wrote {file.count:,} pairs as {result.format}{part} to {file.path}")
                )
            if len(result.files) > 1:
                self.stdout.write(f"{result.count:,} pairs in {len(result.files)} files (seed {options['seed'] or 0}).")
            self.report_publish_filter(options, redacted=result.redacted, dropped=result.dropped)
        self.warn_about_formulas(result.formula_cells, options)
        self.warn_about_metadata(result.metadata_ignored, result.metadata_problem)

    def report_publish_filter(self, options, *, redacted: int, dropped: int) -> None:
        if options["redact"]:
            self.stderr.write(f"Redacted {redacted:,} findings (--redact).", style_func=str)
        if options["drop_flagged"]:
            self.stderr.write(f"Left out {dropped:,} flagged pairs (--drop-flagged).", style_func=str)

    def warn_about_formulas(self, cells: int, options) -> None:
        if not cells:
            return
        if options["excel_safe"]:
            if options["verbosity"] >= 1:
                self.stderr.write(f"Prefixed {cells:,} formula-like cells with ' (--excel-safe).", style_func=str)
            return
        self.stderr.write(
            self.style.WARNING(
                f"Warning: {cells:,} cells start with =, +, -, @, a tab or a carriage return; a spreadsheet may run "
                "them as formulas. The file keeps them exact; --excel-safe prefixes them with '."
            )
        )

    def export_to_stdout(self, options) -> None:
        if options["split"] is not None:
            raise CommandError("--split writes one file per part; give --output PATH instead of -")
        if options["seed"] is not None:
            raise CommandError("--seed only applies to --split")
        plan = exporting.plan_export(
            session_ids=options["session_ids"],
            fmt=options["fmt"],
            system_prompt=options["system_prompt"],
            excel_safe=options["excel_safe"],
            redact=options["redact"],
            drop_flagged=options["drop_flagged"],
        )
        bar = ProgressBar(self.stderr) if self.show_progress(options) else None
        # Bytes straight to a real stdout: exact UTF-8 whatever the locale, no newline translation.
        binary = getattr(self.stdout, "buffer", None)
        text = exporting.ExportText(plan, progress=bar)
        try:
            for _, chunk in text:
                if binary is not None:
                    binary.write(chunk.encode("utf-8"))
                else:
                    self.stdout.write(chunk, ending="")
            self.stdout.flush()
        except BrokenPipeError:
            # The reader went away (`| head`): stop quietly, as other command-line tools do.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise CommandError("standard output was closed before the export finished", returncode=1) from None
        finally:
            if bar is not None:
                bar.close()
        if options["verbosity"] >= 1:
            written = sum(text.counts)
            self.stderr.write(f"Wrote {written:,} pairs as {options['fmt']} to standard output.", style_func=str)
            if plan.publish is not None:
                self.report_publish_filter(options, redacted=plan.publish.redacted, dropped=plan.publish.dropped)
        self.warn_about_formulas(plan.formula_cells.count, options)
        self.warn_about_metadata(plan.conversations.ignored, plan.conversations.first_problem)

    def warn_about_metadata(self, ignored: int, problem: str | None) -> None:
        if not ignored:
            return
        self.stderr.write(
            self.style.WARNING(
                f"Warning: ignored unusable metadata {ignored:,} time{pluralize(ignored)} (first: {problem}); those "
                "pairs were exported without that system prompt or those earlier turns. Fix the metadata and export "
                "again to keep them."
            )
        )
