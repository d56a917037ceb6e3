"""The scan and the near-duplicate search started from the admin: inline when small, else a job run by the real
worker (`manage.py db_worker`); the stored result on the scan and review pages; the "flagged by the scan" filter;
permissions; a planted token never shown."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.urls import reverse

from storage.models import Job, ScanFinding, ScrapedPair, SessionScan
from storage.services import sessions as sessions_service
from storage.services.scan import scan_sessions
from tests.helpers.jobs import run_worker_batch, wait_for_job

pytestmark = pytest.mark.django_db(transaction=True)

TOKEN = "hf_PlantedInAPairAbcdefGhij0123"
EMAIL = "jane.doe@example.com"
SESSIONS = reverse("admin:storage_scrapesession_changelist")
PAIRS = reverse("admin:storage_scrapedpair_changelist")
JOBS = reverse("admin:storage_job_changelist")


def scan_url(session) -> str:
    return reverse("admin:storage_scrapesession_scan", args=[session.pk])


def job_page(job) -> str:
    return reverse("admin:storage_job_change", args=[job.pk])


@pytest.fixture
def scraped(session_factory):
    session = session_factory(source="reddit", name="scraped threads")
    sessions_service.add_scraped_pairs(
        session_id=session.pk,
        pairs=[
            {"input": f"Contact me at {EMAIL}", "output": "Will do."},
            {"input": f"My key is {TOKEN}, is that bad?", "output": "Yes, revoke it now."},
            {"input": "Server 192.168.10.4 refuses ssh", "output": "Check the firewall."},
            *({"input": f"Question {i} about LoRA ranks", "output": f"Answer {i}: try r=16."} for i in range(20)),
        ],
    )
    session.refresh_from_db()
    return session


def pair_ids(session) -> list[int]:
    return list(ScrapedPair.objects.filter(session=session).order_by("id").values_list("id", flat=True))


def listed_ids(client, **params) -> set[int]:
    response = client.get(PAIRS, params)
    assert response.status_code == 200, response.content[:500]
    return {pair.pk for pair in response.context["cl"].result_list}


def staff(django_user_model, name: str, *codenames: str):
    user = django_user_model.objects.create_user(name, password="pw", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    return user


def test_a_large_scan_runs_in_the_real_worker_and_its_findings_show_on_the_scan_page(admin_client, scraped, settings):
    settings.FINEFOUNDRY_INLINE_MAX_PAIRS = 10  # the session's 23 pairs are "large"
    page = admin_client.get(scan_url(scraped)).content.decode()
    assert "has not been scanned yet" in page and "runs as a background job" in page
    started = admin_client.post(scan_url(scraped), {"scan": "Scan now"})
    job = Job.objects.get()
    assert started.status_code == 302 and started["Location"] == job_page(job)
    assert (job.kind, job.status, job.params) == ("scan", "queued", {"session_ids": [scraped.pk]})
    assert not ScanFinding.objects.exists()  # nothing happened inside the request

    run_worker_batch()
    job = wait_for_job(job.pk)
    assert job.status == "succeeded", job.error
    assert (job.progress_done, job.progress_total) == (23, 23)
    assert job.result["findings"] == 3 and job.result["flagged_pairs"] == 3
    assert job.result["per_kind"] == {"email": 1, "phone": 0, "ip": 1, "credit_card": 0, "secret": 1}
    expected = {(f.pair_id, f.side, f.kind, f.start, f.end) for f in scan_sessions(session_ids=[scraped.pk]).findings}
    assert set(ScanFinding.objects.values_list("pair_id", "side", "kind", "start", "end")) == expected
    assert SessionScan.objects.get().job_id == job.pk

    job_html = admin_client.get(job_page(job)).content.decode()
    assert f'href="{scan_url(scraped)}"' in job_html and "Open the findings of session" in job_html
    listing = admin_client.get(JOBS).content.decode()
    assert "3 findings" in listing and "Succeeded" in listing
    page = admin_client.get(scan_url(scraped)).content.decode()
    assert "<strong>3</strong> findings in <strong>3</strong> pairs" in page and "[SECRET]" in page
    assert 'value="Scan again"' in page
    status = admin_client.get(reverse("admin:storage_job_status") + f"?ids={job.pk}").content.decode()
    flagged = listed_ids(admin_client, scan="flagged")
    pairs_list = admin_client.get(PAIRS, {"scan": "flagged"}).content.decode()
    searched = admin_client.get(PAIRS, {"q": "key is"}).content.decode()  # the match column's snippet
    assert "My key is [SECRET]" in pairs_list and "<mark>key</mark> <mark>is</mark> [SECRET]" in searched
    reader = admin_client.get(reverse("admin:storage_scrapedpair_read", args=[pair_ids(scraped)[1]]))
    # The planted token: nowhere in the tables, the job's report, its pages, the scan page, the status JSON.
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM storage_scan_findings")
        rows = repr(cursor.fetchall())
        cursor.execute("SELECT * FROM storage_scans")
        rows += repr(cursor.fetchall())
    for text in (rows, json.dumps(job.result), job.message, job_html, listing, page, status, pairs_list, searched):
        assert TOKEN not in text and TOKEN[3:12] not in text and EMAIL not in text
    assert flagged == set(pair_ids(scraped)[:3])
    reader_html = reader.content.decode()
    assert 'class="ff-finding ff-finding-secret"' in reader_html and "[SECRET]" in reader_html
    # The reader's texts mask it, and the superuser's edit-in-place box holds it as a slot (pair_secrets).
    assert TOKEN not in reader_html and "My key is ⟦SECRET 1⟧, is that bad?" in reader_html


def test_a_small_scan_runs_inline_from_the_sessions_action(admin_client, scraped, session_factory):
    clean = session_factory(source="4chan", pairs=5)
    response = admin_client.post(
        SESSIONS, {"action": "scan_for_findings", "_selected_action": [scraped.pk, clean.pk]}, follow=True
    )
    assert "Scanned 28 pairs: 3 findings stored." in response.content.decode()
    assert not Job.objects.exists()
    assert set(SessionScan.objects.values_list("session_id", "status")) == {
        (scraped.pk, "current"),
        (clean.pk, "current"),
    }
    # Scanning again replaces the findings: the same, once.
    admin_client.post(SESSIONS, {"action": "scan_for_findings", "_selected_action": [scraped.pk]})
    assert ScanFinding.objects.count() == 3 and SessionScan.objects.filter(session_id=scraped.pk).count() == 1


def test_the_flagged_filter_selects_what_the_stored_findings_say(admin_client, scraped, session_factory):
    other = session_factory(source="4chan", name="other")
    sessions_service.add_scraped_pairs(session_id=other.pk, pairs=[{"input": f"mail {EMAIL}", "output": "x"}])
    unscanned = session_factory(source="4chan", name="never scanned")
    sessions_service.add_scraped_pairs(session_id=unscanned.pk, pairs=[{"input": f"mail {EMAIL}", "output": "x"}])
    admin_client.post(SESSIONS, {"action": "scan_for_findings", "_selected_action": [scraped.pk, other.pk]})
    email, secret, ip, *_clean = pair_ids(scraped)
    (other_email,) = pair_ids(other)
    (unscanned_pair,) = pair_ids(unscanned)
    everything = set(ScrapedPair.objects.values_list("pk", flat=True))
    assert listed_ids(admin_client, scan="flagged") == {email, secret, ip, other_email}
    assert listed_ids(admin_client, scan="email") == {email, other_email}
    assert listed_ids(admin_client, scan="secret") == {secret}
    assert listed_ids(admin_client, scan="ip", session__id__exact=scraped.pk) == {ip}
    assert listed_ids(admin_client, scan="credit_card") == set()
    assert listed_ids(admin_client, scan="not_flagged") == everything - {email, secret, ip, other_email}
    assert unscanned_pair in listed_ids(admin_client, scan="not_flagged")
    assert listed_ids(admin_client, scan="flagged", q="key") == {secret}
    refused = admin_client.get(PAIRS, {"scan": "nonsense"})  # Django's answer to a bad filter value
    assert (refused.status_code, refused["Location"]) == (302, f"{PAIRS}?e=1")
    # Edited since the scan: no longer flagged (its findings were of the old text) until the next scan.
    pair = ScrapedPair.objects.get(pk=secret)
    change = reverse("admin:storage_scrapedpair_change", args=[secret])
    form = admin_client.get(change).context["adminform"].form
    data = {**{name: form[name].value() or "" for name in form.fields}, "output_text": "Revoked."}
    data["input_text"] = pair.input_text.replace(TOKEN, "[removed]")
    assert admin_client.post(change, data).status_code == 302
    assert listed_ids(admin_client, scan="flagged") == {email, ip, other_email}
    assert "Not flagged in the pairs list" in admin_client.get(change).content.decode()
    # The scan page counts what is current, and its links open the filtered list.
    page = admin_client.get(scan_url(scraped)).content.decode()
    assert "<strong>2</strong> findings in <strong>2</strong> pairs" in page
    assert "scan=flagged" in page and f"session__id__exact={scraped.pk}" in page


def test_permissions_to_see_findings_and_to_start_a_scan(client, scraped, django_user_model, settings):
    settings.FINEFOUNDRY_INLINE_MAX_PAIRS = 10
    # Sessions only, no pairs: no findings at all.
    sessions_only = staff(django_user_model, "sessions", "view_scrapesession", "change_scrapesession")
    client.force_login(sessions_only)
    assert client.get(scan_url(scraped)).status_code == 403
    assert client.post(scan_url(scraped), {"scan": "1"}).status_code == 403
    response = client.post(SESSIONS, {"action": "scan_for_findings", "_selected_action": [scraped.pk]})
    assert response.status_code == 403
    # Viewing pairs and sessions: sees the findings and the filter, may not start a scan.
    viewer = staff(django_user_model, "viewer", "view_scrapesession", "view_scrapedpair")
    client.force_login(viewer)
    assert client.get(scan_url(scraped)).status_code == 200
    assert client.post(scan_url(scraped), {"scan": "1"}).status_code == 403
    response = client.post(SESSIONS, {"action": "scan_for_findings", "_selected_action": [scraped.pk]})
    assert not Job.objects.exists() and not SessionScan.objects.exists()
    # Allowed to change sessions too: starts the job, which is theirs to see.
    scanner = staff(django_user_model, "scanner", "view_scrapesession", "change_scrapesession", "view_scrapedpair")
    client.force_login(scanner)
    started = client.post(scan_url(scraped), {"scan": "1"})
    job = Job.objects.get()
    assert started["Location"] == job_page(job) and job.requested_by == scanner
    run_worker_batch()
    assert wait_for_job(job.pk).status == "succeeded"
    client.force_login(viewer)
    assert client.get(job_page(job)).status_code in (302, 404)  # another user's job is not theirs to see
    page = client.get(scan_url(scraped)).content.decode()
    assert "<strong>3</strong> findings" in page and "Scan again" not in page and TOKEN not in page
    reader = client.get(reverse("admin:storage_scrapedpair_read", args=[pair_ids(scraped)[1]])).content.decode()
    assert "[SECRET]" in reader and TOKEN not in reader  # a view-only reader has no edit box either


def test_near_duplicates_of_a_large_selection_run_as_a_job_and_the_review_page_reads_its_clusters(
    admin_client, session_factory, django_user_model, settings
):
    settings.FINEFOUNDRY_INLINE_MAX_PAIRS = 2
    question = "How do I fix a python import error in my virtualenv when pip installs the package twice?"
    answer = "Delete the virtualenv, create it again and install the package once with pip; then import works."
    stored = session_factory(source="reddit", name="stored")
    sessions_service.add_scraped_pairs(session_id=stored.pk, pairs=[{"input": question, "output": answer}])
    new = session_factory(source="4chan", name="new")
    variants = [question.replace("twice", "again"), question.upper(), "A different question about ovens?"]
    sessions_service.add_scraped_pairs(session_id=new.pk, pairs=[{"input": v, "output": answer} for v in variants])
    started = admin_client.post(SESSIONS, {"action": "find_near_duplicates", "_selected_action": [new.pk]})
    job = Job.objects.get()
    assert started["Location"] == job_page(job) and job.kind == "near-duplicates"
    assert job.params == {"session_ids": [new.pk], "threshold": 0.8}
    # Without the job, the review page of a large selection offers to start one (a POST), never computes.
    review = reverse("admin:storage_scrapesession_near_duplicates")
    offer = admin_client.get(review, {"sessions": str(new.pk), "threshold": "0.8"}).content.decode()
    assert "runs as a background job" in offer and 'name="start"' in offer and "ff-cluster" not in offer

    run_worker_batch()
    job = wait_for_job(job.pk)
    assert job.status == "succeeded", job.error
    kept, first_variant, upper, _other = (
        pair_ids(stored)[0],
        *pair_ids(new),
    )
    assert job.result["clusters"] == 1
    job_html = admin_client.get(job_page(job)).content.decode()
    assert "Review 1 cluster" in job_html
    url = job.result["open_url"]
    assert url in job_html.replace("&amp;", "&")
    page = admin_client.get(url).content.decode()
    assert f"background job {job.pk}" in page and f'id="remove-{upper}"' in page and f"remove-{kept}" not in page
    # Remove one pair through the confirmation; the page (still from the job's file) leaves it out after.
    form = {"sessions": str(new.pk), "threshold": "0.8", "job": str(job.pk), "page": "1", "remove": [str(upper)]}
    confirm = admin_client.post(review, {**form, "review": "1"})
    assert "1 pair(s) will be deleted" in confirm.content.decode()
    done = admin_client.post(review, {**form, "confirm": "yes"}, follow=True)
    assert "Removed 1 near-duplicate pair(s)." in done.content.decode()
    assert not ScrapedPair.objects.filter(pk=upper).exists()
    after = admin_client.get(url).content.decode()
    assert f'id="remove-{first_variant}"' in after and f"remove-{upper}" not in after
    # Another user cannot read this job's clusters through the URL.
    other = staff(
        django_user_model,
        "other",
        "view_scrapesession",
        "change_scrapesession",
        "view_scrapedpair",
        "delete_scrapedpair",
    )
    admin_client.force_login(other)
    refused = admin_client.get(url, follow=True).content.decode()
    assert "Cannot review" in refused and "ff-cluster" not in refused
