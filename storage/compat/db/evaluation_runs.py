"""FineFoundry's db.evaluation_runs: benchmark results of base models and trained adapters."""

from storage.api import (
    delete_evaluation_run,
    get_evaluation_history_for_model,
    get_evaluation_run,
    get_evaluation_runs_for_training,
    get_recent_evaluation_runs,
    save_evaluation_run,
)

__all__ = [
    "delete_evaluation_run",
    "get_evaluation_history_for_model",
    "get_evaluation_run",
    "get_evaluation_runs_for_training",
    "get_recent_evaluation_runs",
    "save_evaluation_run",
]
