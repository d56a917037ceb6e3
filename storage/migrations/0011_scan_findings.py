"""Tables of ours for the safe-to-publish scan's stored findings, and a trigger that forgets an edited pair's.

`storage_scans` is one scan of one session; `storage_scan_findings` its findings (offsets only, never the text
found). No foreign key to the desktop tables: the desktop app deletes pairs and sessions with its own SQL, a
finding of a deleted pair is skipped by every reader (joined with scraped_pairs) and pruned by doctor. An edit
of a pair's text (this app's or the desktop app's plain SQL) deletes its findings in the same statement, so
old offsets are never shown as current for a new text; updates are rare, so the trigger costs nothing in bulk.
"""

from django.db import migrations, models

TRIGGER = "storage_scan_findings_forget_edited"
SQLITE_TRIGGER = f"""CREATE TRIGGER IF NOT EXISTS {TRIGGER}
    AFTER UPDATE OF id, input_text, output_text ON scraped_pairs
    WHEN OLD.input_text IS NOT NEW.input_text OR OLD.output_text IS NOT NEW.output_text OR OLD.id <> NEW.id
    BEGIN
        DELETE FROM storage_scan_findings WHERE pair_id = OLD.id;
    END"""
POSTGRES_STATEMENTS = (
    f"""CREATE OR REPLACE FUNCTION {TRIGGER}() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            DELETE FROM storage_scan_findings WHERE pair_id = OLD.id;
            RETURN NULL;
        END
    $$""",
    f"DROP TRIGGER IF EXISTS {TRIGGER} ON scraped_pairs",
    f"""CREATE TRIGGER {TRIGGER} AFTER UPDATE OF id, input_text, output_text ON scraped_pairs
        FOR EACH ROW WHEN (OLD.input_text IS DISTINCT FROM NEW.input_text
                           OR OLD.output_text IS DISTINCT FROM NEW.output_text OR OLD.id <> NEW.id)
        EXECUTE FUNCTION {TRIGGER}()""",
)


def create_trigger(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    statements = (SQLITE_TRIGGER,) if vendor == "sqlite" else POSTGRES_STATEMENTS if vendor == "postgresql" else ()
    for statement in statements:
        schema_editor.execute(statement)


def drop_trigger(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "sqlite":
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {TRIGGER}")
    elif vendor == "postgresql":
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {TRIGGER} ON scraped_pairs")
        schema_editor.execute(f"DROP FUNCTION IF EXISTS {TRIGGER}()")


class Migration(migrations.Migration):
    dependencies = [
        ("storage", "0010_near_duplicate_band_index"),
    ]

    operations = [
        migrations.CreateModel(
            name="ScanFinding",
            fields=[
                ("id", models.AutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("scan_id", models.IntegerField()),
                ("pair_id", models.BigIntegerField()),
                ("side", models.TextField()),
                ("kind", models.TextField()),
                ("start", models.IntegerField()),
                ("end", models.IntegerField()),
                ("scanned_at", models.DateTimeField()),
            ],
            options={
                "db_table": "storage_scan_findings",
                "ordering": ["pair_id", "side", "start"],
                "indexes": [
                    models.Index(fields=["pair_id"], name="idx_scan_findings_pair"),
                    models.Index(fields=["scan_id", "kind", "pair_id"], name="idx_scan_findings_scan_kind"),
                ],
            },
        ),
        migrations.CreateModel(
            name="SessionScan",
            fields=[
                ("id", models.AutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("session_id", models.IntegerField()),
                (
                    "status",
                    models.TextField(
                        choices=[("writing", "Writing"), ("current", "Current"), ("superseded", "Superseded")],
                        default="writing",
                    ),
                ),
                ("job_id", models.IntegerField(blank=True, null=True)),
                ("started_at", models.DateTimeField()),
                ("scanned_at", models.DateTimeField(blank=True, null=True)),
                ("pairs_scanned", models.BigIntegerField(default=0)),
            ],
            options={
                "db_table": "storage_scans",
                "ordering": ["-id"],
                "indexes": [models.Index(fields=["session_id", "status"], name="idx_storage_scans_session")],
            },
        ),
        migrations.RunPython(create_trigger, drop_trigger),
    ]
