"""Indexes for the pairs list's length and metadata filters (storage/admin/pair_filters.py).

Each indexes the filter's expression, then the id: a filter matching few pairs or none reads its
index entries newest first instead of walking the table. The expressions are the filters' SQL
exactly (LengthClass, HoldsMetadata), on built-in deterministic functions, so the desktop app's
plain sqlite3 keeps writing the table as before. Indexes only: no table is rebuilt.
"""

from django.db import migrations

INPUT_SIZE = "CASE WHEN length(input_text) < 200 THEN 0 WHEN length(input_text) <= 2000 THEN 1 ELSE 2 END"
OUTPUT_SIZE = "CASE WHEN length(output_text) < 200 THEN 0 WHEN length(output_text) <= 2000 THEN 1 ELSE 2 END"
HOLDS_METADATA = "CASE WHEN metadata_json IS NULL OR metadata_json IN ('', '{}', '[]', 'null') THEN 0 ELSE 1 END"
URL_INDEX = "scraped_pairs_source_url"
INDEXES = {
    "scraped_pairs_input_size": INPUT_SIZE,
    "scraped_pairs_output_size": OUTPUT_SIZE,
    "scraped_pairs_holds_metadata": HOLDS_METADATA,
}


class Migration(migrations.Migration):
    dependencies = [("storage", "0011_scan_findings")]

    operations = [
        *(
            migrations.RunSQL(
                f"CREATE INDEX IF NOT EXISTS {name} ON scraped_pairs (({expression}), id)",
                f"DROP INDEX IF EXISTS {name}",
            )
            for name, expression in INDEXES.items()
        ),
        # The domain filter reads URLs from here, not from the table's rows (which hold the texts).
        migrations.RunSQL(
            f"CREATE INDEX IF NOT EXISTS {URL_INDEX} ON scraped_pairs (source_url) WHERE source_url IS NOT NULL",
            f"DROP INDEX IF EXISTS {URL_INDEX}",
        ),
    ]
