"""Training runs: their life cycle (pending → running → completed | failed | cancelled, re-run) and artefacts."""

from __future__ import annotations

import datetime as dt
import os
import shutil
from pathlib import Path
from typing import Any

from django.db import transaction
from django.db.models import F, OuterRef, QuerySet, Subquery, TextField, Value
from django.db.models.functions import Cast, Coalesce, Concat
from django.utils import timezone

from storage.exceptions import InvalidInput, InvalidTransition, NotFound, StorageError
from storage.models import ScrapeSession, TrainingRun
from storage.services import run_files
from storage.validation import (
    optional_json_object,
    optional_text,
    parse_timestamp,
    require_int,
    require_text,
)

Status = TrainingRun.Status

ALLOWED_TRANSITIONS: dict[str, frozenset[str]] = {
    Status.PENDING: frozenset({Status.RUNNING}),
    Status.RUNNING: frozenset({Status.COMPLETED, Status.FAILED, Status.CANCELLED}),
    # A finished run may be run again (FineFoundry's training tab re-runs the selected run);
    # the earlier attempt is kept in metadata["attempts"] (see start_new_attempt).
    Status.COMPLETED: frozenset({Status.RUNNING}),
    Status.FAILED: frozenset({Status.RUNNING}),
    Status.CANCELLED: frozenset({Status.RUNNING}),
}
FINAL_STATUSES = frozenset({Status.COMPLETED, Status.FAILED, Status.CANCELLED})
# What an attempt's outcome leaves at the top of the run's metadata; a re-run moves it into the attempt.
ATTEMPT_OUTCOME_KEYS = ("exit_code", "error")


# FineFoundry trains on a session of this database as dataset_source "database", dataset_id "<session id>".
DATABASE_DATASET = "database"


def runs_using_sessions(*, session_ids: list[int]) -> list[TrainingRun]:
    """The runs whose dataset is one of these sessions (deleting a session leaves them pointing at nothing)."""
    return list(
        TrainingRun.objects.filter(dataset_source=DATABASE_DATASET, dataset_id__in=[str(pk) for pk in session_ids])
        .order_by("id")
        .only("id", "name", "dataset_id")
    )


def with_dataset_session_labels(queryset: QuerySet[TrainingRun]) -> QuerySet[TrainingRun]:
    """Annotate `dataset_session_label`: the label of the run's dataset session, None when it no longer exists.

    dataset_id is text (a path or a Hub id for other sources), so the session's id is compared as text:
    casting the other way fails on PostgreSQL for a non-numeric dataset_id.
    """
    sessions = ScrapeSession.objects.annotate(id_text=Cast("id", TextField())).filter(id_text=OuterRef("dataset_id"))
    label = Coalesce(F("name"), Concat(F("source"), Value(" #"), F("id_text"), output_field=TextField()))
    return queryset.annotate(
        dataset_session_label=Subquery(sessions.annotate(label=label).values("label")[:1], output_field=TextField())
    )


def _timestamp_text(value) -> str | None:
    if value is None:
        return None
    if timezone.is_aware(value):
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return value.isoformat(sep=" ")


def start_new_attempt(run: TrainingRun, metadata: dict | None) -> dict:
    """The metadata of `run` re-run from a final status: the finished attempt appended to `attempts`.

    `metadata` is what the caller sent with the change (it replaces the stored metadata, as in
    the desktop app), or None to keep the stored one; either way the attempts are kept.
    """
    stored = run.metadata if isinstance(run.metadata, dict) else {}
    result = dict(stored if metadata is None else metadata)
    attempt = {
        "status": run.status,
        "started_at": _timestamp_text(run.started_at),
        "completed_at": _timestamp_text(run.completed_at),
    }
    for key in ATTEMPT_OUTCOME_KEYS:
        if key in stored:
            attempt[key] = stored[key]
            if metadata is None:
                result.pop(key, None)
    earlier = stored.get("attempts")
    result["attempts"] = [*(earlier if isinstance(earlier, list) else []), attempt]
    return result


