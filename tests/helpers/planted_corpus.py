"""A generated corpus of pairs with planted near-duplicates, for the near-duplicate tests and bench.

Originals are questions and answers about a handful of topics, built from each topic's own words
plus common ones, so distinct pairs about the same topic share much of their vocabulary (the
precision test). Each planted variant is an original with one word changed, its punctuation or case
changed, or a signature line appended (the recall test). Deterministic for a given seed.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

COMMON = [
    "the",
    "a",
    "an",
    "and",
    "or",
    "but",
    "if",
    "then",
    "so",
    "because",
    "with",
    "without",
    "for",
    "to",
    "of",
    "in",
    "on",
    "at",
    "by",
    "from",
    "about",
    "into",
    "over",
    "after",
    "before",
    "is",
    "are",
    "was",
    "were",
    "be",
    "been",
    "have",
    "has",
    "had",
    "do",
    "does",
    "did",
    "can",
    "could",
    "should",
    "would",
    "will",
    "may",
    "might",
    "not",
    "no",
    "yes",
    "this",
    "that",
    "these",
    "those",
    "it",
    "its",
    "they",
    "them",
    "their",
    "you",
    "your",
    "we",
    "our",
    "i",
    "my",
    "me",
    "he",
    "she",
    "his",
    "her",
    "what",
    "which",
    "who",
    "how",
    "why",
    "when",
    "where",
    "very",
    "really",
    "just",
    "also",
    "only",
    "even",
    "still",
    "already",
    "again",
    "more",
    "most",
    "less",
    "some",
    "any",
    "every",
]
TOPICS = {
    "python": [
        "python",
        "list",
        "dict",
        "import",
        "module",
        "function",
        "class",
        "loop",
        "error",
        "traceback",
        "pip",
        "package",
        "virtualenv",
    ],
    "cooking": [
        "recipe",
        "oven",
        "bake",
        "flour",
        "sugar",
        "butter",
        "salt",
        "garlic",
        "onion",
        "pan",
        "simmer",
        "boil",
        "roast",
        "dough",
    ],
    "gpu": [
        "gpu",
        "cuda",
        "driver",
        "memory",
        "vram",
        "kernel",
        "nvidia",
        "card",
        "batch",
        "tensor",
        "training",
        "epoch",
    ],
    "bikes": [
        "bike",
        "chain",
        "gear",
        "brake",
        "tire",
        "wheel",
        "saddle",
        "pedal",
        "frame",
        "ride",
        "commute",
        "helmet",
    ],
    "garden": [
        "garden",
        "soil",
        "seed",
        "water",
        "plant",
        "tomato",
        "compost",
        "weed",
        "sun",
        "shade",
        "prune",
        "root",
        "leaf",
    ],
}
SIGNATURES = ("-- sent from my phone", "Thanks in advance!", "edit: formatting", "Cheers, anon")
VARIANT_KINDS = ("word", "punctuation", "case", "signature")


@dataclass
class Corpus:
    """Pairs as dicts in insertion order; `planted` maps a variant's index to its original's index."""

    pairs: list[dict] = field(default_factory=list)
    planted: dict[int, int] = field(default_factory=dict)
    kinds: dict[int, str] = field(default_factory=dict)


def _sentence(rng: random.Random, topic: list[str], words: int) -> str:
    chosen = [rng.choice(topic) if rng.random() < 0.35 else rng.choice(COMMON) for _ in range(words)]
    return chosen[0].capitalize() + " " + " ".join(chosen[1:]) + rng.choice(".?!")


def _text(rng: random.Random, topic: list[str], low: int, high: int) -> str:
    sentences, total, target = [], 0, rng.randint(low, high)
    while total < target:
        words = rng.randint(6, 14)
        sentences.append(_sentence(rng, topic, words))
        total += words
    return " ".join(sentences)


def original(rng: random.Random) -> dict:
    topic = TOPICS[rng.choice(sorted(TOPICS))]
    return {"input": _text(rng, topic, 12, 30), "output": _text(rng, topic, 25, 70)}


def variant(rng: random.Random, pair: dict, kind: str) -> dict:
    side = rng.choice(("input", "output"))
    text = pair[side]
    if kind == "word":
        words = text.split(" ")
        position = rng.randrange(len(words))
        words[position] = rng.choice(["banana", "quickly", "seventeen", "purple", "honestly"])
        text = " ".join(words)
    elif kind == "punctuation":
        text = text.replace(".", "!", 1).replace("?", ".", 1) + "?"
    elif kind == "case":
        text = text.upper() if rng.random() < 0.5 else text.lower()
    else:
        text = text + "\n\n" + rng.choice(SIGNATURES)
    return {**pair, side: text}


def planted_corpus(*, originals: int, variants: int, seed: int = 14) -> Corpus:
    """`originals` distinct pairs and `variants` planted variants of randomly chosen ones, shuffled in."""
    rng = random.Random(seed)
    corpus = Corpus()
    base = [original(rng) for _ in range(originals)]
    sources = [rng.randrange(originals) for _ in range(variants)]
    order = [("original", i) for i in range(originals)] + [("variant", j) for j in range(variants)]
    rng.shuffle(order)
    # Originals first in the stored order where they have variants, so "keep oldest" keeps the original.
    position_of_original: dict[int, int] = {}
    for kind, index in sorted(order, key=lambda item: item[0] == "variant"):
        if kind == "original":
            position_of_original[index] = len(corpus.pairs)
            corpus.pairs.append(base[index])
        else:
            kind_name = VARIANT_KINDS[index % len(VARIANT_KINDS)]
            corpus.planted[len(corpus.pairs)] = position_of_original[sources[index]]
            corpus.kinds[len(corpus.pairs)] = kind_name
            corpus.pairs.append(variant(rng, base[sources[index]], kind_name))
    return corpus
