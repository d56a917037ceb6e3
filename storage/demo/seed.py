"""A believable small dataset for a new install, so the admin has something alive to show.

Everything goes through the services (sessions, pairs, runs through their life cycle, configs,
settings, evaluations); only the timestamps are moved back afterwards so the history spreads
over the last days. The same seed and `now` give the same data. The secrets it stores are
obviously fake (`hf_DEMO...`, `rpa_DEMO...`).
"""

from __future__ import annotations

import datetime as dt
import json
import random
import shutil
from dataclasses import dataclass
from pathlib import Path

from django.db import connections, transaction
from django.utils import timezone

from storage.demo.content import (
    ANSWER_FRAMINGS,
    BOARDS,
    ERROR_EVENTS,
    GPUS,
    LOG_EVENTS,
    QUESTION_FRAMINGS,
    SESSIONS,
    SUBREDDITS,
)
from storage.demo.runs import (
    BASE_MODELS,
    BENCHMARKS,
    CONFIGS,
    FAILED_LOG,
    RUNS,
    finished_log,
    hyperparameters,
    trainer_log,
)
from storage.exceptions import StorageError
from storage.models import EvaluationRun, ScrapedPair, ScrapeSession, Setting, TrainingConfig, TrainingRun
from storage.services import configs, evaluations, runs
from storage.services import sessions as sessions_service
from storage.services import settings as settings_service

DEMO_SETTINGS = {
    "huggingface.token": "hf_DEMO0000000000notARealToken00000000",
    "runpod.api_key": "rpa_DEMO_NOT_A_REAL_KEY_0000000000000000000000",
    "ollama": {"enabled": True, "base_url": "http://127.0.0.1:11434", "default_model": "llama3.1:8b"},
    "proxy": {"enabled": False, "tor": False, "url": ""},
    "ui.theme": "dark",
    "training.default_target": "Local",
}
LOG_RECORDS = 160
PAIRS_PER_QA = 6


@dataclass(frozen=True)
class DemoSummary:
    sessions: int
    pairs: int
    runs: int
    configs: int
    settings: int
    evaluations: int
    logs: int


def database_is_empty() -> bool:
    """True when there are no sessions, runs, configs, settings or evaluations (logs do not count)."""
    models = (ScrapeSession, ScrapedPair, TrainingRun, TrainingConfig, Setting, EvaluationRun)
    return not any(model.objects.exists() for model in models)


def seed_demo(*, seed: int = 0, now: dt.datetime | None = None, force: bool = False) -> DemoSummary:
    """Fill an empty database with the demo dataset; with force add it beside existing data, replacing nothing."""
    if not force and not database_is_empty():
        raise StorageError("the database already has data; seed_demo only fills an empty one (force adds beside it)")
    builder = DemoBuilder(random.Random(seed), now or timezone.now())
    try:
        with transaction.atomic():
            return builder.build()
    except BaseException:
        # The rows rolled back; the run directories made meanwhile must go too.
        for directory in builder.directories:
            shutil.rmtree(directory, ignore_errors=True)
        raise


