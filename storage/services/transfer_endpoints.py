"""The two ends of transfer_database: an SQLite file (sqlite3) or a PostgreSQL database (psycopg).

Each end lists a table's columns with a coarse kind (int, text, time, bool, real), streams rows
in primary-key order (PostgreSQL: `COPY (SELECT ...) TO STDOUT`) and writes rows (PostgreSQL:
`COPY ... FROM STDIN`; SQLite: executemany in one transaction). Values are handed over in one
canonical form so both ends, and the checksums, agree: timestamps as UTC
`YYYY-MM-DD HH:MM:SS[.ffffff]`, booleans as bool, JSON as the text stored.
"""

from __future__ import annotations

import datetime as dt
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path

KINDS_SQLITE = {"INTEGER": "int", "BIGINT": "int", "BOOL": "bool", "REAL": "real", "DATETIME": "time"}
KINDS_POSTGRES = {
    "int2": "int",
    "int4": "int",
    "int8": "int",
    "bool": "bool",
    "float4": "real",
    "float8": "real",
    "numeric": "real",
    "timestamptz": "time",
    "timestamp": "time",
}
INT4_RANGE = (-(2**31), 2**31 - 1)
# Rows are read and handed over in batches of this many.
BATCH_ROWS = 10_000
# canonical_time's output shape: such text is handed over as it is (its validity was checked before).
CANONICAL_TIME = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.(?!000000)\d{6})?")


def canonical_time_sqlite(column: str) -> str:
    """SQL: the value is text in canonical_time's shape and a real date and time (SQLite's own strftime
    gives it back unchanged; it rolls 02-31 or 24:00 over). Only the other values need Python's check."""
    c = f'"{column}"'
    return (
        f"(typeof({c}) = 'text' AND length({c}) IN (19, 26)"
        f" AND {c} GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9] [0-9][0-9]:[0-9][0-9]:[0-9][0-9]*'"
        f" AND strftime('%Y-%m-%d %H:%M:%S', {c}) = substr({c}, 1, 19)"
        f" AND (length({c}) = 19 OR (substr({c}, 20, 7) GLOB '.[0-9][0-9][0-9][0-9][0-9][0-9]'"
        f" AND substr({c}, 21) <> '000000')))"
    )


def canonical_time_postgres(column: str, udt: str) -> str:
    """SQL giving canonical_time's text for a timestamp column, so PostgreSQL formats it, not Python."""
    value = f"\"{column}\" AT TIME ZONE 'UTC'" if udt == "timestamptz" else f'"{column}"'
    return (
        f'CASE WHEN extract(microseconds FROM "{column}")::bigint % 1000000 = 0'
        f" THEN to_char({value}, 'YYYY-MM-DD HH24:MI:SS') ELSE to_char({value}, 'YYYY-MM-DD HH24:MI:SS.US') END"
    )


def canonical_time(value) -> str | None:
    """A timestamp in the one form both ends get: UTC `YYYY-MM-DD HH:MM:SS[.ffffff]` (the desktop app's)."""
    if value is None:
        return None
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value.strip())
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return value.isoformat(sep=" ", timespec="microseconds" if value.microsecond else "seconds")


def is_postgres_url(url: str) -> bool:
    return url.startswith(("postgres://", "postgresql://"))


def open_endpoint(url: str):
    return PostgresEnd(url) if is_postgres_url(url) else SQLiteEnd(url)


