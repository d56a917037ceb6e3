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


def follow(driver, element) -> None:
    """Click something that loads a new page, and wait until the new page has replaced the old one.

    Without the wait, the next find() can still match an element of the old page (a "#content p"
    exists on both), which goes stale under the test a moment later: a flaky failure in CI.
    The old page is marked with a property of its window object, which the next page does not
    have. While the browser swaps documents, ChromeDriver may answer any command with an error
    (a stale element, a destroyed JavaScript context, "Node with given id does not belong to
    the document"): that means "not yet", so the wait asks again.
    """
    from selenium.common.exceptions import WebDriverException

    driver.execute_script("window.ffLeavingPage = true")
    element.click()

    def replaced() -> bool:
        try:
            return driver.execute_script(
                "return window.ffLeavingPage === undefined && document.readyState === 'complete'"
            )
        except WebDriverException:
            return False

    wait_for(replaced, what="the next page to load")


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
    follow(browser, find(browser, "input[type=submit]"))
    assert find(browser, "#dash-pairs").text == "65"
    assert find(browser, "#pairs-by-source svg rect.ff-bar")
    assert screenshot(browser, "dashboard.png").stat().st_size > 10_000

    # Open a session and follow to its pairs.
    browser.get(base + reverse("admin:storage_scrapesession_changelist"))
    follow(browser, browser.find_element(By.LINK_TEXT, site_data.reddit.name))
    follow(browser, find(browser, "a.button[href*='session__id__exact']"))
    rows = wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, "#result_list tbody tr"), what="pair rows")
    assert len(rows) == 40
    # The pairs list names a session with its id, as every command takes it.
    expected = {f"{site_data.reddit.pk}: {site_data.reddit.name}"}
    assert {row.find_element(By.CSS_SELECTOR, ".field-session_link").text for row in rows} == expected

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
    follow(browser, browser.find_element(By.NAME, "_save"))
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
    follow(browser, find(browser, "input[type=submit]"))
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


def test_an_import_uploaded_in_the_browser_runs_as_a_job_and_links_its_session(
    browser, live_server, site_data, django_user_model, tmp_path
):
    """Upload a JSONL on the import page, watch the job page refresh itself to done, open the new session."""
    from selenium.webdriver.common.by import By

    from tests.helpers.jobs import start_worker, stop_worker

    django_user_model.objects.create_superuser("admin", "admin@example.org", "correct horse")
    base = live_server.url
    browser.get(f"{base}/admin/")
    find(browser, "#id_username").send_keys("admin")
    find(browser, "#id_password").send_keys("correct horse")
    follow(browser, find(browser, "input[type=submit]"))
    find(browser, "#content")

    scrape = tmp_path / "fresh-scrape.jsonl"
    scrape.write_text(
        "".join(json.dumps({"input": f"new question {i}", "output": f"new answer {i}"}) + "\n" for i in range(30))
    )
    worker = start_worker()
    try:
        browser.get(base + reverse("admin:storage_scrapesession_changelist"))
        follow(browser, find(browser, "a.ff-import-link"))
        find(browser, "#id_file").send_keys(str(scrape))
        find(browser, "#id_name").send_keys("Uploaded in the browser")
        screenshot(browser, "import-page.png")
        follow(browser, find(browser, "input[type=submit].default"))

        # The job's page: it refreshes itself (static JS polling the status endpoint) until the job is done.
        link = wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, "a.ff-job-session"), what="the finished job")[0]
        assert "Succeeded" in find(browser, ".ff-job-state").text
        bar = find(browser, ".ff-progress .ff-progress-bar")
        assert bar.size["width"] > 0
        screenshot(browser, "job-page.png")
        follow(browser, link)
        assert find(browser, "#id_name").get_attribute("value") == "Uploaded in the browser"
        assert "new question 0" in find(browser, ".field-first_pairs").text

        browser.get(base + reverse("admin:storage_job_changelist"))
        find(browser, "#result_list")
        screenshot(browser, "jobs-list.png")
        assert csp_violations(browser) == []
    finally:
        stop_worker(worker)


