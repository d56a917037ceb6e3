"""The training run admin: badges, the run page, transitions, cancel, compare, and deletes inside the storage root."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.urls import reverse

from storage.models import TrainingRun
from storage.services import runs

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:storage_trainingrun_changelist")


def change_url(run) -> str:
    return reverse("admin:storage_trainingrun_change", args=[run.pk])


def form_data(run, **changes) -> dict:
    data = {
        "name": run.name,
        "status": run.status,
        "base_model": run.base_model or "",
        "dataset_source": run.dataset_source or "",
        "dataset_id": run.dataset_id or "",
        "output_dir": run.output_dir or "",
        "adapter_path": run.adapter_path or "",
        "checkpoint_path": run.checkpoint_path or "",
    }
    return {**data, **changes}


def messages_of(client) -> list[str]:
    return [str(m) for m in client.get(CHANGELIST).context["messages"]]


def run_action(client, action: str, selected, **extra):
    return client.post(CHANGELIST, {"action": action, "_selected_action": [r.pk for r in selected], **extra})


def test_list_shows_coloured_status_model_dataset_and_duration(admin_client, site_data):
    text = admin_client.get(CHANGELIST).content.decode()
    for status, colour in [("running", "blue"), ("completed", "green"), ("failed", "red"), ("cancelled", "amber")]:
        assert f'<span class="ff-badge ff-badge-{colour}">{status}</span>' in text
    assert "unsloth/Meta-Llama-3.1-8B-Instruct-bnb-4bit" in text
    assert reverse("admin:storage_scrapesession_change", args=[site_data.reddit.pk]) in text


def test_run_page_shows_chart_logs_hyperparameters_artefacts_and_evaluations(admin_client, site_data):
    run = site_data.runs["completed"]
    page = admin_client.get(change_url(run))
    text = page.content.decode()
    chart = text.split('id="loss-chart"')[1].split("</svg>")[0]
    assert "<svg" in chart and chart.count('<path class="ff-line') == 2  # training and evaluation loss
    assert "{&#x27;loss&#x27;: 1.70" in text  # the newest log line is on the page
    assert "&quot;grad_accum&quot;: 4" in text  # hyperparameters, pretty-printed
    assert "outputs/adapter_model.safetensors" in text and "4.0\xa0KB" in text
    assert "hellaswag" in text and "acc_norm" in text
    assert page.context["final_train_loss"] == "1.7"


def test_run_without_loss_lines_explains_what_the_chart_needs(admin_client, site_data):
    text = admin_client.get(change_url(site_data.runs["pending"])).content.decode()
    assert "No loss values in this run" in text


def test_status_choices_offer_only_allowed_transitions(admin_client, site_data):
    form = admin_client.get(change_url(site_data.runs["running"])).context["adminform"].form
    assert [value for value, _ in form.fields["status"].widget.choices] == [
        "running",
        "completed",
        "failed",
        "cancelled",
    ]


def test_an_allowed_status_change_goes_through_the_service(admin_client, site_data):
    run = site_data.runs["pending"]
    response = admin_client.post(change_url(run), form_data(run, status="running", adapter_path="/x/adapter"))
    assert response.status_code == 302
    run.refresh_from_db()
    assert run.status == "running" and run.started_at is not None and run.adapter_path == "/x/adapter"


def test_a_refused_status_change_is_a_form_error_and_changes_nothing(admin_client, site_data):
    run = site_data.runs["completed"]
    response = admin_client.post(change_url(run), form_data(run, status="pending", name="renamed"))
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors["status"]
    assert "it cannot become pending" in errors[0]
    run.refresh_from_db()
    assert (run.status, run.name) == ("completed", "qwen-completed")


def test_storage_path_and_timestamps_are_read_only(admin_client, site_data):
    run = site_data.runs["running"]
    before = (run.storage_path, run.started_at)
    data = form_data(run, storage_path="/etc", started_at="2020-01-01 00:00:00")
    assert admin_client.post(change_url(run), data).status_code == 302
    run.refresh_from_db()
    assert (run.storage_path, run.started_at) == before


def test_adding_a_run_creates_its_directory(admin_client, storage_root):
    response = admin_client.post(
        reverse("admin:storage_trainingrun_add"),
        {"name": "fresh run", "base_model": "m", "dataset_source": "hf", "dataset_id": "a/b", "hyperparameters": "{}"},
    )
    assert response.status_code == 302
    run = TrainingRun.objects.get(name="fresh run")
    assert run.status == "pending"
    assert Path(run.storage_path).parent == storage_root
    assert (Path(run.storage_path) / "checkpoints").is_dir()


def test_mark_cancelled_cancels_running_runs_and_reports_each_refusal(admin_client, site_data):
    chosen = [site_data.runs["running"], site_data.runs["completed"], site_data.runs["pending"]]
    assert run_action(admin_client, "mark_cancelled", chosen).status_code == 302
    statuses = dict(TrainingRun.objects.filter(pk__in=[r.pk for r in chosen]).values_list("name", "status"))
    assert statuses == {"qwen-running": "cancelled", "qwen-completed": "completed", "qwen-pending": "pending"}
    messages = messages_of(admin_client)
    assert any(m.startswith("qwen-completed:") and "cannot become cancelled" in m for m in messages)
    assert any(m.startswith("qwen-pending:") for m in messages)
    assert "Cancelled 1 run." in messages


def test_compare_shows_hyperparameter_differences_and_final_losses(admin_client, site_data):
    chosen = [site_data.runs["completed"], site_data.runs["failed"], site_data.runs["pending"]]
    page = run_action(admin_client, "compare_runs", chosen)
    assert page.status_code == 200
    comparison = page.context["comparison"]
    differing = [row.label for row in comparison.hyperparameters if row.differs]
    assert differing == ["epochs"]
    final = next(row for row in comparison.summary if row.label == "final training loss")
    assert final.values == ["—", "1.7", "1.7"]  # in id order: pending, completed, failed
    assert 'class="ff-differs"' in page.content.decode()


def test_compare_needs_two_runs(admin_client, site_data):
    assert run_action(admin_client, "compare_runs", [site_data.runs["failed"]]).status_code == 302
    assert messages_of(admin_client) == ["Select at least two runs to compare."]


def test_delete_with_artefacts_confirms_then_removes_rows_and_directories(admin_client, site_data):
    chosen = [site_data.runs["completed"], site_data.runs["failed"]]
    directories = [Path(r.storage_path) for r in chosen]
    confirm = run_action(admin_client, "delete_with_artefacts", chosen)
    assert confirm.status_code == 200
    assert str(directories[0]) in confirm.content.decode()
    assert all(d.exists() for d in directories)
    done = run_action(admin_client, "delete_with_artefacts", chosen, post="yes")
    assert done.status_code == 302
    assert not TrainingRun.objects.filter(pk__in=[r.pk for r in chosen]).exists()
    assert not any(d.exists() for d in directories)
    # The evaluation of the deleted run stays, detached (ON DELETE SET NULL).
    site_data.evaluation.refresh_from_db()
    assert site_data.evaluation.training_run_id is None


def test_delete_with_artefacts_keeps_a_run_whose_directory_is_outside_the_root(admin_client, site_data, tmp_path):
    outside = tmp_path / "precious"
    outside.mkdir()
    (outside / "keep.txt").write_text("keep me")
    unsafe = site_data.runs["failed"]
    TrainingRun.objects.filter(pk=unsafe.pk).update(storage_path=str(outside))
    safe = site_data.runs["cancelled"]
    run_action(admin_client, "delete_with_artefacts", [unsafe, safe], post="yes")
    assert TrainingRun.objects.filter(pk=unsafe.pk).exists()
    assert not TrainingRun.objects.filter(pk=safe.pk).exists()
    assert (outside / "keep.txt").read_text() == "keep me"
    messages = messages_of(admin_client)
    assert any("qwen-failed kept" in m and "outside the storage root" in m for m in messages)
    assert "Deleted 1 run and its artefacts." in messages


def test_delete_page_refuses_a_symlinked_directory_and_keeps_the_row(admin_client, site_data, storage_root, tmp_path):
    target = tmp_path / "target"
    target.mkdir()
    link = storage_root / "link_run"
    os.symlink(target, link)
    run = site_data.runs["failed"]
    TrainingRun.objects.filter(pk=run.pk).update(storage_path=str(link))
    url = reverse("admin:storage_trainingrun_delete", args=[run.pk])
    assert "symbolic link" in admin_client.get(url).content.decode()
    response = admin_client.post(url, {"post": "yes"})
    assert response.status_code == 302 and response["Location"] == change_url(run)
    assert TrainingRun.objects.filter(pk=run.pk).exists() and target.exists()


def test_delete_page_deletes_the_run_and_its_directory(admin_client, site_data):
    run = site_data.runs["completed"]
    url = reverse("admin:storage_trainingrun_delete", args=[run.pk])
    assert "adapter_model.safetensors" not in admin_client.get(url).content.decode()  # a summary, not a listing
    assert admin_client.post(url, {"post": "yes"}).status_code == 302
    assert not Path(run.storage_path).exists()
    assert not runs.get_training_run(run_id=run.pk)
