"""Copy a whole database from one engine to the other: SQLite file ⇄ PostgreSQL (transfer_database).

Every FineFoundry table and Django's auth users are streamed in primary-key order, ids kept, in
one transaction on the target: checked first, written second, verified last.

1. The target is migrated (so it has the schema this project makes) and must be empty, unless
   `replace` is given (then its rows in these tables are deleted in the same transaction).
2. Before anything is written, the source is searched for values the target cannot hold (on
   PostgreSQL: NUL characters, integers beyond 32 bits, text that is not a timestamp in a
   timestamp column); any found are reported together and nothing is written.
3. Rows are copied in batches (COPY ... FREEZE into PostgreSQL, multi-row INSERTs into SQLite)
   with the target's secondary indexes (and on PostgreSQL its foreign keys) dropped, which are
   built again after the load, sequences set past the largest id, and each table's count and a
   checksum of its canonical values are compared between source and target before the
   transaction commits. All of step 3 is one transaction: a failed or killed transfer leaves the
   target as it was.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from django.conf import settings

from storage.exceptions import InvalidInput, StorageError
from storage.services.transfer_endpoints import is_postgres_url, open_endpoint

# Parents before children, so SQLite's foreign keys (when on) and readers see whole rows.
TABLES = [
    "settings",
    "app_state",
    "training_configs",
    "scrape_sessions",
    "scraped_pairs",
    "training_runs",
    "evaluation_runs",
    "app_logs",
    "auth_user",
]
PROGRESS_EVERY = 100_000
# Tables of ours derived from the pairs (scan findings, near-duplicate signatures): not copied, since the
# copied pairs may reuse ids these rows name; emptied in the target, and rebuilt by the next scan or
# near-duplicate run. Children first.
DERIVED_TABLES = [
    "storage_scan_findings",
    "storage_scans",
    "storage_pair_signatures",
    "storage_pair_bands",
    "storage_pair_bands_recent",
]


class TransferRefused(InvalidInput):
    """The target cannot take the source as it is (not empty, or values it cannot hold)."""


@dataclass
class TransferReport:
    counts: dict[str, int] = field(default_factory=dict)
    checksums: dict[str, str] = field(default_factory=dict)


def _kind(source: str, target: str) -> str:
    for special in ("time", "bool"):
        if special in (source, target):
            return special
    return target


def _migrate(url: str) -> None:
    """Give the target this project's schema with `manage.py migrate` in a child process."""
    env = dict(os.environ)
    if is_postgres_url(url):
        env["DATABASE_URL"] = url
    else:
        env.pop("DATABASE_URL", None)
        env["FINEFOUNDRY_DB"] = url.removeprefix("sqlite:///")
    result = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--no-input", "-v", "0"],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
    )
    if result.returncode:
        raise StorageError(f"migrating the target failed:\n{result.stderr.strip()[-2000:]}")


class RowDigest:
    """sha256 of a table's rows in order, over pickles of fixed-size batches of them.

    Both ends hand over the same canonical values (storage.services.transfer_endpoints), so equal
    rows give equal bytes: pickle encodes a value by its type and contents, and `fast` mode turns
    off the memo, which would otherwise encode a repeated object by reference (object identity
    differs between the ends). One pickle per batch costs a fraction of repr() per row. The bytes
    hashed depend only on the rows and their order, not on how the ends batch them.
    """

    BATCH = 10_000

    def __init__(self):
        self.digest = hashlib.sha256()
        self.count = 0
        self.batch: list[tuple] = []

    def add(self, rows: list[tuple]) -> None:
        self.count += len(rows)
        if not self.batch and len(rows) == self.BATCH:
            self._dump(rows)  # the ends' usual batch: hashed as it is, no copy
            return
        self.batch.extend(rows)
        while len(self.batch) >= self.BATCH:
            self._dump(self.batch[: self.BATCH])
            del self.batch[: self.BATCH]

    def _dump(self, rows: list[tuple]) -> None:
        buffer = io.BytesIO()
        pickler = pickle.Pickler(buffer, protocol=5)
        pickler.fast = True
        pickler.dump(rows)
        self.digest.update(buffer.getbuffer())

    def hexdigest(self) -> str:
        if self.batch:
            self._dump(self.batch)
            self.batch = []
        return self.digest.hexdigest()


