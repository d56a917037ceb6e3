"""How the full-text index compares with scraped_pairs, and the repair each difference calls for (doctor)."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import DatabaseError, connections, transaction

from storage.search import postgres
from storage.search.index import FTS_TABLE, index_pending, install, installed, rebuild, state, supported

# Doctor: this many pairs waiting for the index make every search scan them (~65 ms at 50,000).
PENDING_WORTH_FIXING = 50_000
# Doctor: entries of deleted pairs only cost space; worth a rebuild once they are this many and this share.
STALE_WORTH_FIXING = (10_000, 0.25)


@dataclass
class IndexHealth:
    """What `inspect` found; `problems()` words what is worth repairing."""

    installed: bool
    mark: int = 0
    pending: int = 0
    missing: int = 0
    stale: int = 0
    indexed: int = 0
    sequence_reset: bool = False
    damage: str | None = None

    @property
    def needs_rebuild(self) -> bool:
        stale_count, stale_share = STALE_WORTH_FIXING
        too_stale = self.stale >= stale_count and self.stale >= stale_share * max(self.indexed, 1)
        return bool(self.missing or self.sequence_reset or self.damage or too_stale)

    def problems(self) -> list[str]:
        if not self.installed:
            return ["the search index is missing, so every search scans all pairs"]
        problems = []
        if self.damage:
            problems.append(f"FTS5 integrity-check failed: {self.damage}")
        if self.sequence_reset:
            problems.append("pair ids were reset below the index's mark, so new pairs may be missing from it")
        if self.missing:
            problems.append(f"{self.missing:,} pairs are missing from the search index and cannot be found by search")
        if self.needs_rebuild and self.stale and not (self.damage or self.sequence_reset or self.missing):
            problems.append(f"{self.stale:,} of {self.indexed:,} index entries belong to deleted pairs (wasted space)")
        return problems

    def notes(self) -> list[str]:
        """What is worth saying but normal: new pairs the index has not caught up with yet."""
        if self.installed and self.pending >= PENDING_WORTH_FIXING:
            return [f"{self.pending:,} new pairs are not indexed yet (normal after a large insert; searches scan them)"]
        return []


def inspect(*, using: str = "default", thorough: bool = False) -> IndexHealth | None:
    """Compare the index with scraped_pairs; None where there is no index to have (SQLite without FTS5).

    `thorough` also runs FTS5's own integrity-check, which reads the whole index (~20 s a million pairs).
    """
    connection = connections[using]
    if not supported(connection):
        return None
    if not installed(connection):
        return IndexHealth(installed=False)
    with connection.cursor() as cursor:
        mark, _, sequence = state(cursor)
        if connection.vendor == "postgresql":
            return IndexHealth(True, mark, *postgres.coverage(cursor, mark), sequence is not None and sequence < mark)
        docsize = f"{FTS_TABLE}_docsize"
        cursor.execute(
            "SELECT (SELECT count(*) FROM scraped_pairs WHERE id > %s),"
            " (SELECT count(*) FROM scraped_pairs p WHERE p.id <= %s"
            f"   AND NOT EXISTS (SELECT 1 FROM {docsize} d WHERE d.id = p.id)),"
            f" (SELECT count(*) FROM {docsize} d"
            "   WHERE NOT EXISTS (SELECT 1 FROM scraped_pairs p WHERE p.id = d.id)),"
            f" (SELECT count(*) FROM {docsize})",
            [mark, mark],
        )
        pending, missing, stale, indexed = cursor.fetchone()
    health = IndexHealth(
        installed=True,
        mark=mark,
        pending=pending,
        missing=missing,
        stale=stale,
        indexed=indexed,
        sequence_reset=sequence is not None and sequence < mark,
    )
    if thorough and connection.vendor == "sqlite":
        try:
            with transaction.atomic(using=using), connection.cursor() as cursor:
                cursor.execute(f"INSERT INTO {FTS_TABLE} ({FTS_TABLE}, rank) VALUES ('integrity-check', 0)")
        except DatabaseError as exc:
            health.damage = str(exc)
    return health


def repair(health: IndexHealth, *, using: str = "default") -> str:
    """Do what `health` calls for: install, rebuild, or index the pending pairs; say what was done."""
    connection = connections[using]
    if not health.installed:
        install(connection)
        return "built the index"
    if connection.vendor == "postgresql" and not (health.missing or health.sequence_reset):
        if health.pending >= postgres.BULK_BUILD_PAIRS:
            rebuild(using=using)
            return "rebuilt the index from the pairs"
        with transaction.atomic(using=using), connection.cursor() as cursor:
            pruned = postgres.prune(cursor)
        return f"dropped {pruned:,} entries of deleted pairs, indexed {index_pending(using=using):,} pending pairs"
    if health.needs_rebuild:
        rebuild(using=using)
        return "rebuilt the index from the pairs"
    return f"indexed {index_pending(using=using):,} pending pairs"
