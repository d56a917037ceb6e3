"""A trigger that makes the database refuse a statement, on either engine (a stricter database, a failing disk)."""

from __future__ import annotations

from django.db import connection


def refuse(table: str, event: str, message: str) -> None:
    """From now on, `event` (INSERT, UPDATE or DELETE) on `table` fails with `message` inside the database."""
    name = f"refuse_{event.lower()}_{table}"
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS "
                f"$$ BEGIN RAISE EXCEPTION '{message}'; END $$"
            )
            cursor.execute(f"CREATE TRIGGER {name} BEFORE {event} ON {table} FOR EACH ROW EXECUTE FUNCTION {name}()")
        else:
            cursor.execute(
                f"CREATE TRIGGER {name} BEFORE {event} ON {table} BEGIN SELECT RAISE(ABORT, '{message}'); END"
            )
