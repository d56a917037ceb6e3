"""One model per FineFoundry table; table, column and index names are the desktop app's contract."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import FullResultSet
from django.db import DatabaseError, models, transaction
from django.db.models import Expression, F, Manager
from django.db.models.functions import Now

from storage.fields import LegacyJSONField, SortableTimestamp, TimestampField


class Setting(models.Model):
    """One application setting; the value is JSON text (raw text from old desktop versions)."""

    key = models.TextField(primary_key=True)
    value = models.TextField()
    updated_at = TimestampField(null=True, blank=True, db_default=Now())

    class Meta:
        db_table = "settings"
        ordering = ["key"]

    def __str__(self) -> str:
        # Never the value: it may be a token.
        return self.key


class AppState(models.Model):
    """A small piece of desktop state, such as the last used training config."""

    key = models.TextField(primary_key=True)
    value = models.TextField(null=True, blank=True)

    class Meta:
        db_table = "app_state"
        ordering = ["key"]
        verbose_name = "app state entry"
        verbose_name_plural = "app state"

    def __str__(self) -> str:
        return self.key


class TrainingConfig(models.Model):
    """A saved training configuration (`hp`, `meta`, ...) the desktop app can load by name."""

    name = models.TextField(unique=True)
    config = LegacyJSONField(db_column="config_json")
    train_target = models.TextField(null=True, blank=True)
    created_at = TimestampField(null=True, blank=True, db_default=Now())
    updated_at = TimestampField(null=True, blank=True, db_default=Now())

    class Meta:
        db_table = "training_configs"
        ordering = ["name"]
        indexes = [models.Index(fields=["train_target"], name="idx_training_configs_target")]

    def __str__(self) -> str:
        return self.name


def hidden_session_ids(connection) -> list[int]:
    """Sessions an import is still writing (ImportInProgress); none before migration 0005."""
    sql = "SELECT session_id FROM storage_imports_in_progress"
    try:
        if connection.vendor != "sqlite" and connection.in_atomic_block:
            # A savepoint, so a missing table cannot abort the caller's transaction on PostgreSQL.
            with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
                cursor.execute(sql)
                return [row[0] for row in cursor.fetchall()]
        with connection.cursor() as cursor:
            cursor.execute(sql)
            return [row[0] for row in cursor.fetchall()]
    except DatabaseError:
        return []


class NotBeingImported(Expression):
    """`field NOT IN (sessions being imported)`, decided when the query runs; no condition at all when none are.

    Decided at run time, not as a subquery: any condition on scraped_pairs, even one that is always
    true, stops SQLite from counting a million rows from the index (9 ms become 200-600 ms, measured),
    and the admin counts pairs on every page.
    """

    conditional = True
    output_field = models.BooleanField()

    def __init__(self, field: str):
        super().__init__()
        self.column = F(field)

    def get_source_expressions(self):
        return [self.column]

    def set_source_expressions(self, expressions):
        (self.column,) = expressions

    def as_sql(self, compiler, connection):
        ids = hidden_session_ids(connection)
        if not ids:
            raise FullResultSet  # Django then leaves the condition out of the WHERE clause
        sql, params = compiler.compile(self.column)
        return f"{sql} NOT IN ({', '.join(['%s'] * len(ids))})", [*params, *ids]


class VisibleSessionManager(models.Manager):
    """Sessions, without those an import is still writing (ImportInProgress): they appear at its last commit."""

    def get_queryset(self):
        return super().get_queryset().filter(NotBeingImported("pk"))


class VisiblePairManager(models.Manager):
    """Pairs, without those of sessions an import is still writing."""

    def get_queryset(self):
        return super().get_queryset().filter(NotBeingImported("session_id"))


class ScrapeSession(models.Model):
    """One scrape, generation, import or merge, and the pairs it produced."""

    class DatasetFormat(models.TextChoices):
        STANDARD = "standard"
        CHATML = "chatml"

    source = models.TextField()
    source_details = models.TextField(null=True, blank=True)
    dataset_format = models.TextField(
        choices=DatasetFormat, null=True, default=DatasetFormat.STANDARD, db_default=DatasetFormat.STANDARD
    )
    pair_count = models.IntegerField(null=True, default=0, db_default=0)
    created_at = TimestampField(null=True, blank=True, db_default=Now())
    metadata = LegacyJSONField(db_column="metadata_json", null=True, blank=True)
    name = models.TextField(null=True, blank=True)

    objects = VisibleSessionManager()
    # Hidden ones too: for the import that writes them, and its cleanup. (ruff takes it for a field.)
    all_objects = Manager()  # noqa: DJ012

    class Meta:
        db_table = "scrape_sessions"
        ordering = [SortableTimestamp("created_at").desc(), "-id"]
        base_manager_name = "all_objects"

    def __str__(self) -> str:
        return self.label

    @property
    def label(self) -> str:
        return self.name or f"{self.source} #{self.pk}"


class ScrapedPair(models.Model):
    """One input/output pair for fine-tuning."""

    session = models.ForeignKey(ScrapeSession, on_delete=models.CASCADE, related_name="pairs", db_index=False)
    input_text = models.TextField()
    output_text = models.TextField()
    source_url = models.TextField(null=True, blank=True)
    metadata = LegacyJSONField(db_column="metadata_json", null=True, blank=True)
    created_at = TimestampField(null=True, blank=True, db_default=Now())

    objects = VisiblePairManager()
    all_objects = Manager()  # noqa: DJ012

    class Meta:
        db_table = "scraped_pairs"
        ordering = ["id"]
        base_manager_name = "all_objects"
        indexes = [models.Index(fields=["session"], name="idx_scraped_pairs_session")]

    def __str__(self) -> str:
        return f"pair {self.pk}"


class ImportInProgress(models.Model):
    """A session an import is still writing: hidden from this app until its last commit.

    Ours, not the desktop app's (which sees the session meanwhile; see storage.services.datasets.import_sessions).
    No foreign key constraint, so the desktop app can still delete the session with its own SQL.
    """

    class State(models.TextChoices):
        WRITING = "writing"  # rows still going into the hidden session: a dead import is rolled back
        MOVING = "moving"  # an append moving its rows into the target: a dead import is completed
        DELETING = "deleting"  # a session being deleted in batches: a dead delete is finished

    session = models.OneToOneField(
        ScrapeSession, on_delete=models.DO_NOTHING, primary_key=True, db_constraint=False, related_name="+"
    )
    target_session_id = models.IntegerField(null=True, blank=True)
    state = models.TextField(choices=State, default=State.WRITING)
    path = models.TextField()
    host = models.TextField()
    pid = models.IntegerField()
    started_at = models.FloatField()
    heartbeat_at = models.FloatField()  # time.time() at the import's last commit

    class Meta:
        db_table = "storage_imports_in_progress"
        ordering = ["session_id"]

    def __str__(self) -> str:
        return f"import of {self.path} into session {self.target_session_id or self.session_id}"


class Job(models.Model):
    """A background job started from the admin: what it is, who asked, how far it got, what came of it.

    Ours (storage/jobs/): the task backend's own row (django_tasks_db) knows the task, not its progress or report.
    """

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    task_id = models.TextField(blank=True, default="")
    kind = models.TextField()
    label = models.TextField()
    params = models.JSONField(default=dict)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    status = models.TextField(choices=Status, default=Status.QUEUED)
    progress_done = models.BigIntegerField(default=0)
    progress_total = models.BigIntegerField(null=True, blank=True)
    message = models.TextField(blank=True, default="")
    result = models.JSONField(null=True, blank=True)
    # Relative to settings.FINEFOUNDRY_JOBS_DIR; storage/jobs/files.py resolves it and refuses anything outside.
    result_file = models.TextField(blank=True, default="")
    error = models.TextField(blank=True, default="")
    # The model whose view permission a download needs ("storage.view_scrapesession").
    view_permission = models.TextField(blank=True, default="")
    worker_host = models.TextField(blank=True, default="")
    worker_pid = models.IntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "storage_jobs"
        ordering = ["-id"]
        indexes = [models.Index(fields=["status"], name="idx_storage_jobs_status")]

    def __str__(self) -> str:
        return f"job {self.pk}: {self.label}"

    @property
    def finished(self) -> bool:
        return self.status in (self.Status.SUCCEEDED, self.Status.FAILED)


class SessionScan(models.Model):
    """One safe-to-publish scan of one session (storage/services/scan_findings.py): when, how much, its state.

    Ours. Readers use only the `current` scan of a session: a new scan writes its findings under its own
    row (`writing`) in short transactions and becomes current in one short transaction at the end.
    """

    class Status(models.TextChoices):
        WRITING = "writing"
        CURRENT = "current"
        SUPERSEDED = "superseded"

    session_id = models.IntegerField()  # no foreign key: the desktop app deletes sessions with its own SQL
    status = models.TextField(choices=Status, default=Status.WRITING)
    job_id = models.IntegerField(null=True, blank=True)
    started_at = models.DateTimeField()
    scanned_at = models.DateTimeField(null=True, blank=True)
    pairs_scanned = models.BigIntegerField(default=0)

    class Meta:
        db_table = "storage_scans"
        ordering = ["-id"]
        indexes = [models.Index(fields=["session_id", "status"], name="idx_storage_scans_session")]

    def __str__(self) -> str:
        return f"scan {self.pk} of session {self.session_id}"


class ScanFinding(models.Model):
    """Where the scan found something in a pair: offsets only, never the text found.

    No foreign key to scraped_pairs (as the near-duplicate signatures): a finding of a deleted pair is an
    orphan every reader skips (joined with the pairs) and doctor prunes; an edit deletes the pair's findings
    (a trigger on scraped_pairs, migration 0011), so an edited text is never shown as flagged by old offsets.
    """

    scan_id = models.IntegerField()
    pair_id = models.BigIntegerField()
    side = models.TextField()  # "input" or "output"
    kind = models.TextField()  # storage.sensitive_text.KINDS
    start = models.IntegerField()
    end = models.IntegerField()
    scanned_at = models.DateTimeField()

    class Meta:
        db_table = "storage_scan_findings"
        ordering = ["pair_id", "side", "start"]
        indexes = [
            models.Index(fields=["pair_id"], name="idx_scan_findings_pair"),
            models.Index(fields=["scan_id", "kind", "pair_id"], name="idx_scan_findings_scan_kind"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} in pair {self.pair_id} {self.side} [{self.start}:{self.end}]"


class TrainingRun(models.Model):
    """One fine-tuning run and where its artefacts live."""

    class Status(models.TextChoices):
        PENDING = "pending"
        RUNNING = "running"
        COMPLETED = "completed"
        FAILED = "failed"
        CANCELLED = "cancelled"

    name = models.TextField()
    status = models.TextField(choices=Status, null=True, default=Status.PENDING, db_default=Status.PENDING)
    base_model = models.TextField(null=True, blank=True)
    dataset_source = models.TextField(null=True, blank=True)
    dataset_id = models.TextField(null=True, blank=True)
    storage_path = models.TextField(null=True, blank=True)
    output_dir = models.TextField(null=True, blank=True)
    adapter_path = models.TextField(null=True, blank=True)
    checkpoint_path = models.TextField(null=True, blank=True)
    hyperparameters = LegacyJSONField(db_column="hp_json", null=True, blank=True)
    logs = LegacyJSONField(db_column="logs_json", null=True, blank=True)
    started_at = TimestampField(null=True, blank=True)
    completed_at = TimestampField(null=True, blank=True)
    created_at = TimestampField(null=True, blank=True, db_default=Now())
    updated_at = TimestampField(null=True, blank=True, db_default=Now())
    metadata = LegacyJSONField(db_column="metadata_json", null=True, blank=True)

    class Meta:
        db_table = "training_runs"
        ordering = [SortableTimestamp("created_at").desc(), "-id"]
        indexes = [models.Index(fields=["status"], name="idx_training_runs_status")]

    def __str__(self) -> str:
        # The desktop app lets a run's name be empty.
        return self.name or "(unnamed)"

    @property
    def attempts(self) -> list[dict]:
        """Earlier attempts of a re-run run (oldest first), as kept in its metadata."""
        attempts = self.metadata.get("attempts") if isinstance(self.metadata, dict) else None
        return [attempt for attempt in attempts if isinstance(attempt, dict)] if isinstance(attempts, list) else []


class EvaluationRun(models.Model):
    """A benchmark evaluation of a base model or of a training run's adapter."""

    training_run = models.ForeignKey(
        TrainingRun,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="evaluations",
        db_index=False,
    )
    base_model = models.TextField()
    adapter_path = models.TextField(null=True, blank=True)
    benchmark = models.TextField()
    num_samples = models.IntegerField(null=True, blank=True)
    batch_size = models.IntegerField(null=True, blank=True)
    metrics = LegacyJSONField(db_column="metrics_json")
    is_base_eval = models.BooleanField(null=True, default=False, db_default=False)
    created_at = TimestampField(null=True, blank=True, db_default=Now())

    class Meta:
        db_table = "evaluation_runs"
        ordering = [SortableTimestamp("created_at").desc(), "-id"]
        indexes = [
            models.Index(fields=["training_run"], name="idx_evaluation_runs_training"),
            models.Index(fields=["benchmark"], name="idx_evaluation_runs_benchmark"),
        ]

    def __str__(self) -> str:
        return f"{self.benchmark} on {self.base_model}"


