"""A desktop database, adopted, then driven through `db` by FineFoundry's own steps.

scrape (helpers/scrape_db.save_scrape_to_db) → merge (helpers/merge.py) → train with a failed
first attempt and a re-run (ui/tabs/training_controller.py, helpers/training.py) → evaluate
(ui/tabs/evaluate_controller.py) → settings and logs → factory reset (main.py). The expected
rows are what FineFoundry's own db package would leave, written from reading its code, with the
differences we keep marked DIFFERENCE (see README, "Python API").
"""

from __future__ import annotations

import json
import math
import sqlite3

import pytest

from tests.helpers.desktop import load_desktop_fixture
from tests.helpers.processes import manage

from .conftest import run_as_finefoundry

FLOW = r"""
import datetime, json, os, shutil
import db
from db import init_db
from db.scraped_data import create_scrape_session, add_scraped_pairs, get_scrape_session, get_pairs_for_session
from db.training_runs import create_training_run, get_run_storage_paths, update_training_run
from db.evaluation_runs import save_evaluation_run, get_recent_evaluation_runs
from db.settings import set_hf_token, get_hf_token, set_ollama_config

init_db()
existing = {t: db.get_connection().execute(f"SELECT COALESCE(MAX(id), 0) FROM {t}").fetchone()[0]
            for t in ("scrape_sessions", "scraped_pairs", "training_runs", "evaluation_runs")}
fixture_session = db.get_connection().execute("SELECT MIN(id) FROM scrape_sessions").fetchone()[0]

# Scrape: helpers/scrape_db.save_scrape_to_db
scraped = create_scrape_session(source="reddit", source_details="r/LocalLLaMA", dataset_format="standard",
                                metadata={"max_pairs": 4}, name="llama q&a")
add_scraped_pairs(scraped, [
    {"input": "What is LoRA?", "output": "Low-rank adapters.", "source_url": "https://reddit.com/1", "score": 12},
    {"input": "Why 4-bit?", "output": "Less memory."},
    {"input": "No answer", "output": ""},
    {"input": "   ", "output": "whitespace-only input"},
])

# Merge: helpers/merge.py, "concatenate" of the new session and the fixture's first one
sources = []
for sid in (scraped, fixture_session):
    assert get_scrape_session(int(sid))
    sources.append([{"input": r["input"], "output": r["output"]} for r in get_pairs_for_session(int(sid))])
merged_examples = [example for source in sources for example in source]
merged = create_scrape_session(source="Merged", source_details="merged set", dataset_format="standard",
                               metadata={"operation": "concatenate", "source_count": 2})
merged_added = add_scraped_pairs(merged, [{"input": r.get("input", ""), "output": r.get("output", "")}
                                          for r in merged_examples])

# Train: the training tab creates the run; helpers/training.py runs it, it fails; the user re-runs it.
run = create_training_run(name="llama-ft", base_model="unsloth/llama-3-8b-bnb-4bit", dataset_source="database",
                          dataset_id=str(merged))
paths = get_run_storage_paths(int(run["id"]))
for attempt in ("first", "second"):
    update_training_run(int(run["id"]), status="running", started_at=datetime.datetime.now().isoformat())
    if attempt == "first":
        update_training_run(int(run["id"]), status="failed", completed_at=datetime.datetime.now().isoformat(),
                            logs=["step 1 loss 2.1", "Killed"], metadata={"exit_code": 137, "error": "OOM or killed"})
    else:
        update_training_run(int(run["id"]), status="completed", output_dir=paths["outputs"],
                            adapter_path=os.path.join(paths["outputs"], "adapter"),
                            completed_at=datetime.datetime.now().isoformat(),
                            logs=["step 1 loss 2.1", "step 2 loss 1.7"])

# Evaluate: evaluate_controller.py saves a base and an adapter evaluation
for is_base, adapter in ((True, None), (False, os.path.join(paths["outputs"], "adapter"))):
    save_evaluation_run(training_run_id=int(run["id"]), base_model="unsloth/llama-3-8b-bnb-4bit",
                        adapter_path=adapter, benchmark="hellaswag", num_samples=50, batch_size=4,
                        metrics={"acc": 0.41 if is_base else 0.47, "acc_stderr": float("nan")}, is_base_eval=is_base)
recent = get_recent_evaluation_runs(limit=10)

# Settings and logs: the settings tab
set_hf_token("  hf_flowtoken_0123456789  ")
set_ollama_config({"enabled": True, "base_url": "http://127.0.0.1:11434"})
# What FineFoundry's own clear_logs would delete: a plain text comparison of the timestamps.
old_logs_before = db.get_connection().execute("SELECT COUNT(*) FROM app_logs WHERE timestamp < '2024-12-02'").fetchone()[0]
old_logs_cleared = db.clear_logs("2024-12-02")

def rows(sql, *params):
    return [dict(r) for r in db.get_connection().execute(sql, params).fetchall()]

before_reset = {
    "sessions": rows("SELECT id, name, source, source_details, dataset_format, pair_count, metadata_json "
                     "FROM scrape_sessions WHERE id > ? ORDER BY id", existing["scrape_sessions"]),
    "pairs": rows("SELECT session_id, input_text, output_text, source_url, metadata_json FROM scraped_pairs "
                  "WHERE id > ? ORDER BY id", existing["scraped_pairs"]),
    "fixture_session_pairs": [[r["input"], r["output"]] for r in sources[1]],
    "merged_added": merged_added,
    "runs": rows("SELECT name, status, base_model, dataset_source, dataset_id, storage_path, output_dir, "
                 "adapter_path, hp_json, logs_json, metadata_json, started_at IS NOT NULL AS started, "
                 "completed_at IS NOT NULL AS completed FROM training_runs WHERE id > ?", existing["training_runs"]),
    "paths": paths,
    "evaluations": rows("SELECT training_run_id, base_model, adapter_path, benchmark, num_samples, batch_size, "
                        "metrics_json, is_base_eval FROM evaluation_runs WHERE id > ? ORDER BY id",
                        existing["evaluation_runs"]),
    "recent_ids": [e["id"] for e in recent[:2]],
    "settings": rows("SELECT key, value FROM settings WHERE key IN ('huggingface.token', 'ollama') ORDER BY key"),
    "old_logs_cleared": old_logs_cleared,
    "old_logs_before": old_logs_before,
    "old_logs_left": db.get_connection().execute(
        "SELECT COUNT(*) FROM app_logs WHERE replace(timestamp, 'T', ' ') < '2024-12-02'").fetchone()[0],
    "run_id": run["id"], "merged": merged, "scraped": scraped,
}

# Factory reset: main.py
db_path, storage_root = db.get_db_path(), db.get_managed_storage_root()
db.close_all_connections()
os.remove(db_path)
shutil.rmtree(storage_root)
init_db()
after_reset = {
    "counts": {t: db.get_connection().execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
               for t in ("settings", "training_configs", "app_state", "scrape_sessions", "scraped_pairs",
                         "training_runs", "evaluation_runs")},
    "token": get_hf_token(),
    "first_new_session": create_scrape_session("4chan"),
}
print(json.dumps({"before_reset": before_reset, "after_reset": after_reset}))
"""


