"""The admin driven in a real browser (Debian's chromium, headless) over a live server.

Skipped when chromium, chromedriver or selenium is missing, unless the environment variable CI is
set: there (.ci/run installs chromium) a missing browser is a failure, not a skip. Screenshots of
the dashboard and of a run page are written to screenshots/ (git-ignored) for a person to look at.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from django.urls import reverse

from storage.services import settings as settings_service

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
SCREENSHOTS = Path(__file__).resolve().parent.parent.parent / "screenshots"
WINDOW = (1400, 1000)
WAIT_SECONDS = 15


def unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"browser test cannot run in CI: {reason}")
    pytest.skip(reason)


@pytest.fixture
def browser(tmp_path):
    """Headless chromium with a fresh profile that saves downloads to tmp_path/downloads."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        unavailable("selenium is not installed (pip install -r requirements-dev.txt)")
    for program in (CHROMIUM, CHROMEDRIVER):
        if not program.exists():
            unavailable(f"{program} is missing (apt-get install chromium chromium-driver)")
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={tmp_path / 'profile'}",
        f"--window-size={WINDOW[0]},{WINDOW[1]}",
    ):
        options.add_argument(argument)
    # The console log, where Chromium reports Content-Security-Policy violations.
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    options.add_experimental_option(
        "prefs", {"download.default_directory": str(downloads), "download.prompt_for_download": False}
    )
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    driver.downloads = downloads
    try:
        yield driver
    finally:
        driver.quit()


def wait_for(condition, *, what: str):
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def find(driver, css: str):
    from selenium.webdriver.common.by import By

    return wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, css), what=css)[0]


def screenshot(driver, name: str) -> Path:
    """Save the whole page at the window's width."""
    SCREENSHOTS.mkdir(exist_ok=True)
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(WINDOW[0], max(WINDOW[1], min(height + 120, 4000)))
    path = SCREENSHOTS / name
    driver.save_screenshot(str(path))
    driver.set_window_size(*WINDOW)
    return path


def test_admin_in_a_real_browser(browser, live_server, site_data, django_user_model):
    from selenium.webdriver.common.by import By

    django_user_model.objects.create_superuser("admin", "admin@example.org", "correct horse")
    base = live_server.url

    # Log in.
    browser.get(f"{base}/admin/")
    find(browser, "#id_username").send_keys("admin")
    find(browser, "#id_password").send_keys("correct horse")
    find(browser, "input[type=submit]").click()
    assert find(browser, "#dash-pairs").text == "65"
    assert find(browser, "#pairs-by-source svg rect.ff-bar")
    assert screenshot(browser, "dashboard.png").stat().st_size > 10_000

    # Open a session and follow to its pairs.
    browser.get(base + reverse("admin:storage_scrapesession_changelist"))
    browser.find_element(By.LINK_TEXT, site_data.reddit.name).click()
    find(browser, "a.button[href*='session__id__exact']").click()
    rows = wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, "#result_list tbody tr"), what="pair rows")
    assert len(rows) == 40
    assert {row.find_element(By.CSS_SELECTOR, ".field-session_link").text for row in rows} == {site_data.reddit.name}

    # Download the session as JSONL from its page.
    browser.get(base + reverse("admin:storage_scrapesession_change", args=[site_data.reddit.pk]))
    browser.find_element(By.LINK_TEXT, "JSONL").click()
    expected = browser.downloads / f"session-{site_data.reddit.pk}.jsonl"
    wait_for(lambda: expected.exists() and not list(browser.downloads.glob("*.crdownload")), what="the download")
    records = [json.loads(line) for line in expected.read_text(encoding="utf-8").splitlines()]
    assert len(records) == 40 and records[0] == {"input": "question 0", "output": "answer 0"}

    # A run page draws its loss curve.
    run = site_data.runs["completed"]
    browser.get(base + reverse("admin:storage_trainingrun_change", args=[run.pk]))
    line = find(browser, "#loss-chart svg path.ff-series-train")
    assert line.get_attribute("d").startswith("M")
    assert line.size["width"] > 300
    assert screenshot(browser, "run.png").stat().st_size > 10_000

    # Edit a setting through its own form.
    browser.get(base + reverse("admin:storage_setting_change", args=["proxy"]))
    find(browser, "#id_enabled").click()
    find(browser, "#id_url").send_keys("socks5h://127.0.0.1:9050")
    browser.find_element(By.NAME, "_save").click()
    assert "was changed successfully" in find(browser, "ul.messagelist li").text
    assert settings_service.get_setting(key="proxy") == {
        "enabled": True,
        "tor": False,
        "url": "socks5h://127.0.0.1:9050",
    }


