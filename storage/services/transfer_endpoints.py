"""The two ends of transfer_database: an SQLite file (sqlite3) or a PostgreSQL database (psycopg).

Each end lists a table's columns with a coarse kind (int, text, time, bool, real), streams rows
in primary-key order (PostgreSQL: `COPY (SELECT ...) TO STDOUT`) and writes rows (PostgreSQL:
`COPY ... FROM STDIN`; SQLite: executemany in one transaction). Values are handed over in one
canonical form so both ends, and the checksums, agree: timestamps as UTC
`YYYY-MM-DD HH:MM:SS[.ffffff]`, booleans as bool, JSON as the text stored.
"""

from __future__ import annotations

import datetime as dt
import functools
import itertools
import operator
import re
import sqlite3
from collections.abc import Iterable, Iterator
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
# Rows are read and handed over in batches of this many (a list of tuples each; the last may be shorter).
BATCH_ROWS = 10_000
# Rows per INSERT statement into SQLite: one statement for many rows costs SQLite's per-statement
# work (AUTOINCREMENT's sqlite_sequence lookup and update) once per 100 rows instead of per row.
SQLITE_ROWS_PER_INSERT = 100
# canonical_time's output shape: such text is handed over as it is (its validity was checked before).
CANONICAL_TIME = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.(?!000000)\d{6})?", re.ASCII)
_NOT_NONE = functools.partial(operator.is_not, None)


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


def _all_canonical(batch: list[tuple], column: int) -> bool:
    """Whether every non-NULL value of `column` in `batch` is text in canonical_time's form.

    Iterates in C (map/filter), so a batch of already-canonical timestamps costs no Python per row.
    """
    try:
        return all(map(CANONICAL_TIME.fullmatch, filter(_NOT_NONE, map(operator.itemgetter(column), batch))))
    except TypeError:  # a number or bytes where a timestamp belongs: canonical_time decides
        return False


