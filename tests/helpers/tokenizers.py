"""A tiny tokenizer.json trained in the test (WordLevel, whitespace and punctuation split): nothing downloaded."""

from __future__ import annotations

from pathlib import Path


def tiny_tokenizer(path: Path) -> Path:
    """Save a WordLevel tokenizer to `path`: every word and punctuation mark is one token (unknown ones too)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    trainer = trainers.WordLevelTrainer(special_tokens=["[UNK]", "[BOS]"])
    tokenizer.train_from_iterator(["what is the answer", "the answer is 42 .", "hello world !"], trainer=trainer)
    tokenizer.save(str(path))
    return path
