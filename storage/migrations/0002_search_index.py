"""Full-text search over scraped_pairs: an FTS5 trigram index where SQLite has FTS5, nothing elsewhere.

See storage.search.index. No model changes and no table rebuild: a virtual table, a one-row
state table and one trigger are added, then every existing pair is indexed (so adopting a
desktop database ends with a complete index).
"""

from django.db import migrations

import storage.search.index


def create_search_index(apps, schema_editor):
    storage.search.index.install(schema_editor.connection)


def drop_search_index(apps, schema_editor):
    storage.search.index.uninstall(schema_editor.connection)


class Migration(migrations.Migration):
    dependencies = [("storage", "0001_initial")]

    operations = [migrations.RunPython(create_search_index, drop_search_index)]
