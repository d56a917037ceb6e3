"""PostgreSQL only: the lazy search index (storage.search.postgres) replaces 0003's trigram indexes.

The GIN indexes on scraped_pairs made every insert pay for them (ingest 8x slower); the new
table of ours carries them instead and is filled up to a mark, in bulk here for the pairs that
exist, later by the background indexer. The (session_id, id) index stays. Nothing on SQLite.
"""

import importlib

from django.db import migrations

from storage.search import index, postgres


def forwards(apps, schema_editor):
    connection = schema_editor.connection
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        for name in postgres.OLD_TRIGRAM_INDEXES:
            cursor.execute(f"DROP INDEX IF EXISTS {name}")
    index.install(connection, populate=True)


def backwards(apps, schema_editor):
    connection = schema_editor.connection
    if connection.vendor != "postgresql":
        return
    index.uninstall(connection)
    with connection.cursor() as cursor:
        for statement in importlib.import_module("storage.migrations.0003_postgres_search").OLD_INDEX_STATEMENTS:
            cursor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [("storage", "0008_pair_signatures")]

    operations = [migrations.RunPython(forwards, backwards)]