def run_session_action(browser, base: str, action: str, sessions) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.select import Select

    browser.get(base + reverse("admin:storage_scrapesession_changelist"))
    for session in sessions:
        find(browser, f"input.action-select[value='{session.pk}']").click()
    Select(browser.find_element(By.NAME, "action")).select_by_value(action)
    follow(browser, find(browser, "button[name=index], .actions button"))


def test_merge_and_dedupe_confirm_in_the_browser(browser, live_server, site_data, django_user_model):
    """Merge asks for a name (a unique default) and the mode; dedupe shows a dry run with examples first."""
    from selenium.webdriver.common.by import By

    from storage.models import ScrapeSession
    from storage.services import sessions as sessions_service

    django_user_model.objects.create_superuser("admin", "admin@example.org", "correct horse")
    base = live_server.url
    browser.get(f"{base}/admin/")
    find(browser, "#id_username").send_keys("admin")
    find(browser, "#id_password").send_keys("correct horse")
    follow(browser, find(browser, "input[type=submit]"))
    find(browser, "#content")

    run_session_action(browser, base, "merge", [site_data.reddit, site_data.chan])
    name = find(browser, "#id_name")
    assert name.get_attribute("value").startswith(f"Merge of {min(site_data.reddit.pk, site_data.chan.pk)}, ")
    screenshot(browser, "merge-confirm.png")
    name.clear()
    name.send_keys("Reddit and 4chan")
    browser.find_element(By.CSS_SELECTOR, "input[value=interleave]").click()
    follow(browser, find(browser, "input[type=submit][value=Merge]"))
    assert "Merged 2 sessions (interleave)" in find(browser, "ul.messagelist li").text
    merged = ScrapeSession.objects.get(name="Reddit and 4chan")

    sessions_service.add_scraped_pairs(session_id=merged.pk, pairs=[{"input": "question 0", "output": "answer 0"}])
    run_session_action(browser, base, "remove_duplicates", [merged])
    assert "nothing has been deleted yet" in find(browser, "h2.ff-dry-run").text
    rows = browser.find_elements(By.CSS_SELECTOR, "table.ff-examples tbody tr")
    assert rows and "question 0" in rows[0].text
    screenshot(browser, "dedupe-dry-run.png")
    button = find(browser, "input[name=apply]")
    count = button.get_attribute("value").split()[1]  # "Remove N duplicate pair(s)"
    total = ScrapeSession.objects.get(pk=merged.pk).pair_count
    follow(browser, button)
    assert find(browser, "ul.messagelist li").text.startswith(f"Removed {count} duplicate pair")
    assert ScrapeSession.objects.get(pk=merged.pk).pair_count == total - int(count)


