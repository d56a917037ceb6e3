"""Background jobs: started from the admin, run by the real worker process (`manage.py db_worker`), reported,
downloaded with permission checks; a job whose worker is killed is found and failed by doctor."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils.html import escape

from storage.jobs.runner import start_job
from storage.models import Job, ScrapedPair, ScrapeSession
from storage.services import jobs as jobs_service
from storage.services import sessions as sessions_service
from tests.helpers.jobs import TEST_KINDS, run_worker_batch, start_worker, stop_worker, wait_for_job
from tests.helpers.processes import PROJECT_ROOT, child_env

pytestmark = pytest.mark.django_db(transaction=True)

SESSIONS = reverse("admin:storage_scrapesession_changelist")
JOBS = reverse("admin:storage_job_changelist")
IMPORT = reverse("admin:storage_scrapesession_import")


def job_page(job) -> str:
    return reverse("admin:storage_job_change", args=[job.pk])


def download_url(job) -> str:
    return reverse("admin:storage_job_download", args=[job.pk])


def test_export_to_file_runs_in_the_worker_and_downloads_what_the_streamed_export_gives(admin_client, session_factory):
    session = session_factory(source="reddit")
    pairs = [{"input": f"question {i} é", "output": f"answer {i}"} for i in range(300)]
    sessions_service.add_scraped_pairs(session_id=session.pk, pairs=pairs)
    form = admin_client.post(SESSIONS, {"action": "export_to_file", "_selected_action": [session.pk]})
    assert form.status_code == 200 and b"Start the export" in form.content
    started = admin_client.post(
        SESSIONS, {"action": "export_to_file", "_selected_action": [session.pk], "apply": "yes", "fmt": "jsonl"}
    )
    job = Job.objects.get()
    assert started.status_code == 302 and started["Location"] == job_page(job)
    assert job.status == "queued"

    run_worker_batch()
    job = wait_for_job(job.pk)
    assert job.status == "succeeded", job.error
    assert (job.progress_done, job.progress_total) == (300, 300)
    assert job.result["pairs"] == 300
    page = admin_client.get(job_page(job)).content.decode()
    assert download_url(job) in page
    listing = admin_client.get(JOBS).content.decode()
    assert "Succeeded" in listing and download_url(job) in listing and "ff-progress" in listing

    downloaded = b"".join(admin_client.get(download_url(job)).streaming_content)
    streamed = admin_client.post(SESSIONS, {"action": "download_jsonl", "_selected_action": [session.pk]})
    assert downloaded == b"".join(streamed.streaming_content)
    assert [json.loads(line)["input"] for line in downloaded.decode().splitlines()][:2] == [
        "question 0 é",
        "question 1 é",
    ]


def test_an_export_job_reports_metadata_it_could_not_use(admin_client, session_factory):
    session = session_factory(pairs=2)
    ScrapedPair.objects.filter(pk=ScrapedPair.objects.filter(session=session).order_by("id")[0].pk).update(
        metadata={"system_prompt": 5}
    )
    job = start_job(kind="export", label="chat", params={"session_ids": [session.pk], "fmt": "chatml"}, user=None)
    run_worker_batch()
    job = wait_for_job(job.pk)
    assert job.status == "succeeded", job.error
    assert job.result["pairs"] == 2
    assert job.result["unusable metadata"].startswith("ignored 1 time (first: pair ")
    assert "unusable metadata" in admin_client.get(job_page(job)).content.decode()


def test_the_status_endpoint_reports_progress_of_the_visible_jobs_only(admin_client, django_user_model):
    other = django_user_model.objects.create_user("other", password="x", is_staff=True)
    mine = start_job(kind="export", label="mine", params={"session_ids": [1], "fmt": "jsonl"}, user=None)
    Job.objects.filter(pk=mine.pk).update(requested_by=django_user_model.objects.get(username="admin"))
    theirs = start_job(kind="export", label="theirs", params={"session_ids": [1], "fmt": "jsonl"}, user=other)
    jobs_service.record_progress(job_id=mine.pk, done=5, total=10, message="halfway")
    data = admin_client.get(reverse("admin:storage_job_status") + f"?ids={mine.pk},{theirs.pk}").json()
    assert {j["id"] for j in data["jobs"]} == {mine.pk, theirs.pk}  # a superuser sees all
    client = admin_client.__class__()
    client.force_login(other)
    data = client.get(reverse("admin:storage_job_status") + f"?ids={mine.pk},{theirs.pk}").json()
    assert [(j["id"], j["done"]) for j in data["jobs"]] == [(theirs.pk, 0)]


def _finished_export(user, tmp_name: str = "session-1.jsonl") -> Job:
    job = start_job(kind="export", label="export", params={"session_ids": [1], "fmt": "jsonl"}, user=user)
    relative, path = jobs_service.result_file_for(job_id=job.pk, filename=tmp_name)
    path.write_text('{"input": "secret data", "output": "x"}\n')
    jobs_service.mark_succeeded(job_id=job.pk, result={"pairs": 1}, result_file=relative)
    return Job.objects.get(pk=job.pk)


def test_other_users_jobs_are_hidden_and_downloads_need_the_view_permission(client, django_user_model):
    owner = django_user_model.objects.create_user("owner", password="x", is_staff=True)
    owner.user_permissions.add(Permission.objects.get(codename="view_scrapesession"))
    stranger = django_user_model.objects.create_user("stranger", password="x", is_staff=True)
    stranger.user_permissions.add(Permission.objects.get(codename="view_scrapesession"))
    job = _finished_export(owner)

    client.force_login(owner)
    assert client.get(JOBS).status_code == 200
    assert download_url(job) in client.get(JOBS).content.decode()
    assert b"secret data" in b"".join(client.get(download_url(job)).streaming_content)

    client.force_login(stranger)
    assert "export" not in [row.label for row in client.get(JOBS).context["cl"].result_list]
    assert client.get(download_url(job)).status_code == 404
    assert client.get(job_page(job)).status_code in (302, 404)

    # The owner loses the right to view sessions: the job stays listed, its file no longer downloads.
    owner.user_permissions.clear()
    owner = django_user_model.objects.get(pk=owner.pk)
    client.force_login(owner)
    assert download_url(job) not in client.get(JOBS).content.decode()
    assert client.get(download_url(job)).status_code == 403


def test_a_download_never_leaves_the_jobs_folder(admin_client, settings, tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_text("not a job's file")
    job = _finished_export(None)
    for escaping in ("../outside.txt", str(outside), "../../outside.txt", ""):
        Job.objects.filter(pk=job.pk).update(result_file=escaping)
        assert admin_client.get(download_url(job)).status_code == 404, escaping


def test_a_job_whose_worker_is_killed_is_found_and_failed_by_doctor(settings):
    settings.FINEFOUNDRY_JOB_KIND_MODULES = (TEST_KINDS,)
    job = start_job(kind="wait-forever", label="waits", params={}, user=None)
    worker = start_worker()
    try:
        wait_for_job(job.pk, statuses=("running",))
        job = Job.objects.get(pk=job.pk)
        assert job.worker_pid == worker.pid
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(timeout=30)
    finally:
        stop_worker(worker)
    assert Job.objects.get(pk=job.pk).status == "running"  # nobody told the database

    doctor = [sys.executable, "manage.py", "doctor", "--check", "jobs"]
    found = subprocess.run(doctor, cwd=PROJECT_ROOT, env=child_env(), capture_output=True, text=True, timeout=120)
    assert found.returncode == 1, found.stdout + found.stderr
    assert f"job {job.pk} (waits) is running but its worker (process {worker.pid}" in found.stdout
    fixed = subprocess.run(
        [*doctor, "--fix"], cwd=PROJECT_ROOT, env=child_env(), capture_output=True, text=True, timeout=120
    )
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    job = Job.objects.get(pk=job.pk)
    assert job.status == "failed" and job.error.startswith("marked failed by doctor: its worker")
    from django_tasks_db.models import DBTaskResult

    assert DBTaskResult.objects.get(pk=job.task_id).status == "FAILED"


def test_a_silent_worker_is_called_dead_after_the_heartbeat_limit(settings):
    from django.utils import timezone

    job = start_job(kind="export", label="silent", params={"session_ids": [1], "fmt": "jsonl"}, user=None)
    long_ago = timezone.now() - jobs_service.STALE_AFTER * 2
    Job.objects.filter(pk=job.pk).update(
        status="running", worker_host="another-host", worker_pid=1, started_at=long_ago, heartbeat_at=long_ago
    )
    (dead,) = jobs_service.dead_jobs()
    assert "no heartbeat for 20 minutes" in dead.reason
    Job.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now())
    assert jobs_service.dead_jobs() == []


def upload(admin_client, filename: str, content: bytes, **fields):
    return admin_client.post(IMPORT, {"file": SimpleUploadedFile(filename, content), "fmt": "auto", **fields})


def test_an_uploaded_file_is_imported_by_the_worker_and_the_job_links_the_session(admin_client, settings):
    lines = b"".join(json.dumps({"input": f"q{i}", "output": f"a{i}"}).encode() + b"\n" for i in range(50))
    started = upload(admin_client, "scrape.jsonl", lines, name="Uploaded scrape")
    job = Job.objects.get()
    assert started.status_code == 302 and started["Location"] == job_page(job)
    run_worker_batch()
    job = wait_for_job(job.pk)
    assert job.status == "succeeded", job.error
    session = ScrapeSession.objects.get(name="Uploaded scrape")
    assert job.result["session_id"] == session.pk and job.result["pairs"] == 50
    assert ScrapedPair.objects.filter(session=session).count() == 50
    page = admin_client.get(job_page(job)).content.decode()
    assert reverse("admin:storage_scrapesession_change", args=[session.pk]) in page
    assert not list((settings.FINEFOUNDRY_JOBS_DIR / "uploads").iterdir())  # the upload is gone


def test_a_bad_upload_fails_its_job_with_the_commands_error_and_imports_nothing(admin_client, settings):
    bad = b'{"input": "q", "output": "a"}\n{"input": "q2", "output": ""}\n'
    upload(admin_client, "broken.jsonl", bad)
    job = Job.objects.get()
    run_worker_batch()
    job = wait_for_job(job.pk)
    assert job.status == "failed"
    assert "broken.jsonl" in job.error and "line 2" in job.error
    assert "uploads" not in job.error  # our copy's path is not shown
    assert not ScrapeSession.objects.exists()
    assert escape(job.error) in admin_client.get(job_page(job)).content.decode()


def test_the_upload_limit_refuses_a_large_file_before_any_job(admin_client, settings):
    settings.FINEFOUNDRY_MAX_UPLOAD_BYTES = 10
    response = upload(admin_client, "big.jsonl", b'{"input": "q", "output": "a"}\n')
    assert response.status_code == 200 and b"the limit is 10 bytes" in response.content
    assert not Job.objects.exists()


def test_a_large_merge_runs_as_a_job_with_the_confirmed_name(admin_client, session_factory, settings):
    settings.FINEFOUNDRY_INLINE_MAX_PAIRS = 3
    first, second = session_factory(pairs=2), session_factory(pairs=2)
    response = admin_client.post(
        SESSIONS,
        {
            "action": "merge",
            "_selected_action": [first.pk, second.pk],
            "apply": "yes",
            "name": "Big",
            "mode": "interleave",
        },
    )
    job = Job.objects.get()
    assert response.status_code == 302 and response["Location"] == job_page(job)
    assert ScrapeSession.objects.count() == 2
    run_worker_batch()
    job = wait_for_job(job.pk)
    assert job.status == "succeeded", job.error
    merged = ScrapeSession.objects.get(name="Big")
    assert merged.pair_count == 4 and job.result["session_id"] == merged.pk


def test_tasks_py_runs_the_worker_beside_the_server_and_stops_it_with_the_server(monkeypatch, session_factory):
    import tasks
    from tests.helpers.jobs import worker_env

    monkeypatch.setattr(tasks, "PYTHON", sys.executable)  # this checkout's venv is the test run's interpreter
    for key, value in worker_env().items():
        monkeypatch.setenv(key, value)
    session = session_factory(pairs=3)
    job = start_job(
        kind="export", label="by serve's worker", params={"session_ids": [session.pk], "fmt": "csv"}, user=None
    )
    with tasks.worker("--no-reload") as process:
        assert wait_for_job(job.pk).status == "succeeded"
    assert process.returncode is not None  # stopped with the server
    assert jobs_service.result_path(Job.objects.get(pk=job.pk)).read_text().count("\n") == 4


def test_a_jobs_error_is_stored_with_secrets_masked(admin_client):
    from storage.services import settings as settings_service

    settings_service.set_setting(key="huggingface.token", value="plain-words-secret-42")
    job = start_job(kind="export", label="leaky", params={"session_ids": [1], "fmt": "jsonl"}, user=None)
    message = "upload to hub failed with plain-words-secret-42 and hf_" + "A1b2C3d4E5f6G7h8J9k0"
    jobs_service.mark_failed(job_id=job.pk, error=message)
    error = Job.objects.get(pk=job.pk).error
    assert "plain-words-secret-42" not in error and "A1b2C3d4E5f6G7h8J9k0" not in error
    assert "upload to hub failed" in error
    assert "plain-words-secret-42" not in admin_client.get(JOBS).content.decode()
