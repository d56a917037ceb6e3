"""FineFoundry's `db` package, backed by Django: FineFoundry code runs on it unchanged.

    from storage import api as db          # in this project
    import db                              # FineFoundry, with storage/compat on sys.path

Same function names, positional order, defaults and return shapes (plain ints, strings, lists
and dicts); storage/compat/db offers them under FineFoundry's module paths. The differences, all
on purpose, are listed in README.md ("Python API"); the main ones:
- Bad input raises ValueError (storage.exceptions.*) naming the problem, and writes nothing.
- Timestamps come back as UTC text `YYYY-MM-DD HH:MM:SS[.ffffff]`, whichever of the two desktop
  formats the row was stored in, so they sort correctly as strings.
- `db_path` is accepted for compatibility; the database is the one Django is configured with
  (FINEFOUNDRY_DB), and a different path is refused instead of silently ignored.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import sqlite3
from pathlib import Path
from typing import Any

from django.apps import apps as django_apps

if not django_apps.ready:  # imported from plain FineFoundry code, outside a Django process
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "finefoundry.settings")
    django.setup()

from django.conf import settings

from storage.dblog.handler import DatabaseLogHandler, attach_database_handler
from storage.exceptions import InvalidInput, NotFound
from storage.models import AppLog, EvaluationRun, ScrapedPair, ScrapeSession, TrainingRun
from storage.search import queries
from storage.services import (
    configs,
    database_lifecycle,
    dedupe,
    evaluations,
    logs,
    merge,
    near_duplicates,
    run_files,
    runs,
    scan,
    scan_findings,
    sessions,
)
from storage.services import settings as settings_service
from storage.services.datasets import exporting
from storage.validation import require_int

# --- Shapes -------------------------------------------------------------------------------


def format_timestamp(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return value.isoformat(sep=" ")


def _json_text(value: Any) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False)


def _parsed(value: Any, empty: Any) -> Any:
    # A column that held text that is not JSON reads back as str; the desktop app shows it as empty.
    return value if isinstance(value, type(empty)) else empty


def session_dict(session: ScrapeSession, *, with_metadata: bool = True) -> dict[str, Any]:
    result = {
        "id": session.pk,
        "source": session.source,
        "source_details": session.source_details,
        "dataset_format": session.dataset_format,
        "pair_count": session.pair_count,
        "created_at": format_timestamp(session.created_at),
        "name": session.name,
    }
    if with_metadata and isinstance(session.metadata, dict):
        result["metadata"] = session.metadata
    return result


def run_dict(run: TrainingRun) -> dict[str, Any]:
    hp = _parsed(run.hyperparameters, {})
    run_logs = _parsed(run.logs, [])
    metadata = _parsed(run.metadata, {})
    return {
        "id": run.pk,
        "name": run.name,
        "status": run.status,
        "base_model": run.base_model,
        "dataset_source": run.dataset_source,
        "dataset_id": run.dataset_id,
        "storage_path": run.storage_path,
        "output_dir": run.output_dir,
        "adapter_path": run.adapter_path,
        "checkpoint_path": run.checkpoint_path,
        "hp_json": _json_text(run.hyperparameters),
        "logs_json": _json_text(run.logs),
        "started_at": format_timestamp(run.started_at),
        "completed_at": format_timestamp(run.completed_at),
        "created_at": format_timestamp(run.created_at),
        "updated_at": format_timestamp(run.updated_at),
        "metadata_json": _json_text(run.metadata),
        "hp": hp,
        "logs": run_logs,
        "metadata": metadata,
    }


def log_dict(record: AppLog) -> dict[str, Any]:
    return {
        "id": record.pk,
        "timestamp": format_timestamp(record.timestamp),
        "level": record.level,
        "logger": record.logger,
        "message": record.message,
        "module": record.module,
        "func_name": record.func_name,
        "line_no": record.line_no,
        "exc_info": record.exc_info,
    }


def evaluation_dict(evaluation: EvaluationRun) -> dict[str, Any]:
    return {
        "id": evaluation.pk,
        "training_run_id": evaluation.training_run_id,
        "base_model": evaluation.base_model,
        "adapter_path": evaluation.adapter_path,
        "benchmark": evaluation.benchmark,
        "num_samples": evaluation.num_samples,
        "batch_size": evaluation.batch_size,
        "metrics_json": _json_text(evaluation.metrics),
        "metrics": _parsed(evaluation.metrics, {}),
        "is_base_eval": bool(evaluation.is_base_eval),
        "created_at": format_timestamp(evaluation.created_at),
    }


# --- Core ---------------------------------------------------------------------------------


def _check_db_path(db_path: str | os.PathLike | None) -> None:
    if db_path is None:
        return
    if Path(db_path).expanduser().resolve() != Path(settings.FINEFOUNDRY_DB):
        raise InvalidInput(
            f"storage.api works on the configured database {settings.FINEFOUNDRY_DB}; "
            f"got db_path={str(db_path)!r} (set FINEFOUNDRY_DB instead)"
        )


def init_db(db_path: str | None = None) -> None:
    """Create or upgrade the schema: once per database file, so also after the file was deleted (factory reset)."""
    _check_db_path(db_path)
    database_lifecycle.ensure_schema()


def get_db_path(project_root: str | None = None) -> str:
    if project_root:
        return os.path.join(project_root, "finefoundry.db")
    return str(settings.FINEFOUNDRY_DB)


def get_connection(db_path: str | None = None) -> sqlite3.Connection:
    """This thread's sqlite3 connection (`?` placeholders, sqlite3.Row rows, Django's pragmas) for raw SQL.

    On a database server (DATABASE_URL) raises RawSQLNeedsSQLite, a ValueError.
    """
    _check_db_path(db_path)
    return database_lifecycle.get_connection()


def close_all_connections() -> None:
    """Let go of the database file: every connection of this process, in every thread (before deleting it)."""
    database_lifecycle.close_all_connections()


def get_schema_version(db_path: str | None = None) -> int:
    _check_db_path(db_path)
    return database_lifecycle.get_schema_version()


def set_schema_version(version: int, db_path: str | None = None) -> None:
    _check_db_path(db_path)
    database_lifecycle.set_schema_version(version=version)


# --- Settings -----------------------------------------------------------------------------


def get_setting(key: str, default: Any = None, db_path: str | None = None) -> Any:
    _check_db_path(db_path)
    return settings_service.get_setting(key=key, default=default)


def set_setting(key: str, value: Any, db_path: str | None = None) -> None:
    _check_db_path(db_path)
    settings_service.set_setting(key=key, value=value)


def get_all_settings(db_path: str | None = None) -> dict[str, Any]:
    _check_db_path(db_path)
    return settings_service.get_all_settings()


def delete_setting(key: str, db_path: str | None = None) -> bool:
    _check_db_path(db_path)
    return settings_service.delete_setting(key=key)


def get_hf_token(db_path: str | None = None) -> str:
    _check_db_path(db_path)
    return settings_service.get_secret_text(key=settings_service.HF_TOKEN_KEY)


def set_hf_token(token: str, db_path: str | None = None) -> None:
    """Store the Hugging Face token, without surrounding whitespace."""
    _check_db_path(db_path)
    settings_service.set_secret_text(key=settings_service.HF_TOKEN_KEY, value=token)


def get_runpod_api_key(db_path: str | None = None) -> str:
    _check_db_path(db_path)
    return settings_service.get_secret_text(key=settings_service.RUNPOD_API_KEY_KEY)


def set_runpod_api_key(api_key: str, db_path: str | None = None) -> None:
    """Store the RunPod API key, without surrounding whitespace."""
    _check_db_path(db_path)
    settings_service.set_secret_text(key=settings_service.RUNPOD_API_KEY_KEY, value=api_key)


def get_ollama_config(db_path: str | None = None) -> dict[str, Any]:
    _check_db_path(db_path)
    return settings_service.get_config_section(key=settings_service.OLLAMA_KEY)


def set_ollama_config(config: dict[str, Any], db_path: str | None = None) -> None:
    _check_db_path(db_path)
    settings_service.set_config_section(key=settings_service.OLLAMA_KEY, config=config)


def get_proxy_config(db_path: str | None = None) -> dict[str, Any]:
    _check_db_path(db_path)
    return settings_service.get_config_section(key=settings_service.PROXY_KEY)


def set_proxy_config(config: dict[str, Any], db_path: str | None = None) -> None:
    _check_db_path(db_path)
    settings_service.set_config_section(key=settings_service.PROXY_KEY, config=config)


# --- Training configs ---------------------------------------------------------------------


def list_training_configs(train_target: str | None = None, db_path: str | None = None) -> list[str]:
    _check_db_path(db_path)
    return configs.list_training_configs(train_target=train_target)


def get_training_config(name: str, db_path: str | None = None) -> dict | None:
    _check_db_path(db_path)
    return configs.get_training_config(name=name)


def save_training_config(name: str, config: dict, db_path: str | None = None) -> None:
    _check_db_path(db_path)
    configs.save_training_config(name=name, config=config)


def delete_training_config(name: str, db_path: str | None = None) -> bool:
    _check_db_path(db_path)
    return configs.delete_training_config(name=name)


def rename_training_config(old_name: str, new_name: str, db_path: str | None = None) -> tuple[bool, str]:
    _check_db_path(db_path)
    return configs.rename_training_config(old_name=old_name, new_name=new_name)


def get_last_used_config(db_path: str | None = None) -> str | None:
    _check_db_path(db_path)
    return configs.get_last_used_config()


def set_last_used_config(name: str, db_path: str | None = None) -> None:
    _check_db_path(db_path)
    configs.set_last_used_config(name=name)


def validate_config(config: dict) -> tuple[bool, str]:
    return configs.validate_config(config)


# --- Scraped data -------------------------------------------------------------------------


def create_scrape_session(
    source: str,
    source_details: str | None = None,
    dataset_format: str = "standard",
    metadata: dict | None = None,
    db_path: str | None = None,
    name: str | None = None,
) -> int:
    _check_db_path(db_path)
    return sessions.create_scrape_session(
        source=source, source_details=source_details, dataset_format=dataset_format, metadata=metadata, name=name
    ).pk


def add_scraped_pairs(session_id: int, pairs: list[dict], db_path: str | None = None) -> int:
    _check_db_path(db_path)
    return sessions.add_scraped_pairs(session_id=session_id, pairs=pairs)


def get_scrape_session(session_id: int, db_path: str | None = None) -> dict | None:
    _check_db_path(db_path)
    session = sessions.get_scrape_session(session_id=session_id)
    return None if session is None else session_dict(session)


def list_scrape_sessions(source: str | None = None, limit: int = 100, db_path: str | None = None) -> list[dict]:
    _check_db_path(db_path)
    return [session_dict(s, with_metadata=False) for s in sessions.list_scrape_sessions(source=source, limit=limit)]


def get_pairs_for_session(
    session_id: int, limit: int | None = None, offset: int = 0, db_path: str | None = None
) -> list[dict]:
    _check_db_path(db_path)
    return list(sessions.iter_pairs(session_id=session_id, limit=limit, offset=offset))


def export_session_to_json(session_id: int, output_path: str, db_path: str | None = None) -> int:
    _check_db_path(db_path)
    return exporting.export_session_to_json(session_id=session_id, output_path=output_path)


def delete_scrape_session(session_id: int, db_path: str | None = None) -> bool:
    _check_db_path(db_path)
    return sessions.delete_scrape_session(session_id=session_id)


def get_all_pairs(limit: int | None = None, db_path: str | None = None) -> list[dict]:
    _check_db_path(db_path)
    rows = ScrapedPair.objects.order_by("id").values_list("input_text", "output_text")
    if limit:
        rows = rows[: require_int(limit, name="limit", minimum=0)]
    return [{"input": i, "output": o} for i, o in rows.iterator(chunk_size=2000)]


def get_total_pair_count(db_path: str | None = None) -> int:
    _check_db_path(db_path)
    return sessions.total_pair_count()


def get_random_prompts_for_session(session_id: int, count: int = 5, db_path: str | None = None) -> list[str]:
    """Up to `count` input texts of the session, picked at random ([] for an unknown or empty session)."""
    _check_db_path(db_path)
    return sessions.random_inputs(session_id=session_id, count=count)


# --- Search, dedupe, merge ----------------------------------------------------------------


def pair_dict(pair: ScrapedPair) -> dict[str, Any]:
    return {
        "id": pair.pk,
        "session_id": pair.session_id,
        "input": pair.input_text,
        "output": pair.output_text,
        "source_url": pair.source_url,
        "metadata": _parsed(pair.metadata, {}),
        "created_at": format_timestamp(pair.created_at),
    }


def search_pairs(
    query: str, session_id: int | None = None, limit: int = 50, offset: int = 0, db_path: str | None = None
) -> list[dict]:
    """Pairs whose input or output contain every term of `query` ("quoted phrases" allowed), oldest first."""
    _check_db_path(db_path)
    pairs = queries.search_pairs(query=query, session_id=session_id, limit=limit, offset=offset)
    return [pair_dict(pair) for pair in pairs]


def merge_sessions(
    session_ids: list[int], mode: str = "concatenate", name: str | None = None, db_path: str | None = None
) -> int:
    """Copy the pairs of two or more sessions into a new session ("concatenate" or "interleave"); return its id."""
    _check_db_path(db_path)
    return merge.merge_sessions(session_ids=session_ids, mode=mode, name=name).pk


def dedupe_sessions(
    session_ids: list[int],
    normalize: bool = False,
    across_sessions: bool = False,
    dry_run: bool = False,
    db_path: str | None = None,
) -> dict[int, int]:
    """Remove duplicate pairs, keeping the earliest; return how many went (or would go) per session."""
    _check_db_path(db_path)
    result = dedupe.remove_duplicates(
        session_ids=session_ids, normalize=normalize, across_sessions=across_sessions, dry_run=dry_run
    )
    return result.per_session


def dedupe_session(session_id: int, normalize: bool = False, dry_run: bool = False, db_path: str | None = None) -> int:
    """Remove duplicate pairs within one session, keeping the earliest; return how many went."""
    return dedupe_sessions([session_id], normalize=normalize, dry_run=dry_run, db_path=db_path)[session_id]


def find_near_duplicates(
    session_ids: list[int], threshold: float = 0.8, against_stored: bool = True, db_path: str | None = None
) -> list[list[int]]:
    """Clusters of near-duplicate pair ids (each sorted, sorted by first id), also against other sessions' pairs."""
    _check_db_path(db_path)
    return near_duplicates.find_near_duplicates(
        session_ids=session_ids, threshold=threshold, against_stored=against_stored
    ).clusters