def test_curation_pages_scan_profile_and_a_new_session(browser, live_server, session_factory, django_user_model):
    """Scan a session, download it redacted, profile its lengths and make a session without the long pairs."""
    from selenium.webdriver.common.by import By

    from storage.models import ScrapeSession
    from storage.services.sessions import add_scraped_pairs

    shots = Path(os.environ.get("FINEFOUNDRY_SCAN_SHOTS", "/tmp/shots-scan"))
    shots.mkdir(parents=True, exist_ok=True)
    session = session_factory(source="reddit", name="scraped threads")
    add_scraped_pairs(
        session_id=session.pk,
        pairs=[
            {"input": "Contact me at jane.doe@example.com or +1 415 555 0132", "output": "Will do."},
            {"input": "My key is hf_AbCdEfGhIjKlMnOpQrStUv12, is that bad?", "output": "Yes, revoke it now."},
            {"input": "Server 192.168.10.4 refuses ssh", "output": "Check the firewall. " * 60},
            *({"input": f"Question {i} about LoRA ranks", "output": f"Answer {i}: try r=16."} for i in range(20)),
        ],
    )
    django_user_model.objects.create_superuser("admin", "admin@example.org", "correct horse")
    base = live_server.url
    browser.get(f"{base}/admin/")
    find(browser, "#id_username").send_keys("admin")
    find(browser, "#id_password").send_keys("correct horse")
    follow(browser, find(browser, "input[type=submit]"))
    find(browser, "#content")

    browser.get(base + reverse("admin:storage_scrapesession_change", args=[session.pk]))
    follow(browser, browser.find_element(By.PARTIAL_LINK_TEXT, "Safe to publish?"))
    follow(browser, find(browser, ".ff-scan-form input[type=submit]"))  # small: scanned inside the request
    table = find(browser, "table.ff-scan-counts")
    assert "hf_AbCd" not in browser.page_source and "jane.doe@example.com" not in browser.page_source
    assert "[SECRET]" in table.text
    browser.save_screenshot(str(shots / "scan.png"))
    links = browser.find_elements(By.CSS_SELECTOR, "a.ff-download[href*='redact=1']")
    next(link for link in links if link.text == "JSONL").click()
    expected = browser.downloads / f"session-{session.pk}.redacted.jsonl"
    wait_for(lambda: expected.exists() and not list(browser.downloads.glob("*.crdownload")), what="the download")
    records = [json.loads(line) for line in expected.read_text(encoding="utf-8").splitlines()]
    assert records[0]["input"] == "Contact me at [EMAIL] or [PHONE]" and len(records) == 23

    browser.get(base + reverse("admin:storage_scrapesession_profile", args=[session.pk]))
    find(browser, "#id_max_seq_length").send_keys("100")
    follow(browser, find(browser, ".ff-profile-form input[type=submit]"))
    assert "1 of 23 pairs" in find(browser, ".ff-over").text
    assert len(browser.find_elements(By.CSS_SELECTOR, ".ff-profile-charts svg rect.ff-bar")) >= 6
    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.set_window_size(WINDOW[0], min(height + 120, 4000))
    browser.save_screenshot(str(shots / "profile.png"))
    browser.set_window_size(*WINDOW)
    follow(browser, find(browser, "form[method=post] input[type=submit]"))
    assert "Created scraped threads (≤ 100 tokens) with 22 pairs" in find(browser, "ul.messagelist li").text
    assert ScrapeSession.objects.get(name="scraped threads (≤ 100 tokens)").pair_count == 22
    assert csp_violations(browser) == []


READER_SHOTS = Path("/tmp/shots-reader")


PHONE = (390, 844)


def reader_shot(driver, name: str) -> Path:
    """Save the whole page at the current viewport width to /tmp/shots-reader/ for a person to look at."""
    READER_SHOTS.mkdir(exist_ok=True)
    width = driver.execute_script("return window.innerWidth")
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": min(height, 4000), "deviceScaleFactor": 1, "mobile": width < 500},
    )
    path = READER_SHOTS / name
    driver.save_screenshot(str(path))
    return path


def set_viewport(driver, size: tuple[int, int]) -> None:
    width, height = size
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 500},
    )


