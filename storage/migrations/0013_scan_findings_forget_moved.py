"""A pair moved to another session forgets its stored findings too, as an edited pair does (0011's trigger).

Stored findings belong to the scan of the session the pair was in. Kept after a move, they made the
old session's scan page count a pair it no longer holds, and the flag vanished anyway at that session's
next scan. Now a pair is flagged by the current scan of its own session only; a moved pair counts as not
scanned until its new session is scanned (the pairs list masks what it shows either way). Moves are
rare (the admin's session field, plain SQL), so the trigger still costs bulk writes nothing.
"""

from django.db import migrations

TRIGGER = "storage_scan_findings_forget_edited"


def sqlite_trigger(columns: str, when: str) -> tuple[str, ...]:
    return (
        f"DROP TRIGGER IF EXISTS {TRIGGER}",
        f"""CREATE TRIGGER {TRIGGER}
            AFTER UPDATE OF {columns} ON scraped_pairs
            WHEN {when}
            BEGIN
                DELETE FROM storage_scan_findings WHERE pair_id = OLD.id;
            END""",
    )


def postgres_trigger(columns: str, when: str) -> tuple[str, ...]:
    # The function 0011 made stays: only the trigger's columns and condition change.
    return (
        f"DROP TRIGGER IF EXISTS {TRIGGER} ON scraped_pairs",
        f"""CREATE TRIGGER {TRIGGER} AFTER UPDATE OF {columns} ON scraped_pairs
            FOR EACH ROW WHEN ({when})
            EXECUTE FUNCTION {TRIGGER}()""",
    )


SQLITE_NEW = sqlite_trigger(
    "id, session_id, input_text, output_text",
    "OLD.input_text IS NOT NEW.input_text OR OLD.output_text IS NOT NEW.output_text"
    " OR OLD.id <> NEW.id OR OLD.session_id IS NOT NEW.session_id",
)
SQLITE_OLD = sqlite_trigger(
    "id, input_text, output_text",
    "OLD.input_text IS NOT NEW.input_text OR OLD.output_text IS NOT NEW.output_text OR OLD.id <> NEW.id",
)
POSTGRES_NEW = postgres_trigger(
    "id, session_id, input_text, output_text",
    "OLD.input_text IS DISTINCT FROM NEW.input_text OR OLD.output_text IS DISTINCT FROM NEW.output_text"
    " OR OLD.id <> NEW.id OR OLD.session_id IS DISTINCT FROM NEW.session_id",
)
POSTGRES_OLD = postgres_trigger(
    "id, input_text, output_text",
    "OLD.input_text IS DISTINCT FROM NEW.input_text OR OLD.output_text IS DISTINCT FROM NEW.output_text"
    " OR OLD.id <> NEW.id",
)


def run(sqlite: tuple[str, ...], postgres: tuple[str, ...]):
    def apply(apps, schema_editor):
        vendor = schema_editor.connection.vendor
        for statement in sqlite if vendor == "sqlite" else postgres if vendor == "postgresql" else ():
            schema_editor.execute(statement)

    return apply


class Migration(migrations.Migration):
    dependencies = [("storage", "0012_pair_filter_indexes")]

    operations = [migrations.RunPython(run(SQLITE_NEW, POSTGRES_NEW), run(SQLITE_OLD, POSTGRES_OLD))]
