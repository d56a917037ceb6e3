"""The Django admin for FineFoundry's data: one module per group of models, plus the dashboard.

The model-group modules are imported here so that Django's admin autodiscovery registers them.
"""

from storage.admin import accounts, configs, dashboard, evaluations, logs, pairs, runs, sessions, settings  # noqa: F401