class DemoBuilder:
    def __init__(self, rng: random.Random, now: dt.datetime):
        self.rng = rng
        self.now = now
        self.directories: list[Path] = []

    def ago(self, **delta: float) -> dt.datetime:
        return self.now - dt.timedelta(**delta)

    def build(self) -> DemoSummary:
        sessions = self.sessions()
        run_count, evaluation_count = self.runs(sessions)
        config_count = self.configs()
        setting_count = self.settings()
        log_count = self.logs()
        return DemoSummary(
            sessions=len(sessions),
            pairs=sum(count for _, count in sessions),
            runs=run_count,
            configs=config_count,
            settings=setting_count,
            evaluations=evaluation_count,
            logs=log_count,
        )

    def sessions(self) -> list[tuple[ScrapeSession, int]]:
        made = []
        for index, (source, details, name, dataset_format, url, qas) in enumerate(SESSIONS):
            session = sessions_service.create_scrape_session(
                source=source,
                source_details=details,
                dataset_format=dataset_format,
                metadata={"max_pairs": len(qas) * PAIRS_PER_QA, "delay": 1.0, "demo": True},
                name=name,
            )
            framings = [(q, a) for q in QUESTION_FRAMINGS for a in ANSWER_FRAMINGS]
            pairs = [
                self.pair(q.format(question), a.format(answer), url)
                for question, answer in qas
                for q, a in self.rng.sample(framings, PAIRS_PER_QA)
            ]
            # A few exact duplicates, as real scrapes have, for the admin's dedupe to find.
            pairs += [dict(pair) for pair in self.rng.sample(pairs, 3)]
            self.rng.shuffle(pairs)
            added = sessions_service.add_scraped_pairs(session_id=session.pk, pairs=pairs)
            created = self.ago(days=len(SESSIONS) - index, hours=self.rng.randint(0, 20))
            ScrapeSession.objects.filter(pk=session.pk).update(created_at=created)
            ScrapedPair.objects.filter(session_id=session.pk).update(created_at=created)
            made.append((session, added))
        return made

    def pair(self, question: str, answer: str, url: str | None) -> dict:
        pair = {"input": question, "output": answer}
        if url:
            thread = self.rng.randint(10_000_000, 99_999_999)
            pair["source_url"] = url.format(id=thread)
            pair["score"] = self.rng.randint(1, 900)
        return pair

    def runs(self, sessions: list[tuple[ScrapeSession, int]]) -> tuple[int, int]:
        evaluation_count = 0
        for name, status, model, session_index, total, done, hours_ago, target in RUNS:
            session, _ = sessions[session_index]
            examples = total * 8 // 3  # steps x batch size 8 / 3 epochs
            run = runs.create_training_run(
                name=name,
                base_model=BASE_MODELS[model],
                dataset_source="database",
                dataset_id=session.pk,
                hp=hyperparameters(model, total, "outputs"),
                metadata={"target": target, "demo": True},
            )
            directory = Path(run.storage_path)
            self.directories.append(directory)
            created = self.ago(hours=hours_ago + 0.25)
            updated = created
            if status != TrainingRun.Status.PENDING:
                updated = self.start_and_finish(run, status, model, examples, total, done, hours_ago, directory)
            TrainingRun.objects.filter(pk=run.pk).update(created_at=created, updated_at=updated)
            if status == TrainingRun.Status.COMPLETED:
                evaluation_count += self.evaluations(run, model)
        return len(RUNS), evaluation_count

    def start_and_finish(self, run, status, model, examples, total, done, hours_ago, directory: Path) -> dt.datetime:
        started = self.ago(hours=hours_ago)
        lines = trainer_log(self.rng, model=model, examples=examples, total=total, done=done)
        runs.update_training_run(run_id=run.pk, status="running", started_at=started, logs=lines[:12])
        (directory / "logs" / "train.log").write_text("\n".join(lines) + "\n", encoding="utf-8")
        if status == TrainingRun.Status.RUNNING:
            # Updated minutes ago: alive, so doctor does not call it stuck.
            runs.update_training_run(run_id=run.pk, logs=lines)
            return self.ago(minutes=2)
        finished = started + dt.timedelta(minutes=done * 0.2 + 3)
        changes: dict = {"status": status, "completed_at": finished}
        if status == TrainingRun.Status.COMPLETED:
            adapter = directory / "outputs" / "adapter"
            checkpoint = directory / "checkpoints" / f"checkpoint-{total}"
            self.write_artefacts(adapter, checkpoint, model, total)
            lines += finished_log(self.rng, total=total, adapter_dir=str(adapter))
            changes.update(output_dir=str(directory / "outputs"), adapter_path=str(adapter))
            changes["checkpoint_path"] = str(checkpoint)
        elif status == TrainingRun.Status.FAILED:
            lines += FAILED_LOG
            changes["metadata"] = {**run.metadata, "failure_reason": "CUDA out of memory at step 40"}
        else:
            lines.append(f"Training cancelled by user at step {done}/{total}")
        runs.update_training_run(run_id=run.pk, logs=lines, **changes)
        return finished

    def write_artefacts(self, adapter: Path, checkpoint: Path, model: str, total: int) -> None:
        adapter.mkdir(parents=True)
        config = {"base_model_name_or_path": BASE_MODELS[model], "peft_type": "LORA", "r": 16, "lora_alpha": 16}
        (adapter / "adapter_config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
        (adapter / "README.md").write_text(f"LoRA adapter for {BASE_MODELS[model]} (demo).\n", encoding="utf-8")
        checkpoint.mkdir(parents=True)
        state = {"global_step": total, "epoch": 3.0, "best_metric": None}
        (checkpoint / "trainer_state.json").write_text(json.dumps(state, indent=2), encoding="utf-8")

    def evaluations(self, run: TrainingRun, model: str) -> int:
        count = 0
        for benchmark, (base, gain) in BENCHMARKS.items():
            noise = self.rng.uniform(-0.005, 0.005)
            common = {"base_model": BASE_MODELS[model], "benchmark": benchmark, "num_samples": 200, "batch_size": 8}
            evaluations.save_evaluation_run(**common, metrics={"acc": round(base + noise, 4)}, is_base_eval=True)
            evaluations.save_evaluation_run(
                **common,
                metrics={"acc": round(base + gain + noise, 4), "acc_stderr": 0.0112},
                training_run_id=run.pk,
                adapter_path=run.adapter_path,
            )
            count += 2
        return count

    def configs(self) -> int:
        made = 0
        for name, model, target, steps in CONFIGS:
            if TrainingConfig.objects.filter(name=name).exists():
                continue
            hp = hyperparameters(model, steps, "/data/outputs")
            hp["json_path"] = "data/learnpython.json"
            configs.save_training_config(name=name, config={"hp": hp, "meta": {"train_target": target}})
            made += 1
        if made and configs.get_last_used_config() is None:
            configs.set_last_used_config(name=CONFIGS[0][0])
        return made

    def settings(self) -> int:
        made = 0
        for key, value in DEMO_SETTINGS.items():
            # Never replace a real setting, least of all a real token.
            if not Setting.objects.filter(key=key).exists():
                settings_service.set_setting(key=key, value=value)
                made += 1
        return made

    def logs(self) -> int:
        rows = []
        for index in range(LOG_RECORDS):
            moment = self.ago(days=7) + dt.timedelta(
                minutes=index * 7 * 24 * 60 / LOG_RECORDS + self.rng.randint(0, 40)
            )
            moment = min(moment, self.now).astimezone(dt.UTC).replace(tzinfo=None)
            # The desktop app's handler wrote ISO timestamps; SQLite's default has a space. Both appear in real files.
            stamp = moment.isoformat() if index % 2 else moment.strftime("%Y-%m-%d %H:%M:%S")
            rows.append((stamp, *self.log_record()))
        with connections["default"].cursor() as cursor:
            cursor.executemany(
                "INSERT INTO app_logs (timestamp, level, logger, message, module, func_name, line_no, exc_info)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                rows,
            )
        return len(rows)

    def log_record(self) -> tuple:
        values = {
            "n": self.rng.randint(3, 400),
            "m": self.rng.randint(1, 40),
            "sub": self.rng.choice(SUBREDDITS),
            "board": self.rng.choice(BOARDS),
            "gpu": self.rng.choice(GPUS),
        }
        if self.rng.random() < 0.06:
            logger, module, function, message, trace = self.rng.choice(ERROR_EVENTS)
            level = "ERROR"
            return (
                level,
                logger,
                message.format(**values),
                module,
                function,
                self.rng.randint(40, 300),
                trace.format(**values),
            )
        level, logger, module, function, message = self.rng.choice(LOG_EVENTS)
        return level, logger, message.format(**values), module, function, self.rng.randint(40, 300), None
