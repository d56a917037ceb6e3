"""What a training run's record says beyond its fields: loss curve, artefact files, comparison with others."""

from __future__ import annotations

import ast
import datetime as dt
import json
import math
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.utils import timezone

from storage.exceptions import StorageError
from storage.models import TrainingRun
from storage.services.run_files import checked_run_path

# Hugging Face's trainer prints its log dicts with Python repr: {'loss': 1.92, 'learning_rate': 0.0002, 'epoch': 0.05}
LOG_DICT_RE = re.compile(r"\{[^{}]*\}")
# Plain progress lines such as "step 12 loss 1.800" or "Step 12/200 | loss=1.8".
STEP_LOSS_RE = re.compile(
    r"\bstep\s*[:=#]?\s*(?P<step>\d+)(?:\s*/\s*\d+)?\b.*?\bloss\s*[:=]?\s*(?P<loss>[-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)",
    re.IGNORECASE,
)
MAX_ARTEFACT_FILES = 500


@dataclass(frozen=True)
class LossCurve:
    """Loss values in log order; x is the epoch when every point has one, else the step or line number."""

    train: list[tuple[float, float]]
    eval: list[tuple[float, float]]
    x_label: str

    @property
    def final_train_loss(self) -> float | None:
        return self.train[-1][1] if self.train else None

    @property
    def final_eval_loss(self) -> float | None:
        return self.eval[-1][1] if self.eval else None

    def __bool__(self) -> bool:
        return bool(self.train or self.eval)


def log_lines(logs: Any) -> list[str]:
    """A run's logs as lines, whatever shape the column holds (list, raw text, nothing)."""
    if logs is None:
        return []
    if isinstance(logs, str):
        return logs.splitlines()
    if isinstance(logs, list):
        return [item if isinstance(item, str) else json.dumps(item, ensure_ascii=False) for item in logs]
    return [json.dumps(logs, ensure_ascii=False)]


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _log_dict(text: str) -> dict | None:
    """Read one printed log dict; literal_eval evaluates literals only, never code."""
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        try:
            value = json.loads(text)
        except ValueError:
            return None
    return value if isinstance(value, dict) else None


def parse_loss_curve(lines: Iterable[str]) -> LossCurve:
    """Collect training and evaluation loss from trainer log lines."""
    dict_points: list[tuple[str, float | None, float | None, float]] = []
    step_points: list[tuple[float, float]] = []
    for line in lines:
        found_dict = False
        for match in LOG_DICT_RE.finditer(line):
            entry = _log_dict(match.group(0))
            if entry is None:
                continue
            step = _number(entry.get("step"))
            epoch = _number(entry.get("epoch"))
            for key, kind in (("loss", "train"), ("eval_loss", "eval")):
                loss = _number(entry.get(key))
                if loss is not None:
                    dict_points.append((kind, step, epoch, loss))
                    found_dict = True
        if not found_dict:
            match = STEP_LOSS_RE.search(line)
            loss = _number(match.group("loss")) if match else None
            if loss is not None:
                step_points.append((float(match.group("step")), loss))
    if not dict_points:
        return LossCurve(train=step_points, eval=[], x_label="step")
    if all(step is not None for _, step, _, _ in dict_points):
        x_label, xs = "step", [step for _, step, _, _ in dict_points]
    elif all(epoch is not None for _, _, epoch, _ in dict_points):
        x_label, xs = "epoch", [epoch for _, _, epoch, _ in dict_points]
    else:
        x_label, xs = "log entry", [float(position) for position in range(1, len(dict_points) + 1)]
    train = [(x, loss) for x, (kind, _, _, loss) in zip(xs, dict_points, strict=True) if kind == "train"]
    evaluation = [(x, loss) for x, (kind, _, _, loss) in zip(xs, dict_points, strict=True) if kind == "eval"]
    return LossCurve(train=train, eval=evaluation, x_label=x_label)


def loss_curve(run: TrainingRun) -> LossCurve:
    return parse_loss_curve(log_lines(run.logs))


@dataclass(frozen=True)
class ArtefactFile:
    path: str
    size: int
    is_symlink: bool = False


@dataclass(frozen=True)
class ArtefactListing:
    """The files under a run's storage path; `problem` says why nothing could be listed."""

    directory: str | None
    files: list[ArtefactFile] = field(default_factory=list)
    total_size: int = 0
    file_count: int = 0
    problem: str | None = None

    @property
    def truncated(self) -> bool:
        return self.file_count > len(self.files)