def remove_near_duplicates(
    session_ids: list[int],
    threshold: float = 0.8,
    keep: str = "oldest",
    dry_run: bool = False,
    db_path: str | None = None,
) -> list[int]:
    """Keep one pair per near-duplicate cluster, delete the given sessions' others; return their ids."""
    _check_db_path(db_path)
    return near_duplicates.remove_near_duplicates(
        session_ids=session_ids, threshold=threshold, keep=keep, dry_run=dry_run
    ).removed


# --- Safe to publish ----------------------------------------------------------------------


def scan_pairs(session_ids: list[int], db_path: str | None = None) -> list[dict]:
    """Every finding in the sessions' pairs, as `scan_pairs --json` lists them (offsets only, never the text).

    Each is {"pair_id", "side", "kind", "start", "end"}; kind is email, phone, ip, credit_card or secret.
    Nothing is stored: `store_scan` makes a scan what the admin's flagged filter lists.
    """
    _check_db_path(db_path)
    return [finding.as_dict() for finding in scan.scan_sessions(session_ids=session_ids, examples_per_kind=0).findings]


def store_scan(session_ids: list[int], db_path: str | None = None) -> list[dict]:
    """Scan the sessions and store each one's findings as its current scan; a summary per session."""
    _check_db_path(db_path)
    return [
        {
            "session_id": result.session_id,
            "pairs_scanned": result.pairs_scanned,
            "findings": result.findings,
            "flagged_pairs": result.flagged_pairs,
            "counts": result.counts,
        }
        for result in scan_findings.scan_and_store(session_ids=session_ids)
    ]