def reader_data(session_factory):
    from storage.models import ScrapedPair
    from storage.services import sessions as sessions_service

    session = session_factory(source="stackexchange", name="LoRA questions")
    other = session_factory(source="reddit", name="r/LocalLLaMA")
    filler = "Some context before the interesting part. " * 4
    sessions_service.add_scraped_pairs(
        session_id=other.pk,
        pairs=[
            {"input": f"Unrelated question {i}", "output": "answer", "source_url": "https://reddit.com/x"}
            for i in range(3)
        ],
    )
    sessions_service.add_scraped_pairs(
        session_id=session.pk,
        pairs=[
            {
                "input": "What LoRA rank should I use for a 7B model?",
                "output": f"{filler}A LoRA rank of 16 is a good start.\nExample:\n```python\nconfig = LoraConfig(r=16, lora_alpha=32)\n"
                "model = get_peft_model(model, config)\n```\nThen train as usual.",
                "source_url": "https://stackoverflow.com/q/1",
                "votes": 12,
            },
            {
                "input": "ما هو LoRA؟\nسؤال عن الضبط الدقيق",
                "output": "LoRA هي طريقة لضبط النماذج بكفاءة.",
                "source_url": "https://ar.stackexchange.com/q/2",
            },
            {
                "input": "<script>alert('x')</script> lora?",
                "output": "Never rendered as HTML: <b>bold</b>",
                "source_url": "https://stackoverflow.com/q/3",
            },
        ],
    )
    return session, other, list(ScrapedPair.objects.filter(session=session).order_by("-id"))