def csp_violations(driver) -> list[str]:
    return [
        entry["message"]
        for entry in driver.get_log("browser")
        if "Content Security Policy" in entry["message"] or "Content-Security-Policy" in entry["message"]
    ]


def test_the_admin_works_under_its_content_security_policy(browser, live_server, site_data, django_user_model):
    """Every kind of page, with its scripts and SVG charts, and not one CSP violation in the console."""
    from selenium.webdriver.common.by import By

    django_user_model.objects.create_superuser("admin", "admin@example.org", "correct horse")
    base = live_server.url
    browser.get(f"{base}/admin/")
    find(browser, "#id_username").send_keys("admin")
    find(browser, "#id_password").send_keys("correct horse")
    find(browser, "input[type=submit]").click()
    assert find(browser, "#pairs-by-source svg rect.ff-bar")

    run = site_data.runs["completed"]
    pages = [
        reverse("admin:storage_trainingrun_change", args=[run.pk]),
        reverse("admin:storage_scrapesession_change", args=[site_data.reddit.pk]),
        reverse("admin:storage_trainingconfig_change", args=[site_data.config.pk]),
        reverse("admin:storage_setting_change", args=["huggingface.token"]),
        reverse("admin:storage_applog_changelist"),
        reverse("admin:storage_trainingrun_changelist"),
    ]
    for url in pages:
        browser.get(base + url)
        find(browser, "#content")
    browser.get(base + reverse("admin:storage_trainingrun_change", args=[run.pk]))
    assert find(browser, "#loss-chart svg path.ff-series-train").size["width"] > 300

    # The pairs list: the admin's actions.js still runs (select all, then the action counter).
    browser.get(base + reverse("admin:storage_scrapedpair_changelist") + f"?session__id__exact={site_data.chan.pk}")
    find(browser, "#action-toggle").click()
    boxes = browser.find_elements(By.CSS_SELECTOR, "input.action-select")
    assert len(boxes) == 25 and all(box.is_selected() for box in boxes)
    assert "25 of 25 selected" in find(browser, ".action-counter").text
    assert csp_violations(browser) == []

    # The console check is real: an inline script is refused and reported.
    browser.execute_script(
        "const s = document.createElement('script'); s.textContent = 'window.ffInline = 1;';"
        " document.body.appendChild(s);"
    )
    assert browser.execute_script("return window.ffInline === undefined")
    assert wait_for(lambda: csp_violations(browser), what="the reported violation")


SHOTS = Path(os.environ.get("FF_SHOTS_DIR", str(SCREENSHOTS)))


def shot(driver, name: str) -> Path:
    """A screenshot under FF_SHOTS_DIR (screenshots/ by default) for a person to look at."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(WINDOW[0], max(WINDOW[1], min(height + 120, 4000)))
    path = SHOTS / name
    driver.save_screenshot(str(path))
    driver.set_window_size(*WINDOW)
    return path


def log_in(driver, base: str, django_user_model) -> None:
    django_user_model.objects.create_superuser("admin", "admin@example.org", "correct horse")
    driver.get(f"{base}/admin/")
    find(driver, "#id_username").send_keys("admin")
    find(driver, "#id_password").send_keys("correct horse")
    find(driver, "input[type=submit]").click()
    find(driver, "#dash-pairs")


def test_logs_clean_up_from_the_button(browser, live_server, site_data, django_user_model):
    """The list's "Delete older than…" button leads to the clean-up; running it deletes and says so."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    from storage.models import AppLog

    base = live_server.url
    log_in(browser, base, django_user_model)
    browser.get(base + reverse("admin:storage_applog_changelist"))
    button = find(browser, f".object-tools a[href='{reverse('admin:storage_applog_clear')}']")
    assert button.get_attribute("textContent") == "Delete older than…"
    button.click()
    field = find(browser, "#id_older_than_days")
    assert "3 log records" in find(browser, "#content-main p").text
    shot(browser, "logs-clean-up.png")
    field.clear()
    field.send_keys("30")
    Select(browser.find_element(By.ID, "id_level")).select_by_value("")
    browser.find_element(By.CSS_SELECTOR, "input[type=submit][value=Delete]").click()
    assert "Deleted 1 log record older than 30 days." in find(browser, "ul.messagelist li").text
    assert sorted(AppLog.objects.values_list("level", flat=True)) == ["ERROR", "WARNING"]
    shot(browser, "logs-after-clean-up.png")


