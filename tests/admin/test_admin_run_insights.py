"""Loss curves from trainer logs, artefact listings inside the storage root, run comparison."""

from __future__ import annotations

import datetime as dt
import os

import pytest

from storage.admin.charts import Series, line_chart, nice_ticks, thin
from storage.models import TrainingRun
from storage.services import run_reports


@pytest.mark.parametrize(
    ("lines", "train", "evaluation", "x_label"),
    [
        (
            [
                "{'loss': 1.92, 'learning_rate': 0.0002, 'epoch': 0.05}",
                "noise",
                "{'loss': 1.5, 'grad_norm': 0.9, 'learning_rate': 0.0001, 'epoch': 0.1}",
                "{'eval_loss': 1.7, 'eval_runtime': 2.1, 'epoch': 0.1}",
                "{'train_runtime': 100.0, 'train_loss': 1.6, 'epoch': 0.1}",
            ],
            [(0.05, 1.92), (0.1, 1.5)],
            [(0.1, 1.7)],
            "epoch",
        ),
        (
            ["step 0 loss 2.500", "step 1 loss 2.400", "Step 2/200 | loss=2.3"],
            [(0, 2.5), (1, 2.4), (2, 2.3)],
            [],
            "step",
        ),
        (['12:00:01 {"loss": 0.9, "step": 10}', '{"loss": 0.8, "step": 20}'], [(10, 0.9), (20, 0.8)], [], "step"),
        (["{'loss': nan, 'epoch': 1}", "{'loss': 'x'}", "{broken", "step x loss y"], [], [], "step"),
        ([], [], [], "step"),
    ],
)
def test_parse_loss_curve(lines, train, evaluation, x_label):
    curve = run_reports.parse_loss_curve(lines)
    assert curve.train == train
    assert curve.eval == evaluation
    assert curve.x_label == x_label


def test_log_dicts_without_epochs_are_plotted_in_log_order():
    curve = run_reports.parse_loss_curve(["{'loss': 3.0}", "{'loss': 2.0, 'epoch': 1.0}"])
    assert curve.train == [(1.0, 3.0), (2.0, 2.0)]
    assert curve.x_label == "log entry"


@pytest.mark.parametrize(
    ("logs", "lines"),
    [(None, []), ("a\nb", ["a", "b"]), (["x", 3, {"k": 1}], ["x", "3", '{"k": 1}']), ({"loss": 1}, ['{"loss": 1}'])],
)
def test_log_lines_accept_whatever_the_column_holds(logs, lines):
    assert run_reports.log_lines(logs) == lines


def test_line_chart_is_an_svg_with_one_path_per_series_and_escapes_labels():
    svg = line_chart(
        [Series("<train>", [(i, 2 - i / 10) for i in range(5)], "ff-series-train"), Series("eval", [], "x")],
        x_label="step",
        y_label="loss",
    )
    assert svg.startswith("<svg") and svg.count("<path") == 1
    assert "<train>" not in svg and "&lt;train&gt;" in svg
    assert line_chart([Series("empty", [], "x")], x_label="step", y_label="loss") == ""


def test_chart_helpers_round_ticks_and_thin_long_series():
    assert nice_ticks(1.43, 2.49) == [1.0, 1.5, 2.0, 2.5]
    assert nice_ticks(0.0, 9.0) == [0.0, 2.5, 5.0, 7.5, 10.0]
    points = [(float(i), 1.0) for i in range(10_001)]
    kept = thin(points, limit=600)
    assert len(kept) <= 601 and kept[0] == points[0] and kept[-1] == points[-1]


def test_artefacts_lists_files_with_sizes_and_does_not_follow_symlinks(storage_root, tmp_path):
    run_dir = storage_root / "run_1"
    (run_dir / "outputs").mkdir(parents=True)
    (run_dir / "outputs" / "adapter.bin").write_bytes(b"x" * 1000)
    (run_dir / "log.txt").write_text("hello")
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "huge.bin").write_bytes(b"y" * 50_000)
    os.symlink(outside, run_dir / "linked_dir")
    os.symlink(outside / "huge.bin", run_dir / "linked_file")

    listing = run_reports.list_artefacts(str(run_dir))
    assert listing.problem is None
    files = {f.path: (f.size, f.is_symlink) for f in listing.files}
    assert files == {
        "log.txt": (5, False),
        "outputs/adapter.bin": (1000, False),
        "linked_dir": (0, True),
        "linked_file": (0, True),
    }
    assert listing.total_size == 1005


@pytest.mark.parametrize(
    ("make_path", "problem"),
    [
        (lambda root, tmp: None, "no storage path"),
        (lambda root, tmp: str(tmp), "outside the storage root"),
        (lambda root, tmp: str(root / ".." / ".." / "x"), "outside the storage root"),
        (lambda root, tmp: str(root / "missing"), "does not exist"),
        (lambda root, tmp: str(root / "link"), "symbolic link"),
    ],
)
def test_artefacts_are_listed_only_inside_the_storage_root(storage_root, tmp_path, make_path, problem):
    os.symlink(tmp_path, storage_root / "link")
    listing = run_reports.list_artefacts(make_path(storage_root, tmp_path))
    assert problem in listing.problem
    assert listing.files == []


def test_listing_is_capped_but_counts_every_file(storage_root):
    run_dir = storage_root / "many"
    run_dir.mkdir()
    for i in range(12):
        (run_dir / f"f{i:02}").write_bytes(b"z")
    listing = run_reports.list_artefacts(str(run_dir), max_files=5)
    assert len(listing.files) == 5 and listing.file_count == 12 and listing.truncated
    assert listing.total_size == 12


def test_duration_runs_to_completion_or_to_now_while_running():
    start = dt.datetime(2024, 1, 1, 12, 0, tzinfo=dt.UTC)
    done = TrainingRun(status="completed", started_at=start, completed_at=start + dt.timedelta(hours=1, minutes=5))
    running = TrainingRun(status="running", started_at=start)
    assert run_reports.format_duration(run_reports.run_duration(done)) == "1h 05m"
    now = start + dt.timedelta(seconds=75)
    assert run_reports.format_duration(run_reports.run_duration(running, now=now)) == "1m 15s"
    assert run_reports.run_duration(TrainingRun(status="pending")) is None
    assert run_reports.format_duration(None) == "—"


def test_compare_runs_puts_differing_hyperparameters_first():
    first = TrainingRun(pk=1, name="a", status="completed", hyperparameters={"lr": "2e-4", "epochs": 3, "bsz": 2})
    first.logs = ["step 1 loss 2.0", "step 2 loss 1.25"]
    second = TrainingRun(pk=2, name="b", status="failed", hyperparameters={"lr": "1e-4", "epochs": 3})
    comparison = run_reports.compare_runs([first, second])
    rows = [(row.label, row.values, row.differs) for row in comparison.hyperparameters]
    assert rows == [
        ("bsz", ["2", "—"], True),
        ("lr", ["2e-4", "1e-4"], True),
        ("epochs", ["3", "3"], False),
    ]
    summary = {row.label: row.values for row in comparison.summary}
    assert summary["final training loss"] == ["1.25", "—"]
    assert summary["status"] == ["completed", "failed"]