def test_reading_pairs_in_a_real_browser_at_desktop_and_phone_width(
    browser, live_server, session_factory, django_user_model
):
    """Search with snippets, the reader's keys and edit in place, the filters, the pair form; desktop and phone."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    from storage.models import ScrapedPair

    _session, other, pairs = reader_data(session_factory)
    django_user_model.objects.create_superuser("admin", "admin@example.org", "correct horse")
    base = live_server.url
    changelist = base + reverse("admin:storage_scrapedpair_changelist")
    browser.get(f"{base}/admin/")
    find(browser, "#id_username").send_keys("admin")
    find(browser, "#id_password").send_keys("correct horse")
    follow(browser, find(browser, "input[type=submit]"))
    find(browser, "#content")

    for label, size in (("desktop", WINDOW), ("phone", PHONE)):
        set_viewport(browser, size)
        # A search: every row says where it matched, terms marked; the page says how terms combine.
        browser.get(changelist)
        search = find(browser, "#searchbar")
        search.send_keys("lora")
        search.send_keys(Keys.ENTER)
        wait_for(lambda: "q=lora" in browser.current_url, what="the search")
        assert "contains every term" in find(browser, "#searchbar_helptext").text
        rows = browser.find_elements(By.CSS_SELECTOR, "#result_list tbody tr")
        assert len(rows) == 3
        marks = [m.text.lower() for m in browser.find_elements(By.CSS_SELECTOR, "td.field-match mark")]
        assert marks and set(marks) == {"lora"}
        assert "<script>" in rows[0].find_element(By.CSS_SELECTOR, "td.field-match").text  # shown as text
        assert browser.execute_script("return document.documentElement.scrollWidth") <= size[0] + 1
        reader_shot(browser, f"{label}-1-search.png")

        # Read the first match, then move with the keys, staying within the search.
        set_viewport(browser, size)
        follow(browser, rows[0].find_element(By.CSS_SELECTOR, "a.ff-read-link"))
        wait_for(lambda: "/read/" in browser.current_url, what="the reader")
        assert "q=lora" in browser.current_url
        assert "alert('x')" in find(browser, "#ff-input .ff-prose").text
        body = browser.find_element(By.TAG_NAME, "body")
        body.send_keys("j")
        wait_for(lambda: f"/{pairs[1].pk}/read/" in browser.current_url, what="j: the next pair")
        rtl = find(browser, "#ff-input .ff-prose")
        assert rtl.get_attribute("dir") == "rtl"
        assert browser.execute_script("return getComputedStyle(arguments[0]).direction", rtl) == "rtl"
        assert rtl.text.count("\n") == 1  # the line break is kept
        reader_shot(browser, f"{label}-2-reader-rtl.png")
        set_viewport(browser, size)
        browser.find_element(By.TAG_NAME, "body").send_keys(Keys.ARROW_RIGHT)
        wait_for(lambda: f"/{pairs[2].pk}/read/" in browser.current_url, what="→: the next pair")
        code = find(browser, "#ff-output pre.ff-code-block code.language-python")
        assert code.text.startswith("config = LoraConfig(r=16")
        assert browser.find_elements(By.CSS_SELECTOR, ".ff-next.button") == []  # the last match: no next
        browser.find_element(By.TAG_NAME, "body").send_keys("?")
        assert find(browser, "#ff-shortcuts").is_displayed()
        assert browser.execute_script("return document.documentElement.scrollWidth") <= size[0] + 1
        reader_shot(browser, f"{label}-3-reader-code-help.png")
        set_viewport(browser, size)
        browser.find_element(By.TAG_NAME, "body").send_keys("k")
        wait_for(lambda: f"/{pairs[1].pk}/read/" in browser.current_url, what="k: the previous pair")

    # Edit in place (desktop): e opens the form with the focus in the input; keys typed there stay there.
    set_viewport(browser, WINDOW)
    browser.find_element(By.TAG_NAME, "body").send_keys("e")
    box = find(browser, "#ff-edit textarea[name=input_text]")
    wait_for(lambda: browser.switch_to.active_element == box, what="the focus in the input box")
    box.send_keys(Keys.CONTROL, Keys.END)
    box.send_keys(" jk")
    assert f"/{pairs[1].pk}/read/" in browser.current_url
    follow(browser, browser.find_element(By.CSS_SELECTOR, "#ff-edit input[type=submit]"))
    assert "was saved" in find(browser, "ul.messagelist li").text
    assert ScrapedPair.objects.get(pk=pairs[1].pk).input_text.endswith("سؤال عن الضبط الدقيق jk")
    assert "q=lora" in browser.current_url
    # An invalid edit shows its error in place and keeps the page.
    browser.find_element(By.TAG_NAME, "body").send_keys("e")
    box = find(browser, "#ff-edit textarea[name=output_text]")
    box.clear()
    follow(browser, browser.find_element(By.CSS_SELECTOR, "#ff-edit input[type=submit]"))
    assert "This field is required" in find(browser, "#ff-edit .errorlist").text
    reader_shot(browser, "desktop-4-reader-edit-error.png")
    set_viewport(browser, WINDOW)

    # Filters: the session id box (in place, keeping the search), a domain, a length class.
    browser.get(changelist + "?q=lora")
    session_box = find(browser, "#ff-session-id")
    session_box.send_keys(str(other.pk), Keys.ENTER)
    wait_for(lambda: f"session__id__exact={other.pk}" in browser.current_url, what="the session filter")
    assert "q=lora" in browser.current_url
    assert browser.find_elements(By.CSS_SELECTOR, "#result_list tbody tr") == []
    browser.get(changelist)
    follow(browser, find(browser, "a[href='?domain=stackoverflow.com']"))
    wait_for(lambda: "domain=stackoverflow.com" in browser.current_url, what="the domain filter")
    shown = {int(b.get_attribute("value")) for b in browser.find_elements(By.CSS_SELECTOR, "input.action-select")}
    assert shown == {pairs[0].pk, pairs[2].pk}
    domain_box = find(browser, "#ff-domain")
    domain_box.clear()
    domain_box.send_keys("reddit.com", Keys.ENTER)
    wait_for(lambda: "domain=reddit.com" in browser.current_url, what="a typed domain")
    assert len(browser.find_elements(By.CSS_SELECTOR, "input.action-select")) == 3
    browser.get(changelist + "?input_length=short&has_metadata=yes")
    shown = {int(b.get_attribute("value")) for b in browser.find_elements(By.CSS_SELECTOR, "input.action-select")}
    assert shown == {pairs[2].pk}  # the one with metadata (votes)
    reader_shot(browser, "desktop-5-filters.png")
    set_viewport(browser, PHONE)
    browser.get(changelist + "?input_length=short")
    reader_shot(browser, "phone-5-filters.png")

    # The pair form: tall text boxes with a monospace switch, a Read link.
    for label, size in (("desktop", WINDOW), ("phone", PHONE)):
        set_viewport(browser, size)
        browser.get(base + reverse("admin:storage_scrapedpair_change", args=[pairs[0].pk]))
        box = find(browser, "textarea#id_output_text")
        assert box.size["height"] > 250
        switch = find(browser, ".ff-mono-switch input")
        before = "ff-mono" in box.get_attribute("class")
        assert before == switch.is_selected()  # remembered across pages (localStorage)
        switch.click()
        assert ("ff-mono" in box.get_attribute("class")) == switch.is_selected() != before
        assert find(browser, "a.ff-read-link").get_attribute("href").endswith(f"/{pairs[0].pk}/read/")
        assert browser.execute_script("return document.documentElement.scrollWidth") <= size[0] + 1
        reader_shot(browser, f"{label}-6-pair-form.png")
    assert csp_violations(browser) == []


def test_near_duplicate_review_in_a_real_browser(browser, live_server, django_user_model):
    """Sessions list → "Find near-duplicates…" → mark a pair → confirm → it is gone; screenshots in /tmp/shots-neardup."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    from storage.models import ScrapedPair
    from storage.services import sessions as sessions_service

    question = "How do I fix a python import error in my virtualenv when pip installs the package twice?"
    answer = "Delete the virtualenv, create it again and install the package once with pip; then import works."
    stored = sessions_service.create_scrape_session(source="reddit", name="stored scrape")
    sessions_service.add_scraped_pairs(session_id=stored.pk, pairs=[{"input": question, "output": answer}])
    new = sessions_service.create_scrape_session(source="4chan", name="new scrape")
    variants = [question.replace("twice", "again"), question.upper(), "A different question about ovens?"]
    sessions_service.add_scraped_pairs(
        session_id=new.pk, pairs=[{"input": text, "output": answer} for text in variants]
    )
    shots = Path("/tmp/shots-neardup")
    shots.mkdir(exist_ok=True)
    django_user_model.objects.create_superuser("admin", "admin@example.org", "correct horse")
    base = live_server.url
    browser.get(f"{base}/admin/")
    find(browser, "#id_username").send_keys("admin")
    find(browser, "#id_password").send_keys("correct horse")
    follow(browser, find(browser, "input[type=submit]"))
    find(browser, "#content")

    browser.get(base + reverse("admin:storage_scrapesession_changelist"))
    find(browser, f"input.action-select[value='{new.pk}']").click()
    Select(find(browser, "select[name=action]")).select_by_value("find_near_duplicates")
    follow(browser, find(browser, "button[name=index]"))
    first_variant, upper, _ = ScrapedPair.objects.filter(session=new).order_by("id").values_list("id", flat=True)
    assert find(browser, "table.ff-cluster ins").text == "again?"
    assert not browser.find_elements(By.CSS_SELECTOR, f"#remove-{ScrapedPair.objects.get(session=stored).pk}")
    browser.save_screenshot(str(shots / "review.png"))

    find(browser, f"#remove-{upper}").click()
    follow(browser, find(browser, "input[name=review]"))
    assert "1 pair(s) will be deleted" in find(browser, "#content p").text
    browser.save_screenshot(str(shots / "confirm.png"))
    follow(browser, find(browser, "input[type=submit].default"))
    assert "Removed 1 near-duplicate pair(s)." in find(browser, "ul.messagelist li").text
    browser.save_screenshot(str(shots / "after.png"))
    assert list(ScrapedPair.objects.filter(session=new).values_list("id", flat=True).order_by("id")) == [
        first_variant,
        _,
    ]
    new.refresh_from_db()
    assert new.pair_count == 2
    assert csp_violations(browser) == []


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
    follow(driver, find(driver, "input[type=submit]"))
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
    follow(browser, button)
    field = find(browser, "#id_older_than_days")
    assert "3 log records" in find(browser, "#content-main p").text
    shot(browser, "logs-clean-up.png")
    field.clear()
    field.send_keys("30")
    Select(browser.find_element(By.ID, "id_level")).select_by_value("")
    follow(browser, browser.find_element(By.CSS_SELECTOR, "input[type=submit][value=Delete]"))
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
        follow(browser, browser.find_element(By.CSS_SELECTOR, f"p.paginator a[href*='p={page}']"))
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
    follow(browser, browser.find_element(By.LINK_TEXT, str(session.pk)))
    assert find(browser, "#content h2").text == f"Session {session.pk}: {session.label}"
    shot(browser, "session-title.png")

    run = site_data.runs["completed"]
    browser.get(base + reverse("admin:storage_trainingrun_changelist"))
    link = browser.find_element(By.LINK_TEXT, f"session {session.pk}: {session.label}")
    shot(browser, "runs-dataset-column.png")
    browser.get(base + reverse("admin:storage_trainingrun_change", args=[run.pk]))
    assert find(browser, ".field-dataset_column").text.endswith(f"session {session.pk}: {session.label}")
    link = browser.find_element(By.CSS_SELECTOR, ".field-dataset_column a")
    follow(browser, link)
    assert find(browser, "#content h2").text == f"Session {session.pk}: {session.label}"


