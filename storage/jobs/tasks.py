"""The one place that imports Django's Tasks API.

Django 6 has it built in (`django.tasks`); on Django 5.2 the `django-tasks` backport provides the same
API under `django_tasks`. Everything else imports `task` from here, so moving to Django 6 changes
nothing but INSTALLED_APPS (settings.py drops "django_tasks" by itself when `django.tasks` exists).
The backend (settings.TASKS) is `django-tasks-db`'s database backend in both cases.
"""

from __future__ import annotations

try:
    from django.tasks import TaskResultStatus, task
except ImportError:  # Django < 6: the backport
    from django_tasks import TaskResultStatus, task

__all__ = ["TaskResultStatus", "task"]
