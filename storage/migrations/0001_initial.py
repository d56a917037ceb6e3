"""FineFoundry's eight tables.

The state side is the usual CreateModel list, applied to Django's state only. The database
side is storage.db.schema.create_or_adopt_tables: it creates the tables with the desktop app's
DDL, or adopts the ones an existing desktop database already has, adding only what is missing.
"""

import django.db.models.deletion
import django.db.models.functions.datetime
import storage.fields
from django.db import migrations, models

import storage.db.schema


class Migration(migrations.Migration):
    initial = True

    dependencies = []

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="AppState",
                    fields=[
                        ("key", models.TextField(primary_key=True, serialize=False)),
                        ("value", models.TextField(blank=True, null=True)),
                    ],
                    options={
                        "verbose_name": "app state entry",
                        "verbose_name_plural": "app state",
                        "db_table": "app_state",
                        "ordering": ["key"],
                    },
                ),
                migrations.CreateModel(
                    name="ScrapeSession",
                    fields=[
                        (
                            "id",
                            models.AutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
                            ),
                        ),
                        ("source", models.TextField()),
                        ("source_details", models.TextField(blank=True, null=True)),
                        (
                            "dataset_format",
                            models.TextField(
                                choices=[
                                    ("standard", "Standard"),
                                    ("chatml", "Chatml"),
                                ],
                                db_default="standard",
                                default="standard",
                                null=True,
                            ),
                        ),
                        (
                            "pair_count",
                            models.IntegerField(db_default=0, default=0, null=True),
                        ),
                        (
                            "created_at",
                            storage.fields.TimestampField(
                                blank=True,
                                db_default=django.db.models.functions.datetime.Now(),
                                null=True,
                            ),
                        ),
                        (
                            "metadata",
                            storage.fields.LegacyJSONField(blank=True, db_column="metadata_json", null=True),
                        ),
                        ("name", models.TextField(blank=True, null=True)),
                    ],
                    options={
                        "db_table": "scrape_sessions",
                        "ordering": [
                            models.OrderBy(
                                storage.fields.SortableTimestamp("created_at"),
                                descending=True,
                            ),
                            "-id",
                        ],
                    },
                ),
                migrations.CreateModel(
                    name="Setting",
                    fields=[
                        ("key", models.TextField(primary_key=True, serialize=False)),
                        ("value", models.TextField()),
                        (
                            "updated_at",
                            storage.fields.TimestampField(
                                blank=True,
                                db_default=django.db.models.functions.datetime.Now(),
                                null=True,
                            ),
                        ),
                    ],
                    options={
                        "db_table": "settings",
                        "ordering": ["key"],
                    },
                ),
                migrations.CreateModel(
                    name="AppLog",
                    fields=[
                        (
                            "id",
                            models.AutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
                            ),
                        ),
                        (
                            "timestamp",
                            storage.fields.TimestampField(
                                blank=True,
                                db_default=django.db.models.functions.datetime.Now(),
                                null=True,
                            ),
                        ),
                        (
                            "level",
                            models.TextField(
                                choices=[
                                    ("DEBUG", "Debug"),
                                    ("INFO", "Info"),
                                    ("WARNING", "Warning"),
                                    ("ERROR", "Error"),
                                    ("CRITICAL", "Critical"),
                                ]
                            ),
                        ),
                        ("logger", models.TextField(blank=True, null=True)),
                        ("message", models.TextField()),
                        ("module", models.TextField(blank=True, null=True)),
                        ("func_name", models.TextField(blank=True, null=True)),
                        ("line_no", models.IntegerField(blank=True, null=True)),
                        ("exc_info", models.TextField(blank=True, null=True)),
                    ],
                    options={
                        "db_table": "app_logs",
                        "ordering": [
                            models.OrderBy(
                                storage.fields.SortableTimestamp("timestamp"),
                                descending=True,
                            ),
                            "-id",
                        ],
                        "indexes": [
                            models.Index(fields=["timestamp"], name="idx_app_logs_timestamp"),
                            models.Index(fields=["level"], name="idx_app_logs_level"),
                            models.Index(
                                storage.fields.SortableTimestamp("timestamp"),
                                models.F("id"),
                                name="idx_app_logs_sortable_ts",
                            ),
                        ],
                    },
                ),
                migrations.CreateModel(
                    name="TrainingConfig",
                    fields=[
                        (
                            "id",
                            models.AutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
                            ),
                        ),
                        ("name", models.TextField(unique=True)),
                        (
                            "config",
                            storage.fields.LegacyJSONField(db_column="config_json"),
                        ),
                        ("train_target", models.TextField(blank=True, null=True)),
                        (
                            "created_at",
                            storage.fields.TimestampField(
                                blank=True,
                                db_default=django.db.models.functions.datetime.Now(),
                                null=True,
                            ),
                        ),
                        (
                            "updated_at",
                            storage.fields.TimestampField(
                                blank=True,
                                db_default=django.db.models.functions.datetime.Now(),
                                null=True,
                            ),
                        ),
                    ],
                    options={
                        "db_table": "training_configs",
                        "ordering": ["name"],
                        "indexes": [
                            models.Index(
                                fields=["train_target"],
                                name="idx_training_configs_target",
                            )
                        ],
                    },
                ),
                migrations.CreateModel(
                    name="TrainingRun",
                    fields=[
                        (
                            "id",
                            models.AutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
                            ),
                        ),
                        ("name", models.TextField()),
                        (
                            "status",
                            models.TextField(
                                choices=[
                                    ("pending", "Pending"),
                                    ("running", "Running"),
                                    ("completed", "Completed"),
                                    ("failed", "Failed"),
                                    ("cancelled", "Cancelled"),
                                ],
                                db_default="pending",
                                default="pending",
                                null=True,
                            ),
                        ),
                        ("base_model", models.TextField(blank=True, null=True)),
                        ("dataset_source", models.TextField(blank=True, null=True)),
                        ("dataset_id", models.TextField(blank=True, null=True)),
                        ("storage_path", models.TextField(blank=True, null=True)),
                        ("output_dir", models.TextField(blank=True, null=True)),
                        ("adapter_path", models.TextField(blank=True, null=True)),
                        ("checkpoint_path", models.TextField(blank=True, null=True)),
                        (
                            "hyperparameters",
                            storage.fields.LegacyJSONField(blank=True, db_column="hp_json", null=True),
                        ),
                        (
                            "logs",
                            storage.fields.LegacyJSONField(blank=True, db_column="logs_json", null=True),
                        ),
                        (
                            "started_at",
                            storage.fields.TimestampField(blank=True, null=True),
                        ),
                        (
                            "completed_at",
                            storage.fields.TimestampField(blank=True, null=True),
                        ),
                        (
                            "created_at",
                            storage.fields.TimestampField(
                                blank=True,
                                db_default=django.db.models.functions.datetime.Now(),
                                null=True,
                            ),
                        ),
                        (
                            "updated_at",
                            storage.fields.TimestampField(
                                blank=True,
                                db_default=django.db.models.functions.datetime.Now(),
                                null=True,
                            ),
                        ),
                        (
                            "metadata",
                            storage.fields.LegacyJSONField(blank=True, db_column="metadata_json", null=True),
                        ),
                    ],
                    options={
                        "db_table": "training_runs",
                        "ordering": [
                            models.OrderBy(
                                storage.fields.SortableTimestamp("created_at"),
                                descending=True,
                            ),
                            "-id",
                        ],
                        "indexes": [models.Index(fields=["status"], name="idx_training_runs_status")],
                    },
                ),
                migrations.CreateModel(
                    name="ScrapedPair",
                    fields=[
                        (
                            "id",
                            models.AutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
                            ),
                        ),
                        ("input_text", models.TextField()),
                        ("output_text", models.TextField()),
                        ("source_url", models.TextField(blank=True, null=True)),
                        (
                            "metadata",
                            storage.fields.LegacyJSONField(blank=True, db_column="metadata_json", null=True),
                        ),
                        (
                            "created_at",
                            storage.fields.TimestampField(
                                blank=True,
                                db_default=django.db.models.functions.datetime.Now(),
                                null=True,
                            ),
                        ),
                        (
                            "session",
                            models.ForeignKey(
                                db_index=False,
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="pairs",
                                to="storage.scrapesession",
                            ),
                        ),
                    ],
                    options={
                        "db_table": "scraped_pairs",
                        "ordering": ["id"],
                        "indexes": [models.Index(fields=["session"], name="idx_scraped_pairs_session")],
                    },
                ),
                migrations.CreateModel(
                    name="EvaluationRun",
                    fields=[
                        (
                            "id",
                            models.AutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
                            ),
                        ),
                        ("base_model", models.TextField()),
                        ("adapter_path", models.TextField(blank=True, null=True)),
                        ("benchmark", models.TextField()),
                        ("num_samples", models.IntegerField(blank=True, null=True)),
                        ("batch_size", models.IntegerField(blank=True, null=True)),
                        (
                            "metrics",
                            storage.fields.LegacyJSONField(db_column="metrics_json"),
                        ),
                        (
                            "is_base_eval",
                            models.BooleanField(db_default=False, default=False, null=True),
                        ),
                        (
                            "created_at",
                            storage.fields.TimestampField(
                                blank=True,
                                db_default=django.db.models.functions.datetime.Now(),
                                null=True,
                            ),
                        ),
                        (
                            "training_run",
                            models.ForeignKey(
                                blank=True,
                                db_index=False,
                                null=True,
                                on_delete=django.db.models.deletion.SET_NULL,
                                related_name="evaluations",
                                to="storage.trainingrun",
                            ),
                        ),
                    ],
                    options={
                        "db_table": "evaluation_runs",
                        "ordering": [
                            models.OrderBy(
                                storage.fields.SortableTimestamp("created_at"),
                                descending=True,
                            ),
                            "-id",
                        ],
                        "indexes": [
                            models.Index(
                                fields=["training_run"],
                                name="idx_evaluation_runs_training",
                            ),
                            models.Index(
                                fields=["benchmark"],
                                name="idx_evaluation_runs_benchmark",
                            ),
                        ],
                    },
                ),
            ],
        ),
        # After the state operations, so the function sees the models.
        migrations.RunPython(storage.db.schema.create_or_adopt_tables, migrations.RunPython.noop),
    ]