class SQLiteEnd:
    engine = "sqlite"

    def __init__(self, url: str):
        self.path = Path(url.removeprefix("sqlite:///")).expanduser().resolve()
        self.label = str(self.path)
        self.connection = sqlite3.connect(self.path, isolation_level=None)
        self.connection.execute("PRAGMA busy_timeout = 30000")
        self.loaded_tables: list[str] = []
        # Set by transfer_database when this run created the file: nobody else can have it open.
        self.created_here = False

    def close(self) -> None:
        self.connection.close()

    def tables(self) -> set[str]:
        return {row[0] for row in self.connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}

    def columns(self, table: str) -> dict[str, str]:
        rows = self.connection.execute(f'PRAGMA table_info("{table}")').fetchall()
        return {
            name: KINDS_SQLITE.get((declared or "").split("(")[0].upper(), "text") for _, name, declared, *_ in rows
        }

    def key(self, table: str) -> str:
        rows = self.connection.execute(f'PRAGMA table_info("{table}")').fetchall()
        return next((name for _, name, _, _, _, pk in rows if pk == 1), rows[0][1])

    def count(self, table: str) -> int:
        return self.connection.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]

    def rows(self, table: str, columns: list[str], kinds: list[str]) -> Iterator[tuple]:
        cursor = self.connection.execute(f'SELECT {quoted(columns)} FROM "{table}" ORDER BY "{self.key(table)}"')
        times = [i for i, kind in enumerate(kinds) if kind == "time"]
        bools = [i for i, kind in enumerate(kinds) if kind == "bool"]
        canonical = CANONICAL_TIME.fullmatch
        while batch := cursor.fetchmany(BATCH_ROWS):
            for row in batch:
                if times or bools:
                    row = list(row)
                    for i in times:
                        value = row[i]
                        if not (value.__class__ is str and canonical(value)):
                            row[i] = canonical_time(value)
                    for i in bools:
                        row[i] = None if row[i] is None else bool(row[i])
                    row = tuple(row)
                yield row

    def problems(self, table: str, columns: dict[str, str], target_kinds: dict[str, str]) -> Iterator[str]:
        """Values a PostgreSQL target cannot hold: NUL characters, out-of-range integers, bad timestamps.

        One scan of the table for every column's test (a scan per column took longer than the copy);
        a timestamp SQL cannot vouch for is then parsed by canonical_time, the load's own rule.
        """
        key = self.key(table)
        tests = []
        for column, kind in target_kinds.items():
            if column not in columns:
                continue
            if kind == "text":
                tests.append((column, kind, f'instr(CAST("{column}" AS TEXT), char(0)) > 0'))
            elif kind == "int4":
                tests.append((column, kind, f'"{column}" NOT BETWEEN {INT4_RANGE[0]} AND {INT4_RANGE[1]}'))
            elif kind == "time":
                tests.append((column, kind, f'"{column}" IS NOT NULL AND NOT {canonical_time_sqlite(column)}'))
        if not tests:
            return
        flags = ", ".join(f"coalesce({test}, 0)" for _, _, test in tests)
        values = ", ".join(f'"{column}"' for column, _, _ in tests)
        either = " OR ".join(f"({test})" for _, _, test in tests)
        reported = dict.fromkeys((column for column, _, _ in tests), 0)
        for ident, *found in self.connection.execute(
            f'SELECT "{key}", {flags}, {values} FROM "{table}" WHERE {either}'
        ):
            for (column, kind, _), flag, value in zip(tests, found, found[len(tests) :], strict=False):
                if not flag or reported[column] >= 5:
                    continue
                if kind == "text":
                    message = f"{table}.{column} at {key}={ident!r} contains a NUL character"
                elif kind == "int4":
                    message = f"{table}.{column} at {key}={ident!r}: {value} does not fit a 32-bit integer"
                else:
                    try:
                        canonical_time(value)
                        continue
                    except (TypeError, ValueError):
                        message = f"{table}.{column} at {key}={ident!r}: {value!r} is not a timestamp"
                reported[column] += 1
                yield message
            if all(count >= 5 for count in reported.values()):
                return

    def begin(self) -> None:
        if self.created_here:
            # A file this transfer created: no other process uses it yet, and if the machine fails
            # mid-load it is a half-made copy to throw away anyway, so skip the fsyncs and give the
            # load a large page cache (this connection only; set outside the transaction, as SQLite requires).
            self.connection.execute("PRAGMA synchronous = OFF")
            self.connection.execute("PRAGMA cache_size = -262144")
        self.connection.execute("BEGIN IMMEDIATE")

    def commit(self) -> None:
        self.connection.execute("COMMIT")

    def rollback(self) -> None:
        if self.connection.in_transaction:
            self.connection.execute("ROLLBACK")

    def empty(self, table: str) -> None:
        self.connection.execute(f'DELETE FROM "{table}"')

    def write(self, table: str, columns: list[str], kinds: list[str], rows: Iterator[tuple]) -> None:
        bools = [i for i, kind in enumerate(kinds) if kind == "bool"]

        def stored(row):
            if bools:
                row = list(row)
                for i in bools:
                    row[i] = None if row[i] is None else int(row[i])
            return row

        placeholders = ", ".join("?" * len(columns))
        self.connection.executemany(
            f'INSERT INTO "{table}" ({quoted(columns)}) VALUES ({placeholders})', (stored(r) for r in rows)
        )

    def before_load(self) -> None:
        """Empty the search index: copied pairs keep ids that may lie below its mark (--replace)."""
        from storage.search import index

        if index.FTS_TABLE in self.tables():
            for statement in index.EMPTY_STATEMENTS:
                self.connection.execute(statement)

    def after_load(self) -> None:
        pass

    def reset_sequence(self, table: str) -> None:
        """AUTOINCREMENT tables: SQLite raised sqlite_sequence to the largest id inserted already."""


