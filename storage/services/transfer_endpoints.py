"""The two ends of transfer_database: an SQLite file (sqlite3) or a PostgreSQL database (psycopg).

Each end lists a table's columns with a coarse kind (int, text, time, bool, real), streams rows
in primary-key order (PostgreSQL: `COPY (SELECT ...) TO STDOUT`) and writes rows (PostgreSQL:
`COPY ... FROM STDIN`; SQLite: executemany in one transaction). Values are handed over in one
canonical form so both ends, and the checksums, agree: timestamps as UTC
`YYYY-MM-DD HH:MM:SS[.ffffff]`, booleans as bool, JSON as the text stored.
"""

from __future__ import annotations

import datetime as dt
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
        while batch := cursor.fetchmany(10_000):
            for row in batch:
                if times or bools:
                    row = list(row)
                    for i in times:
                        row[i] = canonical_time(row[i])
                    for i in bools:
                        row[i] = None if row[i] is None else bool(row[i])
                    row = tuple(row)
                yield row

    def problems(self, table: str, columns: dict[str, str], target_kinds: dict[str, str]) -> Iterator[str]:
        """Values a PostgreSQL target cannot hold: NUL characters, out-of-range integers, bad timestamps."""
        key = self.key(table)
        for column, kind in target_kinds.items():
            if column not in columns:
                continue
            if kind == "text":
                found = self.connection.execute(
                    f'SELECT "{key}" FROM "{table}" WHERE instr(CAST("{column}" AS TEXT), char(0)) > 0 LIMIT 5'
                ).fetchall()
                yield from (f"{table}.{column} at {key}={row[0]!r} contains a NUL character" for row in found)
            elif kind == "int4":
                found = self.connection.execute(
                    f'SELECT "{key}", "{column}" FROM "{table}" WHERE "{column}" NOT BETWEEN ? AND ? LIMIT 5',
                    INT4_RANGE,
                ).fetchall()
                yield from (f"{table}.{column} at {key}={r[0]!r}: {r[1]} does not fit a 32-bit integer" for r in found)
            elif kind == "time":
                for ident, value in self.connection.execute(
                    f'SELECT "{key}", "{column}" FROM "{table}" WHERE "{column}" IS NOT NULL'
                ):
                    try:
                        canonical_time(value)
                    except (TypeError, ValueError):
                        yield f"{table}.{column} at {key}={ident!r}: {value!r} is not a timestamp"

    def begin(self) -> None:
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
        udts = dict(self._columns(table))
        times = [i for i, kind in enumerate(kinds) if kind == "time"]
        with self.connection.cursor() as cursor:
            sql = f'COPY (SELECT {quoted(columns)} FROM "{table}" ORDER BY "{self.key(table)}") TO STDOUT'
            with cursor.copy(sql) as copy:
                copy.set_types([udts[column] for column in columns])
                for row in copy.rows():
                    if times:
                        row = list(row)
                        for i in times:
                            row[i] = canonical_time(row[i])
                        row = tuple(row)
                    yield row

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
        """
        from storage.search import postgres

        if postgres.TABLE in self.tables():
            for statement in postgres.EMPTY_STATEMENTS:
                self.connection.execute(statement)

    def after_load(self) -> None:
        # Django's foreign keys are DEFERRABLE INITIALLY DEFERRED: check them now, inside the load's
        # transaction, so a broken reference fails the transfer before the verify pass.
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