def list_artefacts(stored_path: str | None, *, max_files: int = MAX_ARTEFACT_FILES) -> ArtefactListing:
    """List files under a run's storage path, only inside the storage root and never through a symlink."""
    if not stored_path:
        return ArtefactListing(directory=None, problem="This run has no storage path.")
    try:
        resolved = checked_run_path(stored_path)
    except StorageError as exc:
        return ArtefactListing(directory=stored_path, problem=f"Not listed: {exc}.")
    if not resolved.is_dir():
        return ArtefactListing(directory=str(resolved), problem="The directory does not exist (any more).")
    files: list[ArtefactFile] = []
    total = count = 0
    for dirpath, dirnames, filenames in os.walk(resolved, followlinks=False):
        dirnames.sort()
        # os.walk lists a symlink to a directory among dirnames and does not descend into it.
        linked_dirs = [name for name in dirnames if os.path.islink(os.path.join(dirpath, name))]
        for name in sorted(filenames + linked_dirs):
            full = os.path.join(dirpath, name)
            try:
                info = os.lstat(full)
            except OSError:
                continue
            is_link = os.path.islink(full)
            size = 0 if is_link else info.st_size
            total += size
            count += 1
            if len(files) < max_files:
                files.append(ArtefactFile(path=os.path.relpath(full, resolved), size=size, is_symlink=is_link))
    return ArtefactListing(directory=str(resolved), files=files, total_size=total, file_count=count)


def run_duration(run: TrainingRun, *, now: dt.datetime | None = None) -> dt.timedelta | None:
    """Time from start to completion, or to now while the run is still running."""
    if run.started_at is None:
        return None
    end = run.completed_at
    if end is None:
        if run.status != TrainingRun.Status.RUNNING:
            return None
        end = now or timezone.now()
    return max(end - run.started_at, dt.timedelta(0))


def format_duration(duration: dt.timedelta | None, *, coarse: bool = False) -> str:
    """A duration for people: "1h 05m", "3m 12s"; coarse: "90 minutes", "5 hours", "3 days" (for idle times)."""
    if duration is None:
        return "—"
    if coarse:
        minutes = int(duration.total_seconds() // 60)
        if minutes < 120:
            return f"{minutes} minutes"
        hours = minutes // 60
        return f"{hours} hours" if hours < 48 else f"{hours // 24} days"
    seconds = int(duration.total_seconds())
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {seconds:02d}s"
    return f"{seconds}s"


@dataclass(frozen=True)
class ComparisonRow:
    label: str
    values: list[str]
    differs: bool


@dataclass(frozen=True)
class RunComparison:
    runs: list[TrainingRun]
    summary: list[ComparisonRow]
    hyperparameters: list[ComparisonRow]


def _shown(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _row(label: str, values: Sequence[Any]) -> ComparisonRow:
    shown = [_shown(value) for value in values]
    return ComparisonRow(label=label, values=shown, differs=len(set(shown)) > 1)


def _loss_text(loss: float | None) -> str | None:
    return None if loss is None else f"{loss:.4g}"


def compare_runs(runs: Sequence[TrainingRun]) -> RunComparison:
    """Side by side: status, model, dataset, duration, final losses, then every hyperparameter."""
    curves = [loss_curve(run) for run in runs]
    summary = [
        _row("status", [run.status for run in runs]),
        _row("base model", [run.base_model for run in runs]),
        _row("dataset", [f"{run.dataset_source or '—'}: {run.dataset_id or '—'}" for run in runs]),
        _row("duration", [format_duration(run_duration(run)) for run in runs]),
        _row("final training loss", [_loss_text(curve.final_train_loss) for curve in curves]),
        _row("final evaluation loss", [_loss_text(curve.final_eval_loss) for curve in curves]),
    ]
    hps = [run.hyperparameters if isinstance(run.hyperparameters, dict) else {} for run in runs]
    keys = sorted({key for hp in hps for key in hp})
    rows = [_row(key, [hp.get(key) for hp in hps]) for key in keys]
    # Differences first: they are what a comparison is for.
    rows.sort(key=lambda row: not row.differs)
    return RunComparison(runs=list(runs), summary=summary, hyperparameters=rows)
