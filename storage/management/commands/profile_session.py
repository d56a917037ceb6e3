"""Length profile of a session's pairs, in characters and tokens, against a max_seq_length.

python manage.py profile_session 3
python manage.py profile_session 3 --tokenizer ~/models/llama/tokenizer.json --config "llama 8b"
python manage.py profile_session 3 --max-seq-length 1024 --json
python manage.py profile_session 3 --max-seq-length 1024 --new-session-without-long-pairs
"""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from storage.exceptions import StorageError
from storage.services.length_profile import profile_session, sessions_without_long_pairs


class Command(BaseCommand):
    help = (
        "Histograms of input, output and total length in characters and tokens (exact with --tokenizer "
        "tokenizer.json, otherwise an estimate that says so), and the share of pairs over max_seq_length "
        "(--max-seq-length N, or a saved training config's with --config NAME)."
    )

    def add_arguments(self, parser):
        parser.add_argument("session_id", type=int, metavar="SESSION_ID")
        parser.add_argument("--tokenizer", metavar="PATH", help="a local Hugging Face tokenizer.json")
        limit = parser.add_mutually_exclusive_group()
        limit.add_argument("--max-seq-length", type=int, metavar="N")
        limit.add_argument("--config", metavar="NAME", help="take max_seq_length from this saved training config")
        parser.add_argument("--json", action="store_true", help="print the profile as JSON")
        parser.add_argument(
            "--new-session-without-long-pairs",
            action="store_true",
            help="also copy the pairs that fit into a new session (needs --max-seq-length or --config)",
        )

    def handle(self, *args, **options):
        try:
            profile = profile_session(
                session_id=options["session_id"],
                tokenizer_path=options["tokenizer"],
                max_seq_length=options["max_seq_length"],
                config_name=options["config"],
            )
            derived = None
            if options["new_session_without_long_pairs"]:
                if profile.max_seq_length is None:
                    raise CommandError("--new-session-without-long-pairs needs --max-seq-length or --config")
                derived = sessions_without_long_pairs(
                    session_id=options["session_id"],
                    max_tokens=profile.max_seq_length,
                    tokenizer_path=options["tokenizer"],
                )
        except StorageError as exc:
            raise CommandError(str(exc)) from exc
        if options["json"]:
            data = profile.as_dict()
            if derived is not None:
                data["new_session"] = {"id": derived.pk, "pair_count": derived.pair_count}
            self.stdout.write(json.dumps(data))
            return
        self.print_profile(profile, histograms=options["verbosity"] >= 2)
        if derived is not None:
            self.stdout.write(
                self.style.SUCCESS(
                    f"Created session {derived.pk} ({derived.label}) with {derived.pair_count:,} pairs "
                    f"of at most {profile.max_seq_length:,} tokens."
                )
            )

    def print_profile(self, profile, *, histograms: bool) -> None:
        self.stdout.write(f"Session {profile.session_id}: {profile.pairs:,} pairs.")
        self.stdout.write(f"Tokens: {profile.method}.")
        for unit, summaries in (
            ("characters", profile.chars),
            ("tokens" + ("" if profile.exact else " (estimated)"), profile.tokens),
        ):
            self.stdout.write(f"\n{unit}:")
            self.stdout.write(f"  {'':<8} {'min':>9} {'median':>9} {'p95':>9} {'max':>9} {'mean':>11}")
            for side, summary in summaries.items():
                self.stdout.write(
                    f"  {side:<8} {summary.smallest:>9,} {summary.median:>9,.0f} {summary.p95:>9,} "
                    f"{summary.largest:>9,} {summary.mean:>11,.1f}"
                )
            if histograms:
                for side, summary in summaries.items():
                    self.stdout.write(f"  {side} histogram:")
                    for label, count in summary.histogram.labelled():
                        self.stdout.write(f"    {label:>15} {count:>9,}")
        if profile.max_seq_length is not None:
            estimated = "" if profile.exact else " (estimated tokens)"
            self.stdout.write(
                f"\n{profile.over:,} of {profile.pairs:,} pairs ({profile.over_share:.2%}) are over max_seq_length "
                f"{profile.max_seq_length:,} ({profile.max_seq_length_source}){estimated}."
            )
