"""The admin's models and the URLs of their pages, for tests that visit every page."""

from __future__ import annotations

from django.urls import reverse

from storage.models import (
    AppLog,
    AppState,
    EvaluationRun,
    Job,
    ScrapedPair,
    ScrapeSession,
    Setting,
    TrainingConfig,
    TrainingRun,
)

MODELS = [ScrapeSession, ScrapedPair, TrainingRun, EvaluationRun, TrainingConfig, Setting, AppLog, AppState, Job]


# Records FineFoundry writes, not people: they can be viewed and deleted but not added.
READ_ONLY = {EvaluationRun, AppLog, Job}


def admin_url(model, page: str, *args) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{page}", args=args)


def pages_of(model) -> list[str]:
    """The changelist and add pages, and the change, delete and history pages of a few rows of `model`."""
    urls = [admin_url(model, "changelist")]
    if model not in READ_ONLY:
        urls.append(admin_url(model, "add"))
    pks = list(model.objects.order_by("pk").values_list("pk", flat=True))
    # Every row of the small tables; the first, middle and last of the pairs.
    for pk in sorted(set(pks if len(pks) <= 12 else [pks[0], pks[len(pks) // 2], pks[-1]])):
        urls += [admin_url(model, page, pk) for page in ("change", "delete", "history")]
        if model is ScrapeSession:
            urls += [admin_url(model, page, pk) for page in ("scan", "profile")]
    return urls
