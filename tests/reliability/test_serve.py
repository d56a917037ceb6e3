"""`python3 tasks.py serve`'s server: gunicorn workers answering concurrent logins and pages on either engine."""

from __future__ import annotations

import http.cookiejar
import re
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.helpers.processes import child_env
from tests.helpers.servers import gunicorn

USERS = 4
ROUNDS = 2


def log_in_and_browse(base: str, username: str) -> list[int]:
    """One browser: log in (a session row written, last_login updated), then open admin pages."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    statuses = []
    for _ in range(ROUNDS):
        page = opener.open(f"{base}/admin/login/?next=/admin/", timeout=60).read().decode()
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
        form = urllib.parse.urlencode(
            {"csrfmiddlewaretoken": token, "username": username, "password": "serve-test-pw", "next": "/admin/"}
        ).encode()
        request = urllib.request.Request(f"{base}/admin/login/", data=form, headers={"Referer": f"{base}/admin/login/"})
        with opener.open(request, timeout=60) as response:
            statuses.append(response.status)
            assert response.url.rstrip("/").endswith("/admin"), response.url
        for path in ("/admin/storage/scrapedpair/", "/admin/storage/scrapesession/", "/admin/storage/applog/"):
            with opener.open(base + path, timeout=60) as response:
                statuses.append(response.status)
        # Logging in rotated the CSRF token: the cookie holds the current one.
        current = next(cookie.value for cookie in jar if cookie.name == "csrftoken")
        logout = urllib.parse.urlencode({"csrfmiddlewaretoken": current}).encode()
        opener.open(urllib.request.Request(f"{base}/admin/logout/", data=logout), timeout=60).close()
    return statuses


@pytest.mark.django_db(transaction=True)
def test_gunicorn_answers_concurrent_logins_and_pages(session_factory, django_user_model):
    session_factory(pairs=30)
    for number in range(USERS):
        django_user_model.objects.create_superuser(f"user{number}", f"u{number}@example.org", "serve-test-pw")
    # The server shares this test's database (committed: a transactional test), whichever engine it is.
    with gunicorn(child_env()) as base, ThreadPoolExecutor(USERS) as pool:
        results = list(pool.map(lambda n: log_in_and_browse(base, f"user{n}"), range(USERS)))
        static = urllib.request.urlopen(f"{base}/static/admin/css/base.css", timeout=30)
        assert static.status == 200 and b"body" in static.read()
    assert all(status == 200 for statuses in results for status in statuses), results
    assert len([s for statuses in results for s in statuses]) == USERS * ROUNDS * 4
    assert django_user_model.objects.filter(last_login__isnull=False).count() == USERS