class PostgresEnd:
    engine = "postgresql"

    def __init__(self, url: str):
        import psycopg

        self.label = url.split("@")[-1]
        self.connection = psycopg.connect(url.replace("postgres://", "postgresql://", 1), autocommit=True)
        self.connection.execute("SET TIME ZONE 'UTC'")
        self.loaded_tables: list[str] = []
        self.foreign_keys: list[tuple[str, str, str]] = []

    def close(self) -> None:
        self.connection.close()

    def tables(self) -> set[str]:
        rows = self.connection.execute("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
        return {row[0] for row in rows}

    def _columns(self, table: str) -> list[tuple[str, str]]:
        return self.connection.execute(
            "SELECT column_name, udt_name FROM information_schema.columns"
            " WHERE table_schema = current_schema() AND table_name = %s ORDER BY ordinal_position",
            (table,),
        ).fetchall()

    def columns(self, table: str) -> dict[str, str]:
        return {name: KINDS_POSTGRES.get(udt, "text") for name, udt in self._columns(table)}

    def exact_kinds(self, table: str) -> dict[str, str]:
        """Kinds for the pre-write check: int4 columns are told apart from wider integers."""
        return {
            name: "int4" if udt == "int4" else KINDS_POSTGRES.get(udt, "text") for name, udt in self._columns(table)
        }

    def key(self, table: str) -> str:
        row = self.connection.execute(
            "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]"
            " WHERE i.indrelid = %s::regclass AND i.indisprimary",
            (f'"{table}"',),
        ).fetchone()
        return row[0] if row else self._columns(table)[0][0]

    def count(self, table: str) -> int:
        return self.connection.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]

    def rows(self, table: str, columns: list[str], kinds: list[str]) -> Iterator[tuple]:
        """Rows in key order through a server-side cursor, a batch per round trip (COPY TO hands
        psycopg one row per wait, which cost more than the rows' conversion); timestamps formatted
        by PostgreSQL in canonical_time's form."""
        udts = dict(self._columns(table))
        selected = []
        times = []
        for i, (column, kind) in enumerate(zip(columns, kinds, strict=True)):
            if kind == "time" and udts[column] in ("timestamptz", "timestamp"):
                selected.append(canonical_time_postgres(column, udts[column]))
            else:
                selected.append(f'"{column}"')
                if kind == "time":
                    times.append(i)
        sql = f'SELECT {", ".join(selected)} FROM "{table}" ORDER BY "{self.key(table)}"'
        with self.connection.transaction(), self.connection.cursor(name=f"transfer_{table}") as cursor:
            cursor.itersize = BATCH_ROWS
            cursor.execute(sql)
            while batch := cursor.fetchmany(BATCH_ROWS):
                if not times:
                    yield from batch
                    continue
                for row in batch:
                    row = list(row)
                    for i in times:
                        row[i] = canonical_time(row[i])
                    yield tuple(row)

    def begin(self) -> None:
        self.connection.execute("BEGIN")

    def commit(self) -> None:
        self.connection.execute("COMMIT")

    def rollback(self) -> None:
        self.connection.rollback()

    def empty(self, table: str) -> None:
        self.connection.execute(f'DELETE FROM "{table}"')

    def write(self, table: str, columns: list[str], kinds: list[str], rows: Iterator[tuple]) -> None:
        with self.connection.cursor() as cursor, cursor.copy(f'COPY "{table}" ({quoted(columns)}) FROM STDIN') as copy:
            for row in rows:
                copy.write_row(row)

    def before_load(self) -> None:
        """Empty the search index: copied pairs keep ids that may lie below its mark (--replace).

        scraped_pairs carries no trigram index (storage.search.postgres), so the load runs at COPY
        speed; the search index catches up afterwards (background indexer, or `doctor --fix`).
        Foreign keys of the loaded tables are dropped for the load and added back after it, in the
        same transaction: adding one checks every row in one join, where keeping it checks each row
        by a trigger (~50 µs a pair here, most of a million-pair load).
        """
        from storage.search import postgres

        if postgres.TABLE in self.tables():
            for statement in postgres.EMPTY_STATEMENTS:
                self.connection.execute(statement)
        self.connection.execute("SET LOCAL maintenance_work_mem = '256MB'")
        self.foreign_keys = self.connection.execute(
            "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint"
            " WHERE contype = 'f' AND connamespace = current_schema()::regnamespace"
            " AND conrelid::regclass::text = ANY(%s)",
            (self.loaded_tables,),
        ).fetchall()
        for table, name, _ in self.foreign_keys:
            self.connection.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')

    def after_load(self) -> None:
        for table, name, definition in self.foreign_keys:
            self.connection.execute(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')
        # Any deferred check still pending fails the transfer now, before the verify pass.
        self.connection.execute("SET CONSTRAINTS ALL IMMEDIATE")

    def reset_sequence(self, table: str) -> None:
        """Set an id column's sequence past the largest id copied, so the next insert gets a new id."""
        key = self.key(table)
        sequence = self.connection.execute("SELECT pg_get_serial_sequence(%s, %s)", (f'"{table}"', key)).fetchone()[0]
        if sequence:
            self.connection.execute(
                f'SELECT setval(%s, COALESCE((SELECT max("{key}") FROM "{table}"), 1),'
                f' (SELECT max("{key}") FROM "{table}") IS NOT NULL)',
                (sequence,),
            )


def quoted(columns: list[str]) -> str:
    return ", ".join(f'"{column}"' for column in columns)