def test_deep_search_pages_keep_the_search_and_the_session(
    browser, live_server, site_data, django_user_model, monkeypatch
):
    """A search counted to its cap pages on past the cap; a page past the end keeps the filter."""
    from selenium.webdriver.common.by import By

    from storage.admin import pairs as pairs_admin

    # The 10,000-match cap and 100 rows a page, in miniature: 10 and 5.
    monkeypatch.setattr(pairs_admin, "SEARCH_COUNT_CAP", 10)
    monkeypatch.setattr(pairs_admin.ScrapedPairAdmin, "list_per_page", 5)
    base = live_server.url
    log_in(browser, base, django_user_model)
    session = site_data.reddit
    browser.get(base + reverse("admin:storage_scrapedpair_changelist") + f"?session__id__exact={session.pk}")
    search = find(browser, "#searchbar")
    search.send_keys("question")
    search.submit()
    assert "10+ results" in find(browser, "#changelist-search .small.quiet").text
    for page in (2, 3, 4):
        browser.find_element(By.CSS_SELECTOR, f"p.paginator a[href*='p={page}']").click()
        wait_for(lambda page=page: f"p={page}" in browser.current_url, what=f"page {page}")
        assert find(browser, "#searchbar").get_attribute("value") == "question"
    rows = browser.find_elements(By.CSS_SELECTOR, "#result_list tbody tr")
    assert [row.find_element(By.CSS_SELECTOR, ".field-session_link").text for row in rows] == [
        f"{session.pk}: {session.label}"
    ] * 5
    shot(browser, "pairs-deep-search-page.png")

    browser.get(browser.current_url.replace("p=4", "p=99"))
    assert "There is no page 99; this is page 8 of 8." in find(browser, "ul.messagelist li").text
    assert find(browser, "#searchbar").get_attribute("value") == "question"
    assert f"session__id__exact={session.pk}" in browser.current_url
    assert len(browser.find_elements(By.CSS_SELECTOR, "#result_list tbody tr")) == 5
    shot(browser, "pairs-past-the-end.png")


def test_session_ids_are_shown_where_commands_need_them(browser, live_server, site_data, django_user_model):
    from selenium.webdriver.common.by import By

    base = live_server.url
    log_in(browser, base, django_user_model)
    session = site_data.reddit
    browser.get(base + reverse("admin:storage_scrapesession_changelist"))
    ids = [cell.text for cell in browser.find_elements(By.CSS_SELECTOR, "#result_list tbody th.field-id")]
    assert str(session.pk) in ids
    shot(browser, "sessions-with-ids.png")
    browser.find_element(By.LINK_TEXT, str(session.pk)).click()
    assert find(browser, "#content h2").text == f"Session {session.pk}: {session.label}"
    shot(browser, "session-title.png")

    run = site_data.runs["completed"]
    browser.get(base + reverse("admin:storage_trainingrun_changelist"))
    link = browser.find_element(By.LINK_TEXT, f"session {session.pk}: {session.label}")
    shot(browser, "runs-dataset-column.png")
    browser.get(base + reverse("admin:storage_trainingrun_change", args=[run.pk]))
    assert find(browser, ".field-dataset_column").text.endswith(f"session {session.pk}: {session.label}")
    link = browser.find_element(By.CSS_SELECTOR, ".field-dataset_column a")
    link.click()
    assert find(browser, "#content h2").text == f"Session {session.pk}: {session.label}"
