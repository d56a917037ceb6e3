"""The admin's front page: FineFoundry's numbers and charts, shown above Django's app list (see storage.admin_site)."""

from __future__ import annotations

from pathlib import Path

from storage.admin.charts import bar_chart
from storage.admin.display import level_badge, status_badge
from storage.redaction import redact
from storage.services.dashboard import dashboard_stats
from storage.services.settings import secret_values

PAIRS_BY_SOURCE_SHOWN = 12


# Each part of the dashboard and the permission that shows it: a staff user sees only the numbers
# of what they may view. The database file's path is the server's business: superusers only.
CARD_PERMISSIONS = {
    "sessions": "storage.view_scrapesession",
    "pairs": "storage.view_scrapedpair",
    "runs": "storage.view_trainingrun",
    "configs": "storage.view_trainingconfig",
    "errors": "storage.view_applog",
}


def visible_cards(user) -> dict[str, bool]:
    shown = {card: user.has_perm(permission) for card, permission in CARD_PERMISSIONS.items()}
    # The artefacts folder belongs to the runs; the database file to whoever runs the server.
    shown["artefacts"] = shown["runs"]
    shown["database"] = user.is_superuser
    return shown


def dashboard_context(user) -> dict:
    stats = dashboard_stats()
    sources = stats.pairs_by_source[:PAIRS_BY_SOURCE_SHOWN]
    others = sum(pairs for _, pairs in stats.pairs_by_source[PAIRS_BY_SOURCE_SHOWN:])
    if others:
        sources.append(("other sources", others))
    secrets = secret_values()
    errors = [
        (record, level_badge(record.level), redact(record.message, secrets=secrets).partition("\n")[0][:160])
        for record in stats.recent_errors
    ]
    return {
        "show": visible_cards(user),
        "stats": stats,
        # Thousands separators without loading django.contrib.humanize.
        "numbers": {
            "sessions": f"{stats.session_count:,}",
            "pairs": f"{stats.pair_count:,}",
            "runs": f"{stats.run_count:,}",
            "configs": f"{stats.config_count:,}",
        },
        "recent_errors": errors,
        # The directory's own name; the card's title attribute holds the full path.
        "storage_root_name": Path(stats.storage_root).name + "/",
        # The model's own name; the organisation before the slash is in the title attribute.
        "recent_runs": [
            (run, status_badge(run.status), (run.base_model or "—").rsplit("/", 1)[-1]) for run in stats.recent_runs
        ],
        "pairs_chart": bar_chart(sources),
        "run_badges": [(status, status_badge(status), count) for status, count in stats.runs_by_status],
    }