def get_stored_findings(session_id: int, db_path: str | None = None) -> dict | None:
    """The session's stored scan: when, how many pairs, and its findings (offsets only); None if never scanned."""
    _check_db_path(db_path)
    stored = scan_findings.stored_findings(session_id=require_int(session_id, name="session_id"))
    if stored is None:
        return None
    current, findings = stored
    return {
        "scanned_at": format_timestamp(current.scanned_at),
        "pairs_scanned": current.pairs_scanned,
        "findings": [scan.PairFinding(f.pair_id, f.side, f.kind, f.start, f.end).as_dict() for f in findings],
    }


# --- Training runs ------------------------------------------------------------------------


def get_managed_storage_root() -> str:
    return str(run_files.storage_root())


def create_training_run(
    name: str,
    base_model: str,
    dataset_source: str,
    dataset_id: str,
    hp: dict | None = None,
    metadata: dict | None = None,
) -> dict:
    run = runs.create_training_run(
        name=name, base_model=base_model, dataset_source=dataset_source, dataset_id=dataset_id, hp=hp, metadata=metadata
    )
    return run_dict(run)


def get_training_run(run_id: int) -> dict | None:
    run = runs.get_training_run(run_id=run_id)
    return None if run is None else run_dict(run)


def list_training_runs(status: str | None = None, limit: int = 50, offset: int = 0) -> list[dict]:
    return [run_dict(r) for r in runs.list_training_runs(status=status, limit=limit, offset=offset)]