def keep_attempts(run: TrainingRun, metadata: dict) -> dict:
    """New metadata for `run` that still holds its earlier attempts (callers replace metadata whole)."""
    stored = run.metadata if isinstance(run.metadata, dict) else {}
    if "attempts" in stored and "attempts" not in metadata:
        return {**metadata, "attempts": stored["attempts"]}
    return metadata


def check_transition(run: TrainingRun, new_status: str) -> None:
    """Raise InvalidTransition unless `run` may move to `new_status` (staying put is allowed)."""
    if new_status not in Status.values:
        raise InvalidInput(f"unknown status {new_status!r}; expected one of {', '.join(Status.values)}")
    current = run.status or Status.PENDING
    if new_status == current:
        return
    if new_status not in ALLOWED_TRANSITIONS.get(current, frozenset()):
        allowed = ", ".join(sorted(ALLOWED_TRANSITIONS.get(current, ()))) or "nothing (it is final)"
        raise InvalidTransition(
            f"training run {run.pk} is {current}; it cannot become {new_status} (allowed: {allowed})"
        )


def _optional_identifier(value: Any, *, name: str) -> str | None:
    # The desktop app passes a session id as dataset_id; store it as the text it would.
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return optional_text(value, name=name)


def create_run_directory(name: str) -> Path:
    """Make `<root>/<safe name>_<timestamp>/{outputs,checkpoints,logs}` under a name no other run has."""
    root = run_files.storage_root()
    stamp = timezone.now().strftime("%Y%m%d_%H%M%S_%f")
    base = f"{run_files.safe_directory_name(name)}_{stamp}"
    directory = root / base
    suffix = 1
    while True:
        try:
            directory.mkdir()
            break
        except FileExistsError:
            directory = root / f"{base}_{suffix}"
            suffix += 1
        except OSError as exc:
            raise StorageError(f"cannot create a run directory in the storage root {root}: {exc.strerror}") from exc
    try:
        for sub in run_files.RUN_SUBDIRECTORIES:
            (directory / sub).mkdir()
    except OSError as exc:
        shutil.rmtree(directory, ignore_errors=True)
        raise StorageError(f"cannot create the run directory {directory}: {exc.strerror}") from exc
    return directory


def create_training_run(
    *,
    name: str,
    base_model: str | None,
    dataset_source: str | None,
    dataset_id: str | int | None,
    hp: dict | None = None,
    metadata: dict | None = None,
) -> TrainingRun:
    """Create a pending run with its own artefact directory under the storage root."""
    # An empty name is stored as given, as the desktop app does (the admin shows it as "(unnamed)").
    require_text(name, name="name", allow_empty=True)
    base_model = optional_text(base_model, name="base_model")
    dataset_source = optional_text(dataset_source, name="dataset_source")
    dataset_id = _optional_identifier(dataset_id, name="dataset_id")
    optional_json_object(hp, name="hp")
    optional_json_object(metadata, name="metadata")
    directory = create_run_directory(name)
    try:
        return TrainingRun.objects.create(
            name=name,
            status=Status.PENDING,
            base_model=base_model,
            dataset_source=dataset_source,
            dataset_id=dataset_id,
            storage_path=str(directory),
            hyperparameters=hp or None,
            metadata=metadata or None,
        )
    except BaseException:
        # No row, no directory: a failed create leaves nothing behind.
        shutil.rmtree(directory, ignore_errors=True)
        raise


def get_training_run(*, run_id: int) -> TrainingRun | None:
    require_int(run_id, name="run_id")
    return TrainingRun.objects.filter(pk=run_id).first()


