"""The dashboard on the admin index: counts, runs by status, recent errors, file sizes, pairs by source."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.db import connection

from storage.models import AppLog
from storage.services.dashboard import dashboard_stats

pytestmark = pytest.mark.django_db


def test_stats_count_everything_from_cheap_queries(site_data, django_assert_max_num_queries):
    # 9: the session counts also ask which sessions an import is still writing (an empty table, by key).
    # PostgreSQL wraps that read in a savepoint (an error there must not abort the caller's transaction).
    with django_assert_max_num_queries(9 if connection.vendor == "sqlite" else 13):
        stats = dashboard_stats()
    assert stats.session_count == 3
    assert stats.pair_count == 65
    assert stats.pairs_by_source == [("reddit", 40), ("4chan", 25), ("synthetic", 0)]
    assert stats.runs_by_status == [(s, 1) for s in ("pending", "running", "completed", "failed", "cancelled")]
    assert [record.pk for record in stats.recent_errors] == [site_data.error_log.pk]
    if connection.vendor == "sqlite":
        assert stats.database_path == str(Path(connection.settings_dict["NAME"]))
        assert stats.database_size > 0 and stats.wal_size is not None
    else:  # a server database has no file of its own to show
        assert stats.database_path is None
    assert stats.storage_root_size >= 4096  # the completed run's adapter file


def test_a_status_the_desktop_app_never_wrote_still_counts(site_data):
    with connection.cursor() as cursor:
        cursor.execute("UPDATE training_runs SET status = 'paused' WHERE name = 'qwen-pending'")
    stats = dashboard_stats()
    assert ("paused", 1) in stats.runs_by_status and ("pending", 0) in stats.runs_by_status
    assert stats.run_count == 5


def test_dashboard_page_shows_numbers_chart_and_errors(admin_client, site_data):
    text = admin_client.get("/admin/").content.decode()
    assert 'id="dash-sessions">3<' in text and 'id="dash-pairs">65<' in text
    chart = text.split('id="pairs-by-source"')[1].split("</svg>")[0]
    assert "<svg" in chart and ">reddit<" in chart and ">4chan<" in chart
    assert '<span class="ff-badge ff-badge-green">completed</span>' in text
    assert "Training failed: CUDA out of memory" in text
    assert "cdn" not in text.lower()


def test_error_messages_on_the_dashboard_are_masked(admin_client, site_data):
    AppLog.objects.create(level="CRITICAL", logger="finefoundry.hf", message=f"bad token {site_data.hf_token}")
    text = admin_client.get("/admin/").content.decode()
    assert site_data.hf_token not in text
    assert "bad token [REDACTED]" in text


def test_an_empty_database_gets_a_calm_dashboard(admin_client):
    text = admin_client.get("/admin/").content.decode()
    assert "No scrape sessions yet." in text and "No errors logged." in text


def test_the_dashboard_is_the_admin_sites_own_index_page():
    from django.contrib import admin
    from django.urls import resolve, reverse

    from storage.admin_site import FineFoundryAdminSite

    assert isinstance(admin.site, FineFoundryAdminSite)
    # One page at /admin/: the site's own index (admin:index), not a view in front of it.
    match = resolve("/admin/")
    assert (match.namespace, match.url_name) == ("admin", "index")
    assert reverse("admin:index") == "/admin/"