@pytest.mark.parametrize("generation", ["v1", "current"])
def test_scrape_merge_train_evaluate_reset_leaves_finefoundrys_rows(tmp_path, generation):
    database = load_desktop_fixture(generation, tmp_path / "finefoundry.db")
    adopted = manage(database, "migrate", "--no-input", "-v", "0")
    assert adopted.returncode == 0, adopted.stderr
    result = run_as_finefoundry(FLOW, workdir=tmp_path, database=database)
    state, after = result["before_reset"], result["after_reset"]
    scraped, merged = state["scraped"], state["merged"]

    assert state["sessions"] == [
        {
            "id": scraped,
            "name": "llama q&a",
            "source": "reddit",
            "source_details": "r/LocalLLaMA",
            "dataset_format": "standard",
            # FineFoundry: 3 (it keeps the whitespace-only input). DIFFERENCE: blank sides are skipped.
            "pair_count": 2,
            "metadata_json": '{"max_pairs": 4}',
        },
        {
            "id": merged,
            "name": None,
            "source": "Merged",
            "source_details": "merged set",
            "dataset_format": "standard",
            "pair_count": 2 + len(state["fixture_session_pairs"]),
            "metadata_json": '{"operation": "concatenate", "source_count": 2}',
        },
    ]
    assert state["merged_added"] == 2 + len(state["fixture_session_pairs"])
    assert state["pairs"] == [
        {
            "session_id": scraped,
            "input_text": "What is LoRA?",
            "output_text": "Low-rank adapters.",
            "source_url": "https://reddit.com/1",
            "metadata_json": '{"score": 12}',
        },
        {
            "session_id": scraped,
            "input_text": "Why 4-bit?",
            "output_text": "Less memory.",
            "source_url": None,
            "metadata_json": None,
        },
        *(
            {"session_id": merged, "input_text": i, "output_text": o, "source_url": None, "metadata_json": None}
            for i, o in [["What is LoRA?", "Low-rank adapters."], ["Why 4-bit?", "Less memory."]]
            + state["fixture_session_pairs"]
        ),
    ]

    [run] = state["runs"]
    paths = state["paths"]
    metadata = json.loads(run.pop("metadata_json"))
    assert {**run, "logs_json": json.loads(run["logs_json"])} == {
        "name": "llama-ft",
        "status": "completed",
        "base_model": "unsloth/llama-3-8b-bnb-4bit",
        "dataset_source": "database",
        "dataset_id": str(merged),
        "storage_path": paths["root"],
        "output_dir": paths["outputs"],
        "adapter_path": paths["outputs"] + "/adapter",
        "hp_json": None,
        "logs_json": ["step 1 loss 2.1", "step 2 loss 1.7"],
        "started": 1,
        "completed": 1,
    }
    # FineFoundry: the run stays "failed" (its db refuses nothing, but our old rules refused the re-run) and its
    # metadata keeps {"exit_code": 137, "error": ...}. DIFFERENCE: the failed attempt moves into "attempts".
    [attempt] = metadata.pop("attempts")
    assert metadata == {}
    assert (attempt["status"], attempt["exit_code"], attempt["error"]) == ("failed", 137, "OOM or killed")
    assert attempt["started_at"] and attempt["completed_at"]

    base, tuned = state["evaluations"]
    for row, adapter, acc, is_base in ((base, None, 0.41, 1), (tuned, paths["outputs"] + "/adapter", 0.47, 0)):
        metrics = json.loads(row.pop("metrics_json"))
        assert metrics["acc"] == acc and math.isnan(metrics["acc_stderr"])
        assert row == {
            "training_run_id": state["run_id"],
            "base_model": "unsloth/llama-3-8b-bnb-4bit",
            "adapter_path": adapter,
            "benchmark": "hellaswag",
            "num_samples": 50,
            "batch_size": 4,
            "is_base_eval": is_base,
        }
    assert len(state["recent_ids"]) == 2

    assert state["settings"] == [
        {"key": "huggingface.token", "value": '"hf_flowtoken_0123456789"'},
        {"key": "ollama", "value": '{"enabled": true, "base_url": "http://127.0.0.1:11434"}'},
    ]
    assert state["old_logs_cleared"] == state["old_logs_before"] > 0
    assert state["old_logs_left"] == 0
    assert len(state["fixture_session_pairs"]) > 0

    assert after["counts"] == dict.fromkeys(after["counts"], 0)
    assert after["token"] == "" and after["first_new_session"] == 1
    with sqlite3.connect(database) as check:  # the file on disk is the new one
        assert check.execute("SELECT id, source FROM scrape_sessions").fetchall() == [(1, "4chan")]