CURJOBS_SHOTS = Path(os.environ.get("FINEFOUNDRY_CURJOBS_SHOTS", "/tmp/shots-curjobs"))


def test_a_scan_job_started_in_the_browser_then_its_findings_and_the_flagged_filter(
    browser, live_server, session_factory, django_user_model, settings
):
    """Scan page → "Scan now" (a job: over the inline limit) → the real worker → the job page links the findings →
    "list them" (the flagged filter) → a kind → the reader marks the secret, masked."""
    from selenium.webdriver.common.by import By

    from storage.models import ScrapedPair
    from storage.services.sessions import add_scraped_pairs
    from tests.helpers.jobs import start_worker, stop_worker

    settings.FINEFOUNDRY_INLINE_MAX_PAIRS = 10
    token = "hf_BrowserPlantedTokenAbcdef0123"
    CURJOBS_SHOTS.mkdir(parents=True, exist_ok=True)
    session = session_factory(source="reddit", name="scraped threads")
    add_scraped_pairs(
        session_id=session.pk,
        pairs=[
            {"input": "Contact me at jane.doe@example.com or +1 415 555 0132", "output": "Will do."},
            {"input": f"My key is {token}, is that bad?", "output": "Yes.\nRevoke it now:\n```sh\nhf auth logout\n```"},
            *({"input": f"Question {i} about LoRA ranks", "output": f"Answer {i}: try r=16."} for i in range(20)),
        ],
    )
    secret_pair = ScrapedPair.objects.filter(session=session).order_by("id")[1]
    base = live_server.url
    log_in(browser, base, django_user_model)
    worker = start_worker()
    try:
        browser.get(base + reverse("admin:storage_scrapesession_scan", args=[session.pk]))
        assert "has not been scanned yet" in find(browser, ".ff-scan-summary").text
        assert "background job" in find(browser, ".ff-scan-form .help").text
        browser.save_screenshot(str(CURJOBS_SHOTS / "scan-before.png"))
        follow(browser, find(browser, ".ff-scan-form input[type=submit]"))
        # The job's page follows the job by itself until it is done, then links to the findings.
        link = wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, "a.ff-job-open"), what="the finished scan")[0]
        assert "Succeeded" in find(browser, ".ff-job-state").text
        browser.save_screenshot(str(CURJOBS_SHOTS / "scan-job.png"))
        assert token not in browser.page_source
        follow(browser, link)
        summary = find(browser, ".ff-scan-summary").text
        assert "3 findings in 2 pairs" in summary
        assert token not in browser.page_source and "jane.doe@example.com" not in browser.page_source
        browser.save_screenshot(str(CURJOBS_SHOTS / "scan-findings.png"))

        follow(browser, find(browser, "a.ff-flagged-link"))
        rows = wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, "#result_list tbody tr"), what="flagged rows")
        assert len(rows) == 2
        # The previews mask what the stored scan found.
        assert token not in browser.page_source and "jane.doe@example.com" not in browser.page_source
        assert "[SECRET]" in rows[0].text
        selected = [li.text for li in browser.find_elements(By.CSS_SELECTOR, "#changelist-filter li.selected")]
        assert "flagged (any kind)" in selected
        browser.save_screenshot(str(CURJOBS_SHOTS / "flagged-list.png"))
        follow(browser, browser.find_element(By.LINK_TEXT, "flagged: secret"))
        rows = wait_for(
            lambda: [r for r in browser.find_elements(By.CSS_SELECTOR, "#result_list tbody tr") if r.text] or None,
            what="secret rows",
        )
        assert len(rows) == 1 and str(secret_pair.pk) in rows[0].text

        follow(browser, rows[0].find_element(By.CSS_SELECTOR, "a.ff-read-link"))
        mark = find(browser, "#ff-input mark.ff-finding-secret")
        assert mark.text == "[SECRET]"
        assert token not in find(browser, "#ff-input").text and "My key is" in find(browser, "#ff-input").text
        assert find(browser, "#ff-output code").text == "hf auth logout"
        assert "1 thing to keep private" in find(browser, ".ff-findings-note").text
        browser.save_screenshot(str(CURJOBS_SHOTS / "reader-masked.png"))
        assert csp_violations(browser) == []
    finally:
        stop_worker(worker)


