"""The app log admin: read-only records, level/logger/date filters across both timestamp formats, clearing."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.urls import reverse

from storage.models import AppLog

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:storage_applog_changelist")
CLEAR = reverse("admin:storage_applog_clear")


def shown(client, **params) -> list[str]:
    return [record.level for record in client.get(CHANGELIST, params).context["cl"].result_list]


@pytest.mark.parametrize(
    ("level", "levels"),
    [
        ("WARNING+", ["ERROR", "WARNING"]),
        ("ERROR+", ["ERROR"]),
        ("INFO", ["INFO"]),
        ("", ["ERROR", "WARNING", "INFO"]),
    ],
)
def test_level_filter_also_offers_warning_and_above(admin_client, site_data, level, levels):
    assert shown(admin_client, **({"level": level} if level else {})) == levels


def test_logger_filter(admin_client, site_data):
    assert shown(admin_client, logger="finefoundry.train") == ["ERROR", "WARNING"]


def test_date_filter_and_order_are_right_across_both_timestamp_formats(admin_client, site_data):
    # The INFO record carries the desktop log handler's ISO timestamp ('T' separator).
    assert shown(admin_client, timestamp__gte="2024-12-01", timestamp__lt="2024-12-02") == ["INFO"]
    with connection.cursor() as cursor:
        # Later the same day, in SQLite's format: as text it sorts before the ISO one, as a time after it.
        cursor.execute("UPDATE app_logs SET timestamp = '2024-12-01 11:00:00' WHERE level = 'WARNING'")
    assert shown(admin_client, timestamp__gte="2024-12-01", timestamp__lt="2024-12-02") == ["WARNING", "INFO"]


def test_list_shows_badge_first_line_and_whether_there_is_a_traceback(admin_client, site_data):
    page = admin_client.get(CHANGELIST)
    text = page.content.decode()
    assert '<span class="ff-badge ff-badge-amber">WARNING</span>' in text
    assert "GPU memory is low…" in text and "second line" not in text
    flags = {r.level: r.has_traceback for r in page.context["cl"].result_list}
    assert flags == {"ERROR": True, "WARNING": False, "INFO": False}


def test_list_costs_the_same_few_queries_however_many_rows(admin_client, site_data, django_assert_max_num_queries):
    AppLog.objects.bulk_create(AppLog(level="INFO", logger="finefoundry.x", message=f"m {i}") for i in range(80))
    with django_assert_max_num_queries(12):
        assert admin_client.get(CHANGELIST).status_code == 200


def test_detail_page_shows_the_traceback_read_only(admin_client, site_data):
    page = admin_client.get(reverse("admin:storage_applog_change", args=[site_data.error_log.pk]))
    text = page.content.decode()
    assert "RuntimeError: CUDA out of memory" in text
    assert "<textarea" not in text and '<input type="text"' not in text


def test_clear_deletes_only_records_older_than_the_cutoff(admin_client, site_data):
    assert admin_client.get(CLEAR).status_code == 200
    response = admin_client.post(CLEAR, {"older_than_days": "30", "level": ""}, follow=True)
    assert response.redirect_chain[-1][0] == CHANGELIST
    assert sorted(AppLog.objects.values_list("level", flat=True)) == ["ERROR", "WARNING"]
    assert [str(m) for m in response.context["messages"]] == ["Deleted 1 log record older than 30 days."]


def test_clear_can_keep_other_levels(admin_client, site_data):
    admin_client.post(CLEAR, {"older_than_days": "0", "level": "WARNING"})
    assert sorted(AppLog.objects.values_list("level", flat=True)) == ["ERROR", "INFO"]


def test_clear_refuses_bad_input_and_users_who_may_not_delete(client, admin_client, site_data, django_user_model):
    response = admin_client.post(CLEAR, {"older_than_days": "-1"})
    assert response.status_code == 200 and response.context["form"].errors["older_than_days"]
    assert AppLog.objects.count() == 3

    viewer = django_user_model.objects.create_user("viewer", password="pw", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_applog"))
    client.login(username="viewer", password="pw")
    assert client.get(CHANGELIST).status_code == 200
    assert client.post(CLEAR, {"older_than_days": "0"}).status_code == 403
    assert AppLog.objects.count() == 3


def test_the_list_offers_the_clean_up_only_to_users_who_may_delete(client, admin_client, site_data, django_user_model):
    assert f'href="{CLEAR}"' in admin_client.get(CHANGELIST).content.decode()

    viewer = django_user_model.objects.create_user("viewer", password="pw", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_applog"))
    client.login(username="viewer", password="pw")
    page = client.get(CHANGELIST)
    assert page.status_code == 200 and f'href="{CLEAR}"' not in page.content.decode()