def update_training_run(
    run_id: int,
    status: str | None = None,
    output_dir: str | None = None,
    adapter_path: str | None = None,
    checkpoint_path: str | None = None,
    logs: list[str] | None = None,
    started_at: str | dt.datetime | None = None,
    completed_at: str | dt.datetime | None = None,
    metadata: dict | None = None,
) -> dict | None:
    """Change the given fields of a run and return it; None when there is no such run (as the desktop app)."""
    try:
        run = runs.update_training_run(
            run_id=run_id,
            status=status,
            output_dir=output_dir,
            adapter_path=adapter_path,
            checkpoint_path=checkpoint_path,
            logs=logs,
            started_at=started_at,
            completed_at=completed_at,
            metadata=metadata,
        )
    except NotFound:
        return None
    return run_dict(run)


def delete_training_run(run_id: int, delete_files: bool = True) -> bool:
    return runs.delete_training_run(run_id=run_id, delete_files=delete_files)


def get_run_storage_paths(run_id: int) -> dict[str, str] | None:
    run = runs.get_training_run(run_id=run_id)
    return None if run is None else runs.run_storage_paths(run)


def get_latest_run() -> dict | None:
    latest = runs.list_training_runs(limit=1)
    return run_dict(latest[0]) if latest else None


def get_runs_by_model(base_model: str, limit: int = 20) -> list[dict]:
    return [run_dict(r) for r in runs.get_runs_by_model(base_model=base_model, limit=limit)]