class AppLog(models.Model):
    """One record of a FineFoundry logger."""

    class Level(models.TextChoices):
        DEBUG = "DEBUG"
        INFO = "INFO"
        WARNING = "WARNING"
        ERROR = "ERROR"
        CRITICAL = "CRITICAL"

    timestamp = TimestampField(null=True, blank=True, db_default=Now())
    level = models.TextField(choices=Level)
    logger = models.TextField(null=True, blank=True)
    message = models.TextField()
    module = models.TextField(null=True, blank=True)
    func_name = models.TextField(null=True, blank=True)
    line_no = models.IntegerField(null=True, blank=True)
    exc_info = models.TextField(null=True, blank=True)

    class Meta:
        db_table = "app_logs"
        ordering = [SortableTimestamp("timestamp").desc(), "-id"]
        indexes = [
            models.Index(fields=["timestamp"], name="idx_app_logs_timestamp"),
            models.Index(fields=["level"], name="idx_app_logs_level"),
            # Ours: serves ordering and date filters, which compare the normalised timestamp.
            models.Index(SortableTimestamp("timestamp"), "id", name="idx_app_logs_sortable_ts"),
        ]

    def __str__(self) -> str:
        # Shown in page titles and kept for ever in the admin history: never any of the message, which
        # may hold a secret the desktop app logged in plain text.
        return f"log record {self.pk} ({self.level}, {self.logger or 'no logger'})"