def list_training_runs(*, status: str | None = None, limit: int = 50, offset: int = 0) -> list[TrainingRun]:
    """Runs newest first (ties broken by id), optionally of one status."""
    require_int(limit, name="limit", minimum=0)
    require_int(offset, name="offset", minimum=0)
    runs = TrainingRun.objects.all()
    if status:
        runs = runs.filter(status=status)
    return list(runs[offset : offset + limit])


def get_runs_by_model(*, base_model: str, limit: int = 20) -> list[TrainingRun]:
    require_int(limit, name="limit", minimum=0)
    return list(TrainingRun.objects.filter(base_model=base_model)[:limit])


def update_training_run(
    *,
    run_id: int,
    status: str | None = None,
    output_dir: str | None = None,
    adapter_path: str | None = None,
    checkpoint_path: str | None = None,
    logs: list[str] | None = None,
    started_at: Any = None,
    completed_at: Any = None,
    metadata: dict | None = None,
) -> TrainingRun:
    """Change the given fields of a run; a status change must be an allowed transition."""
    require_int(run_id, name="run_id")
    changes: dict[str, Any] = {}
    for field, value in (
        ("output_dir", output_dir),
        ("adapter_path", adapter_path),
        ("checkpoint_path", checkpoint_path),
    ):
        if value is not None:
            changes[field] = optional_text(value, name=field)
    if logs is not None:
        if not isinstance(logs, list) or not all(isinstance(line, str) for line in logs):
            raise InvalidInput("logs must be a list of strings")
        changes["logs"] = logs
    if metadata is not None:
        changes["metadata"] = optional_json_object(metadata, name="metadata")
    started = parse_timestamp(started_at, name="started_at")
    completed = parse_timestamp(completed_at, name="completed_at")

    with transaction.atomic():
        run = TrainingRun.objects.select_for_update().filter(pk=run_id).first()
        if run is None:
            raise NotFound(f"training run {run_id} does not exist")
        if "metadata" in changes:
            changes["metadata"] = keep_attempts(run, changes["metadata"])
        if status is not None:
            check_transition(run, status)
            changes["status"] = status
            rerun = status == Status.RUNNING and run.status in FINAL_STATUSES
            if rerun:
                changes["metadata"] = start_new_attempt(run, changes.get("metadata"))
                run.completed_at = None
                changes.setdefault("completed_at", None)
            if status == Status.RUNNING and started is None and (rerun or run.started_at is None):
                started = timezone.now()
            if status in FINAL_STATUSES and completed is None and run.completed_at is None:
                completed = timezone.now()
        if started is not None:
            changes["started_at"] = started
        if completed is not None:
            changes["completed_at"] = completed
        if not changes:
            return run
        for field, value in changes.items():
            setattr(run, field, value)
        run.updated_at = timezone.now()
        run.save(update_fields=[*changes, "updated_at"])
    return run


def delete_training_run(*, run_id: int, delete_files: bool = True) -> bool:
    """Delete a run and, with delete_files, its directory; False if there was no such run.

    The directory is deleted only when it lies strictly inside the storage root and no part of
    its path below the root is a symlink (storage_paths.delete_directory keeps that rule with
    directory descriptors); otherwise UnsafePath is raised and the row is kept. The directory is
    first moved aside, so if the row cannot be deleted the files are put back untouched.
    """
    require_int(run_id, name="run_id")
    run = TrainingRun.objects.filter(pk=run_id).first()
    if run is None:
        return False

    def delete_row() -> None:
        with transaction.atomic():
            run.delete()

    if delete_files and run.storage_path:
        run_files.delete_directory(run.storage_path, owner=run.pk, commit=delete_row)
    else:
        delete_row()
    return True


def run_storage_paths(run: TrainingRun) -> dict[str, str] | None:
    if not run.storage_path:
        return None
    root = run.storage_path
    paths = {"root": root}
    paths.update({sub: os.path.join(root, sub) for sub in run_files.RUN_SUBDIRECTORIES})
    paths["dataset"] = os.path.join(root, "dataset.json")
    return paths