def _checksummed(batches: Iterator[list[tuple]], digest: RowDigest, progress, table: str, total: int):
    for batch in batches:
        before = digest.count
        digest.add(batch)
        if progress and digest.count // PROGRESS_EVERY > before // PROGRESS_EVERY:
            progress(f"  {table}: {digest.count:,} / {total:,}")
        yield batch


def _fingerprint(end, table: str, columns: list[str], kinds: list[str]) -> tuple[int, str]:
    digest = RowDigest()
    for batch in end.batches(table, columns, kinds):
        digest.add(batch)
    return digest.count, digest.hexdigest()


def transfer_database(
    *, source_url: str, target_url: str, replace: bool = False, progress: Callable[[str], None] | None = None
) -> TransferReport:
    """Copy every table from `source_url` to `target_url` (a postgres:// URL or an SQLite file path)."""
    if is_postgres_url(source_url) == is_postgres_url(target_url):
        raise InvalidInput("transfer_database copies between SQLite and PostgreSQL: one side must be each")
    say = progress or (lambda message: None)
    say(f"Migrating the target {target_url.split('@')[-1]} ...")
    created_here = not is_postgres_url(target_url) and not os.path.lexists(
        os.path.expanduser(target_url.removeprefix("sqlite:///"))
    )
    _migrate(target_url)
    source, target = open_endpoint(source_url), open_endpoint(target_url)
    target.created_here = created_here
    try:
        plan = []
        source_tables = source.tables()
        for table in TABLES:
            if table not in source_tables:
                continue
            source_columns, target_columns = source.columns(table), target.columns(table)
            columns = [c for c in source_columns if c in target_columns]
            # SQLite declares the desktop's timestamps TEXT and its flags INTEGER: whichever side knows
            # a column is a timestamp or a boolean decides how both sides hand its values over.
            kinds = [_kind(source_columns[c], target_columns[c]) for c in columns]
            plan.append((table, columns, kinds))

        occupied = {table: n for table, _, _ in plan if (n := target.count(table))}
        if occupied and not replace:
            listed = ", ".join(f"{table} ({n:,} rows)" for table, n in occupied.items())
            raise TransferRefused(f"the target is not empty: {listed}. Use --replace to overwrite it.")

        if target.engine == "postgresql":
            say("Checking the source for values PostgreSQL cannot hold ...")
            problems = [
                message
                for table, columns, _ in plan
                for message in source.problems(table, set(columns), target.exact_kinds(table))
            ]
            if problems:
                raise TransferRefused(
                    "the target cannot hold these values (nothing was written):\n  " + "\n  ".join(problems[:50])
                )

        report = TransferReport()
        target.begin()
        try:
            target.loaded_tables = [table for table, _, _ in plan]
            say("Copying ...")
            target.before_load()
            for table, _, _ in reversed(plan):
                if table in occupied:
                    target.empty(table)
            target_tables = target.tables()
            for table in DERIVED_TABLES:
                if table in target_tables:
                    target.empty(table)
            for table, columns, kinds in plan:
                total = source.count(table)
                say(f"{table}: {total:,} rows")
                digest = RowDigest()
                batches = _checksummed(source.batches(table, columns, kinds), digest, progress, table, total)
                target.write(table, columns, kinds, batches)
                target.reset_sequence(table)
                report.counts[table] = digest.count
                report.checksums[table] = digest.hexdigest()
            say("Building indexes ...")
            target.after_load()
            say("Verifying counts and checksums ...")
            for table, columns, kinds in plan:
                count, checksum = _fingerprint(target, table, columns, kinds)
                if (count, checksum) != (report.counts[table], report.checksums[table]):
                    raise StorageError(
                        f"{table}: the target holds {count:,} rows (checksum {checksum[:12]}) but "
                        f"{report.counts[table]:,} were read (checksum {report.checksums[table][:12]}); nothing kept"
                    )
            target.commit()
        except BaseException:
            target.rollback()
            raise
        return report
    finally:
        source.close()
        target.close()