# --- Logs ---------------------------------------------------------------------------------


def get_logs(level: str | None = None, logger: str | None = None, limit: int = 100, offset: int = 0) -> list[dict]:
    return [log_dict(r) for r in logs.get_logs(level=level, logger=logger, limit=limit, offset=offset)]


def get_log_count(level: str | None = None) -> int:
    return logs.get_log_count(level=level)


def clear_logs(
    before_date: str | dt.datetime | None = None,
    older_than_days: int | None = None,
    before: str | dt.datetime | None = None,
    level: str | None = None,
) -> int:
    """Delete log records (all of them when given nothing); return how many.

    `before_date` is the desktop app's first argument (`clear_logs("2024-01-01")`); `before` is
    another name for it. A number in its place is taken as `older_than_days`, as earlier versions
    of this module had it first.
    """
    if isinstance(before_date, int) and not isinstance(before_date, bool):
        if older_than_days is not None:
            raise InvalidInput("give older_than_days once")
        before_date, older_than_days = None, before_date
    if before_date is not None:
        if before is not None:
            raise InvalidInput("give before or before_date, not both")
        before = before_date
    return logs.clear_logs(older_than_days=older_than_days, before=before, level=level)


# FineFoundry's name for the handler class.
DatabaseHandler = DatabaseLogHandler


def setup_database_logging(level: int = logging.INFO, logger_name: str | None = None) -> DatabaseLogHandler:
    """Store records of `logger_name` (the root logger when None) at `level` and above in app_logs."""
    return attach_database_handler(level=level, logger_name=logger_name)


# --- Evaluation runs ----------------------------------------------------------------------


def save_evaluation_run(
    *,
    base_model: str,
    benchmark: str,
    metrics: dict,
    training_run_id: int | None = None,
    adapter_path: str | None = None,
    num_samples: int | None = None,
    batch_size: int | None = None,
    is_base_eval: bool = False,
    db_path: str | None = None,
) -> int:
    _check_db_path(db_path)
    return evaluations.save_evaluation_run(
        base_model=base_model,
        benchmark=benchmark,
        metrics=metrics,
        training_run_id=training_run_id,
        adapter_path=adapter_path,
        num_samples=num_samples,
        batch_size=batch_size,
        is_base_eval=is_base_eval,
    ).pk


def get_evaluation_run(eval_id: int, db_path: str | None = None) -> dict | None:
    _check_db_path(db_path)
    evaluation = evaluations.get_evaluation_run(eval_id=eval_id)
    return None if evaluation is None else evaluation_dict(evaluation)


def get_evaluation_runs_for_training(training_run_id: int, db_path: str | None = None) -> list[dict]:
    _check_db_path(db_path)
    return [evaluation_dict(e) for e in evaluations.evaluations_for_training(training_run_id=training_run_id)]


def get_recent_evaluation_runs(limit: int = 20, benchmark: str | None = None, db_path: str | None = None) -> list[dict]:
    _check_db_path(db_path)
    return [evaluation_dict(e) for e in evaluations.recent_evaluations(limit=limit, benchmark=benchmark)]


def get_evaluation_history_for_model(
    base_model: str, adapter_path: str | None = None, db_path: str | None = None
) -> list[dict]:
    _check_db_path(db_path)
    return [
        evaluation_dict(e)
        for e in evaluations.evaluation_history_for_model(base_model=base_model, adapter_path=adapter_path)
    ]


def delete_evaluation_run(eval_id: int, db_path: str | None = None) -> bool:
    _check_db_path(db_path)
    return evaluations.delete_evaluation_run(eval_id=eval_id)