def _canonical_row(row: tuple, times: list[int], bools: list[int]) -> tuple:
    row = list(row)
    for i in times:
        value = row[i]
        if not (value.__class__ is str and CANONICAL_TIME.fullmatch(value)):
            row[i] = canonical_time(value)
    for i in bools:
        row[i] = None if row[i] is None else bool(row[i])
    return tuple(row)


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
        self.indexes: list[tuple[str, str]] = []
        # Set by transfer_database when this run created the file: nobody else can have it open.
        self.created_here = False
        self.journal_mode = ""  # the file's own mode, when begin() changed it for the load

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

    def batches(self, table: str, columns: list[str], kinds: list[str]) -> Iterator[list[tuple]]:
        """The table's rows in key order, BATCH_ROWS at a time, in the canonical form.

        A batch whose timestamps are all canonical text already (what the desktop app and this
        command write) is handed over as SQLite gave it; only other batches are rebuilt row by row.
        """
        cursor = self.connection.execute(f'SELECT {quoted(columns)} FROM "{table}" ORDER BY "{self.key(table)}"')
        times = [i for i, kind in enumerate(kinds) if kind == "time"]
        bools = [i for i, kind in enumerate(kinds) if kind == "bool"]
        while batch := cursor.fetchmany(BATCH_ROWS):
            if bools or not all(_all_canonical(batch, i) for i in times):
                batch = [_canonical_row(row, times, bools) for row in batch]
            yield batch

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
            # The load also goes straight into the file with a rollback journal (which holds only
            # the few pages the empty schema had) instead of through the WAL, which would write
            # every page twice, once more at the checkpoint; commit() puts the WAL mode back.
            self.connection.execute("PRAGMA synchronous = OFF")
            self.connection.execute("PRAGMA cache_size = -262144")
            self.journal_mode = self.connection.execute("PRAGMA journal_mode").fetchone()[0]
            self.connection.execute("PRAGMA journal_mode = TRUNCATE")
        self.connection.execute("BEGIN IMMEDIATE")

    def commit(self) -> None:
        self.connection.execute("COMMIT")
        if self.journal_mode:
            self.connection.execute(f"PRAGMA journal_mode = {self.journal_mode}")

    def rollback(self) -> None:
        if self.connection.in_transaction:
            self.connection.execute("ROLLBACK")
        if self.journal_mode:
            self.connection.execute(f"PRAGMA journal_mode = {self.journal_mode}")

    def empty(self, table: str) -> None:
        self.connection.execute(f'DELETE FROM "{table}"')

    def write(self, table: str, columns: list[str], kinds: list[str], batches: Iterable[list[tuple]]) -> None:
        """INSERT the batches, SQLITE_ROWS_PER_INSERT rows per statement (sqlite3 stores a bool as 0/1)."""
        width = len(columns)
        limit = self.connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
        per = max(1, min(SQLITE_ROWS_PER_INSERT, limit // width))
        one = f"({', '.join('?' * width)})"
        insert = f'INSERT INTO "{table}" ({quoted(columns)}) VALUES '
        many, execute = insert + ", ".join([one] * per), self.connection.execute
        for batch in batches:
            whole = len(batch) - len(batch) % per
            for start in range(0, whole, per):
                execute(many, list(itertools.chain.from_iterable(batch[start : start + per])))
            if whole < len(batch):
                self.connection.executemany(insert + one, batch[whole:])

    def before_load(self) -> None:
        """Empty the search index: copied pairs keep ids that may lie below its mark (--replace).

        The loaded tables' own indexes are dropped for the load and built again after it, in the
        same transaction (a failed or killed transfer rolls the drop back with the rows): one sort
        per index instead of a B-tree insertion per row.
        """
        from storage.search import index

        if index.FTS_TABLE in self.tables():
            for statement in index.EMPTY_STATEMENTS:
                self.connection.execute(statement)
        marks = ", ".join("?" * len(self.loaded_tables))
        self.indexes = self.connection.execute(
            f"SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL AND tbl_name IN ({marks})",
            self.loaded_tables,
        ).fetchall()
        for name, _ in self.indexes:
            self.connection.execute(f'DROP INDEX "{name}"')

    def after_load(self) -> None:
        for _, sql in self.indexes:
            self.connection.execute(sql)

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
        self.indexes: list[tuple[str, str]] = []
        self.truncated: list[str] = []

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

    def batches(self, table: str, columns: list[str], kinds: list[str]) -> Iterator[list[tuple]]:
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
                if times and not all(_all_canonical(batch, i) for i in times):
                    batch = [_canonical_row(row, times, []) for row in batch]
                yield batch

    def begin(self) -> None:
        self.connection.execute("BEGIN")

    def commit(self) -> None:
        self.connection.execute("COMMIT")

    def rollback(self) -> None:
        self.connection.rollback()

    def empty(self, table: str) -> None:
        if table not in self.truncated:
            self.connection.execute(f'DELETE FROM "{table}"')

    def write(self, table: str, columns: list[str], kinds: list[str], batches: Iterable[list[tuple]]) -> None:
        # FREEZE: rows of a table truncated in this transaction are written frozen and all-visible,
        # so neither the verify pass nor the first readers after the commit rewrite every page to
        # set hint bits (what a million-pair load otherwise pays twice).
        freeze = " WITH (FREEZE)" if table in self.truncated else ""
        statement = f'COPY "{table}" ({quoted(columns)}) FROM STDIN{freeze}'
        with self.connection.cursor() as cursor, cursor.copy(statement) as copy:
            write_row = copy.write_row
            for batch in batches:
                for row in batch:
                    write_row(row)

    def before_load(self) -> None:
        """Empty the search index: copied pairs keep ids that may lie below its mark (--replace).

        scraped_pairs carries no trigram index (storage.search.postgres), so the load runs at COPY
        speed; the search index catches up afterwards (background indexer, or `doctor --fix`).
        In the load's own transaction (a failed or killed transfer rolls all of it back):
        - foreign keys of the loaded tables are dropped and added back after the load: adding one
          checks every row in one join, where keeping it checks each row by a trigger (~50 µs a pair);
        - their secondary indexes (not the primary keys, nor the indexes of UNIQUE constraints)
          are dropped and built again after the load: one sort each instead of an insertion per row;
        - the tables no other table's foreign key points at are TRUNCATEd, which lets COPY FREEZE
          them (see write); the others are emptied with DELETE, by empty(), if they hold rows.
        """
        from storage.search import postgres

        execute = self.connection.execute
        if postgres.TABLE in self.tables():
            for statement in postgres.EMPTY_STATEMENTS:
                execute(statement)
        execute("SET LOCAL maintenance_work_mem = '256MB'")
        loaded = (self.loaded_tables,)
        self.foreign_keys = execute(
            "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint"
            " WHERE contype = 'f' AND connamespace = current_schema()::regnamespace"
            " AND conrelid::regclass::text = ANY(%s)",
            loaded,
        ).fetchall()
        for table, name, _ in self.foreign_keys:
            execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
        self.indexes = execute(
            "SELECT indexrelid::regclass::text, pg_get_indexdef(indexrelid) FROM pg_index"
            " WHERE indrelid::regclass::text = ANY(%s) AND NOT indisprimary"
            " AND NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conindid = indexrelid)",
            loaded,
        ).fetchall()
        for name, _ in self.indexes:
            execute(f"DROP INDEX {name}")
        referenced = {
            table
            for (table,) in execute(
                "SELECT confrelid::regclass::text FROM pg_constraint WHERE contype = 'f'"
                " AND confrelid::regclass::text = ANY(%s)",
                loaded,
            )
        }
        self.truncated = [table for table in self.loaded_tables if table not in referenced]
        if self.truncated:
            execute(f"TRUNCATE {quoted(self.truncated)}")

    def after_load(self) -> None:
        for _, definition in self.indexes:
            self.connection.execute(definition)
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
