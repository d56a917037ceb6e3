"""A second, small band index for recently signed pairs (storage.services.near_duplicates).

Adding a 10,000-pair session's 160,000 band keys to the main band table (16 million rows at a
million pairs) touches nearly every page of its primary key, since the keys are spread evenly
over it: seconds of writes for each new session. Recent band rows go to this small table instead
(same shape, same primary key, so a lookup is one index seek in each) and are merged into the main
table in one sorted pass when it grows past a limit. A new table of ours: nothing is rebuilt.
"""

from django.db import migrations

RECENT_BANDS = "storage_pair_bands_recent"


def create_table(apps, schema_editor):
    without_rowid = " WITHOUT ROWID" if schema_editor.connection.vendor == "sqlite" else ""
    schema_editor.execute(
        f"CREATE TABLE {RECENT_BANDS} (band smallint NOT NULL, hash bigint NOT NULL, pair_id bigint NOT NULL,"
        f" PRIMARY KEY (band, hash, pair_id)){without_rowid}"
    )


def drop_table(apps, schema_editor):
    schema_editor.execute(f"DROP TABLE IF EXISTS {RECENT_BANDS}")


class Migration(migrations.Migration):
    dependencies = [("storage", "0009_postgres_lazy_search")]

    operations = [migrations.RunPython(create_table, drop_table)]
