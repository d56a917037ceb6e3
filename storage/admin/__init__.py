"""The Django admin for FineFoundry's data: one module per group of models, plus the dashboard.

The model-group modules are imported here so that Django's admin autodiscovery registers them.
"""

from django.contrib import admin as _admin
from django_tasks_db.models import DBTaskResult

from storage.admin import (  # noqa: F401
    accounts,
    configs,
    dashboard,
    evaluations,
    jobs,
    logs,
    pairs,
    runs,
    sessions,
    settings,
)

# One jobs page (ours, with progress and reports); the task backend's rows are its internals.
if _admin.site.is_registered(DBTaskResult):
    _admin.site.unregister(DBTaskResult)
