"""PostgreSQL only: pg_trgm indexes for pair search, an index for session pages, JSON stored as text.

Nothing happens on SQLite (its search index is 0002's FTS5 table, and its session index already
orders by id). See storage.search.postgres for why these indexes and settings.
"""

from django.db import migrations

from storage.search import postgres

# Columns of storage.fields.LegacyJSONField: text on PostgreSQL so key order survives. A database
# migrated before this change has them as jsonb; they are turned into text (keys stay as jsonb left them).
# The trigram indexes this migration made on scraped_pairs itself; 0009 replaced them with the lazy
# index's table (they cost ingest 8x). Kept here so the migration history replays as it ran.
OLD_INDEX_STATEMENTS = [
    *(
        f"CREATE INDEX IF NOT EXISTS {name} ON scraped_pairs USING gin (UPPER({column}) gin_trgm_ops)"
        " WITH (fastupdate = on, gin_pending_list_limit = 65536)"
        for name, column in zip(postgres.OLD_TRIGRAM_INDEXES, ("input_text", "output_text"), strict=True)
    ),
    f"CREATE INDEX IF NOT EXISTS {postgres.SESSION_PAGE_INDEX} ON scraped_pairs (session_id, id)",
]

JSON_COLUMNS = {
    "training_configs": ["config_json"],
    "scrape_sessions": ["metadata_json"],
    "scraped_pairs": ["metadata_json"],
    "training_runs": ["hp_json", "logs_json", "metadata_json"],
    "evaluation_runs": ["metrics_json"],
}


def forwards(apps, schema_editor):
    connection = schema_editor.connection
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        for table, columns in JSON_COLUMNS.items():
            for column in columns:
                cursor.execute(
                    "SELECT data_type FROM information_schema.columns WHERE table_name = %s AND column_name = %s",
                    [table, column],
                )
                row = cursor.fetchone()
                if row and row[0] == "jsonb":
                    cursor.execute(f"ALTER TABLE {table} ALTER COLUMN {column} TYPE text USING {column}::text")
        postgres.enable_trigram_extension(cursor)
        for statement in OLD_INDEX_STATEMENTS:
            cursor.execute(statement)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        for name in (*postgres.OLD_TRIGRAM_INDEXES, postgres.SESSION_PAGE_INDEX):
            cursor.execute(f"DROP INDEX IF EXISTS {name}")


class Migration(migrations.Migration):
    dependencies = [("storage", "0002_search_index")]

    operations = [migrations.RunPython(forwards, backwards)]
