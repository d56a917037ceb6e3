"""The Django admin for FineFoundry's data: one module per group of models, plus the dashboard."""

from storage.admin import accounts, configs, dashboard, evaluations, logs, pairs, runs, sessions, settings

__all__ = ["accounts", "configs", "dashboard", "evaluations", "logs", "pairs", "runs", "sessions", "settings"]
