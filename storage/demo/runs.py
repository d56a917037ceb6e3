"""Training runs for the demo dataset: what each was, and the trainer output it would have logged."""

from __future__ import annotations

import math
import random

BASE_MODELS = {
    "llama": "unsloth/Meta-Llama-3.1-8B-Instruct-bnb-4bit",
    "qwen": "unsloth/Qwen2.5-7B-Instruct-bnb-4bit",
    "mistral": "unsloth/mistral-7b-instruct-v0.3-bnb-4bit",
    "phi": "unsloth/Phi-3-mini-4k-instruct",
    "qwen-small": "unsloth/Qwen2.5-1.5B-Instruct",
}

# name, status, model, session index, total steps, steps done, hours ago it started, target
RUNS = [
    ("llama31-8b-learnpython", "completed", "llama", 2, 180, 180, 70, "local"),
    ("mistral-7b-stackoverflow", "completed", "mistral", 4, 120, 120, 30, "runpod"),
    ("phi3-mini-synthetic", "failed", "phi", 6, 150, 40, 20, "local"),
    ("qwen25-1.5b-homelab", "cancelled", "qwen-small", 3, 200, 70, 8, "local"),
    ("llama31-8b-g-threads", "running", "llama", 0, 240, 110, 1, "runpod"),
    ("qwen25-7b-support-bot", "pending", "qwen", 5, 150, 0, 0, "local"),
]


def hyperparameters(model: str, steps: int, output_dir: str) -> dict:
    return {
        "base_model": BASE_MODELS[model],
        "epochs": 3,
        "lr": "2e-4",
        "bsz": 2,
        "grad_accum": 4,
        "max_steps": steps,
        "output_dir": output_dir,
        "lora_r": 16,
        "lora_alpha": 16,
        "warmup_steps": 10,
        "max_seq_length": 2048,
    }


def trainer_log(rng: random.Random, *, model: str, examples: int, total: int, done: int) -> list[str]:
    """Lines a Hugging Face trainer prints, with a loss every 5 steps falling the way real runs do."""
    lines = [
        f"Loading {BASE_MODELS[model]} in 4-bit",
        f"Dataset: {examples} examples from the database",
        "Trainable parameters: 41,943,040 of 8,072,204,288 (0.52%)",
        "***** Running training *****",
        f"  Num examples = {examples}",
        "  Num Epochs = 3",
        "  Total train batch size = 8",
        f"  Total optimization steps = {total}",
    ]
    start, floor = 2.1 + rng.random() * 0.5, 0.85 + rng.random() * 0.3
    for step in range(5, done + 1, 5):
        loss = floor + (start - floor) * math.exp(-step / (total / 3)) + rng.gauss(0, 0.04)
        warmup = min(1.0, step / 10)
        learning_rate = 2e-4 * warmup * (1 - step / (total + 1))
        epoch = 3 * step / total
        grad_norm = 0.4 + rng.random() * 0.5
        lines.append(
            f"{{'loss': {loss:.4f}, 'grad_norm': {grad_norm:.4f}, 'learning_rate': {learning_rate:.4e}, "
            f"'epoch': {epoch:.2f}}}"
        )
        if step % (total // 3) == 0:
            lines.append(f"{{'eval_loss': {loss + 0.12:.4f}, 'eval_runtime': 11.52, 'epoch': {epoch:.2f}}}")
    return lines


def finished_log(rng: random.Random, *, total: int, adapter_dir: str) -> list[str]:
    runtime = total * (9 + rng.random() * 3)
    return [
        f"{{'train_runtime': {runtime:.1f}, 'train_samples_per_second': {8 * total / runtime:.3f}, "
        f"'train_steps_per_second': {total / runtime:.3f}, 'train_loss': {1.1 + rng.random() * 0.2:.4f}, "
        "'epoch': 3.0}",
        f"Saved LoRA adapter to {adapter_dir}",
    ]


FAILED_LOG = [
    "Traceback (most recent call last):",
    '  File "src/helpers/local_train.py", line 212, in train',
    "    trainer.train()",
    "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 1.96 GiB. GPU 0 has a total capacity of "
    "11.76 GiB of which 1.02 GiB is free.",
]

CONFIGS = [
    ("local_llama31_8b.json", "llama", "Local", 180),
    ("runpod_qwen25_7b.json", "qwen", "Runpod - Pod", 300),
    ("quick_test_phi3.json", "phi", "Local", 30),
]

BENCHMARKS = {
    # benchmark: (base accuracy, fine-tuned gain)
    "hellaswag": (0.598, 0.012),
    "arc_easy": (0.801, 0.009),
    "mmlu": (0.662, -0.004),
}
