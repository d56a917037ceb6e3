"""Create FineFoundry's tables, or adopt the ones a desktop database already has.

On SQLite the tables are created with the desktop app's own DDL, so a database we create is
the same file the desktop app would have made: TEXT timestamps with `datetime('now')`
defaults and foreign keys with `ON DELETE CASCADE` / `SET NULL`, which the desktop app
relies on (it deletes a session and lets SQLite delete its pairs). Django 5.2 cannot express
database-level ON DELETE, so it cannot create these tables itself. Elsewhere (PostgreSQL) the
schema editor creates them from the models.

Either way, what an older desktop database lacks (a column, a table, an index) is then added
through the schema editor, which only issues ALTER TABLE ADD COLUMN and CREATE INDEX here:
nothing is rebuilt and no row is touched.

Later migrations must keep to operations that do not make Django rebuild an SQLite table
(AddIndex, nullable AddField, RunSQL); a rebuild would drop the ON DELETE clauses.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

DESKTOP_TABLES_SQLITE = {
    "settings": """
        CREATE TABLE IF NOT EXISTS settings (
            key TEXT PRIMARY KEY,
            value TEXT NOT NULL,
            updated_at TEXT DEFAULT (datetime('now'))
        )""",
    "training_configs": """
        CREATE TABLE IF NOT EXISTS training_configs (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            name TEXT UNIQUE NOT NULL,
            config_json TEXT NOT NULL,
            train_target TEXT,
            created_at TEXT DEFAULT (datetime('now')),
            updated_at TEXT DEFAULT (datetime('now'))
        )""",
    "app_state": """
        CREATE TABLE IF NOT EXISTS app_state (
            key TEXT PRIMARY KEY,
            value TEXT
        )""",
    "scrape_sessions": """
        CREATE TABLE IF NOT EXISTS scrape_sessions (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            source TEXT NOT NULL,
            source_details TEXT,
            dataset_format TEXT DEFAULT 'standard',
            pair_count INTEGER DEFAULT 0,
            created_at TEXT DEFAULT (datetime('now')),
            metadata_json TEXT,
            name TEXT
        )""",
    "scraped_pairs": """
        CREATE TABLE IF NOT EXISTS scraped_pairs (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            session_id INTEGER NOT NULL,
            input_text TEXT NOT NULL,
            output_text TEXT NOT NULL,
            source_url TEXT,
            metadata_json TEXT,
            created_at TEXT DEFAULT (datetime('now')),
            FOREIGN KEY (session_id) REFERENCES scrape_sessions(id) ON DELETE CASCADE
        )""",
    "training_runs": """
        CREATE TABLE IF NOT EXISTS training_runs (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            name TEXT NOT NULL,
            status TEXT DEFAULT 'pending',
            base_model TEXT,
            dataset_source TEXT,
            dataset_id TEXT,
            storage_path TEXT NOT NULL,
            output_dir TEXT,
            adapter_path TEXT,
            checkpoint_path TEXT,
            hp_json TEXT,
            logs_json TEXT,
            started_at TEXT,
            completed_at TEXT,
            created_at TEXT DEFAULT (datetime('now')),
            updated_at TEXT DEFAULT (datetime('now')),
            metadata_json TEXT
        )""",
    "evaluation_runs": """
        CREATE TABLE IF NOT EXISTS evaluation_runs (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            training_run_id INTEGER,
            base_model TEXT NOT NULL,
            adapter_path TEXT,
            benchmark TEXT NOT NULL,
            num_samples INTEGER,
            batch_size INTEGER,
            metrics_json TEXT NOT NULL,
            is_base_eval INTEGER DEFAULT 0,
            created_at TEXT DEFAULT (datetime('now')),
            FOREIGN KEY (training_run_id) REFERENCES training_runs(id) ON DELETE SET NULL
        )""",
    "app_logs": """
        CREATE TABLE IF NOT EXISTS app_logs (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            timestamp TEXT DEFAULT (datetime('now')),
            level TEXT NOT NULL,
            logger TEXT,
            message TEXT NOT NULL,
            module TEXT,
            func_name TEXT,
            line_no INTEGER,
            exc_info TEXT
        )""",
}

MODEL_NAMES = [
    "Setting",
    "TrainingConfig",
    "AppState",
    "ScrapeSession",
    "ScrapedPair",
    "TrainingRun",
    "EvaluationRun",
    "AppLog",
]

DESKTOP_TABLE_NAMES = frozenset(DESKTOP_TABLES_SQLITE)


def create_or_adopt_tables(apps, schema_editor) -> None:
    """Make every FineFoundry table, column and index exist, keeping what is already there."""
    connection = schema_editor.connection
    models = [apps.get_model("storage", name) for name in MODEL_NAMES]
    with connection.cursor() as cursor:
        existing_tables = set(connection.introspection.table_names(cursor))

    # create_model makes a model's indexes itself (as deferred SQL, invisible to introspection
    # until the migration ends), so only the other tables have their indexes checked below.
    indexed_by_create_model = set()
    for model in models:
        table = model._meta.db_table
        if table not in existing_tables:
            if connection.vendor == "sqlite":
                schema_editor.execute(DESKTOP_TABLES_SQLITE[table])
            else:
                schema_editor.create_model(model)
                indexed_by_create_model.add(model)
            continue
        with connection.cursor() as cursor:
            columns = {info.name for info in connection.introspection.get_table_description(cursor, table)}
        for field in model._meta.local_fields:
            if field.column not in columns:
                schema_editor.add_field(model, field)

    for model in models:
        if model in indexed_by_create_model:
            continue
        with connection.cursor() as cursor:
            constraints = connection.introspection.get_constraints(cursor, model._meta.db_table)
        for index in model._meta.indexes:
            if index.name not in constraints:
                schema_editor.add_index(model, index)


def start_new_database(path: Path) -> None:
    """Give a database file we are about to create `auto_vacuum=INCREMENTAL`, then WAL mode.

    auto_vacuum can only be chosen before the file's first page is written (later it takes a full
    VACUUM, which locks every other writer out while it rewrites the file). With it, `clear_logs
    --vacuum` returns freed pages in short steps (storage.services.logs.reclaim_space). The desktop
    app's SQL works the same on such a file. Done with a connection of SQLite's own; on a file that
    another process has meanwhile started, SQLite leaves the setting as it is.
    """
    connection = sqlite3.connect(path, timeout=30, isolation_level=None)
    try:
        connection.execute("PRAGMA auto_vacuum=INCREMENTAL")
        connection.execute("PRAGMA journal_mode=WAL")
    finally:
        connection.close()
