"""PostgreSQL only: pg_trgm indexes for pair search, an index for session pages, JSON stored as text.

Nothing happens on SQLite (its search index is 0002's FTS5 table, and its session index already
orders by id). See storage.search.postgres for why these indexes and settings.
"""

from django.db import migrations

from storage.search import postgres

# Columns of storage.fields.LegacyJSONField: text on PostgreSQL so key order survives. A database
# migrated before this change has them as jsonb; they are turned into text (keys stay as jsonb left them).
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
        for statement in postgres.create_index_statements():
            cursor.execute(statement)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        for statement in postgres.drop_index_statements():
            cursor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [("storage", "0002_search_index")]

    operations = [migrations.RunPython(forwards, backwards)]
