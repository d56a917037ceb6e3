"""Tables of ours for near-duplicate search: one MinHash signature per pair, and its LSH band keys.

No foreign key to scraped_pairs, on purpose: the desktop app deletes sessions and pairs with its own
SQL (with foreign keys on), and a cascade would make every such delete also delete 16 band rows
per pair. A row whose pair is gone is an orphan that every lookup ignores (candidates are joined
with scraped_pairs) and that `doctor --fix` or the next signing run prunes; an edited pair is
recognised by its content hash and signed again. Band rows are (band, hash, pair_id), the primary
key, so the lookup of a key is one index seek (WITHOUT ROWID on SQLite: the key is the row).
"""

from django.db import migrations

SIGNATURES = "storage_pair_signatures"
BANDS = "storage_pair_bands"


def create_tables(apps, schema_editor):
    blob = "BLOB" if schema_editor.connection.vendor == "sqlite" else "bytea"
    without_rowid = " WITHOUT ROWID" if schema_editor.connection.vendor == "sqlite" else ""
    schema_editor.execute(
        f"CREATE TABLE {SIGNATURES} (pair_id bigint NOT NULL PRIMARY KEY, content_hash bigint NOT NULL,"
        f" signature {blob} NOT NULL)"
    )
    schema_editor.execute(
        f"CREATE TABLE {BANDS} (band smallint NOT NULL, hash bigint NOT NULL, pair_id bigint NOT NULL,"
        f" PRIMARY KEY (band, hash, pair_id)){without_rowid}"
    )


def drop_tables(apps, schema_editor):
    schema_editor.execute(f"DROP TABLE IF EXISTS {BANDS}")
    schema_editor.execute(f"DROP TABLE IF EXISTS {SIGNATURES}")


class Migration(migrations.Migration):
    dependencies = [
        ("storage", "0007_delete_in_progress"),
    ]

    operations = [migrations.RunPython(create_tables, drop_tables)]