def test_near_duplicates_of_a_large_selection_found_by_a_job_then_reviewed_in_the_browser(
    browser, live_server, django_user_model, settings
):
    """Sessions list → "Find near-duplicates…" over the inline limit → the job page follows the real worker →
    "Review 1 cluster" → the review page reads the job's clusters."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    from storage.models import ScrapedPair
    from storage.services import sessions as sessions_service
    from tests.helpers.jobs import start_worker, stop_worker

    settings.FINEFOUNDRY_INLINE_MAX_PAIRS = 2
    CURJOBS_SHOTS.mkdir(parents=True, exist_ok=True)
    question = "How do I fix a python import error in my virtualenv when pip installs the package twice?"
    answer = "Delete the virtualenv, create it again and install the package once with pip; then import works."
    new = sessions_service.create_scrape_session(source="4chan", name="new scrape")
    variants = [question, question.replace("twice", "again"), "A different question about ovens?"]
    sessions_service.add_scraped_pairs(session_id=new.pk, pairs=[{"input": v, "output": answer} for v in variants])
    first, again, _ = ScrapedPair.objects.filter(session=new).order_by("id").values_list("id", flat=True)
    base = live_server.url
    log_in(browser, base, django_user_model)
    worker = start_worker()
    try:
        browser.get(base + reverse("admin:storage_scrapesession_changelist"))
        find(browser, f"input.action-select[value='{new.pk}']").click()
        Select(find(browser, "select[name=action]")).select_by_value("find_near_duplicates")
        follow(browser, find(browser, "button[name=index]"))
        link = wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, "a.ff-job-open"), what="the finished job")[0]
        assert link.text == "Review 1 cluster"
        browser.save_screenshot(str(CURJOBS_SHOTS / "near-duplicates-job.png"))
        follow(browser, link)
        assert "background job" in find(browser, ".ff-from-job").text
        assert find(browser, "table.ff-cluster ins").text == "again?"
        assert browser.find_elements(By.CSS_SELECTOR, f"#remove-{first}")
        assert browser.find_elements(By.CSS_SELECTOR, f"#remove-{again}")
        browser.save_screenshot(str(CURJOBS_SHOTS / "near-duplicates-review.png"))
        assert csp_violations(browser) == []
    finally:
        stop_worker(worker)
