"""Generated pairs for bench/scan.py: clean forum, Q&A and code text, and the same with planted findings.

The clean generator is built to be hard on the scanner, not easy: it is full of what looks like personal data
and is not (version numbers in every style, dates and times, prices, ids and hashes, ports, coordinates,
decorators, `std::` code, `icon@2x.png`, `git@` remotes, numbers with and without separators, random 13-19
digit ids). It never writes a real e-mail address, phone number, IP address, card number or secret, so every
finding on it is a false alarm. Each clean pair is built from 3-6 sentences drawn from CLEAN_TEMPLATES; the
category of each template is kept so the bench can say which ones raise false alarms.

The planted corpus puts one item per pair (of a known kind, span and side) into such clean text, in varied
formats and contexts (prose, brackets, quotes, JSON, code, URLs, end of sentence).
"""

from __future__ import annotations

import random
import string

WORDS = [
    "model",
    "training",
    "data",
    "loss",
    "learning",
    "rate",
    "batch",
    "size",
    "tokenizer",
    "epoch",
    "gradient",
    "adapter",
    "lora",
    "weights",
    "checkpoint",
    "dataset",
    "prompt",
    "answer",
    "question",
    "thread",
    "reply",
    "comment",
    "user",
    "post",
    "forum",
    "board",
    "scraper",
    "pipeline",
    "server",
    "config",
    "memory",
    "gpu",
    "cuda",
    "kernel",
    "layer",
    "attention",
    "context",
    "window",
    "quantization",
    "inference",
    "latency",
    "throughput",
    "python",
]
FIRST = [
    "john",
    "jane",
    "alex",
    "maria",
    "wei",
    "li",
    "sam",
    "priya",
    "omar",
    "olga",
    "lucas",
    "emma",
    "noah",
    "mia",
    "ivan",
    "chen",
]
LAST = ["smith", "doe", "garcia", "kumar", "wang", "nguyen", "muller", "rossi", "silva", "kowalski", "tanaka", "okafor"]
DOMAINS = [
    "example.com",
    "mail.example.org",
    "uni-example.edu",
    "example.co.uk",
    "corp.example.net",
    "proton.example.me",
]


def words(rng: random.Random, low: int = 4, high: int = 12) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(low, high)))


def digits(rng: random.Random, count: int) -> str:
    return "".join(rng.choice(string.digits) for _ in range(count))


def hexs(rng: random.Random, count: int) -> str:
    return "".join(rng.choice("0123456789abcdef") for _ in range(count))


def ver(rng: random.Random, parts: int) -> str:
    return ".".join(str(rng.randint(0, 20)) for _ in range(parts))


# (category, template) — each template is a function of rng returning one sentence.
CLEAN_TEMPLATES = [
    ("prose", lambda r: f"I think the {words(r, 3, 8)} is the problem here."),
    ("prose", lambda r: f"{words(r, 6, 14).capitalize()}."),
    ("version", lambda r: f"Upgrade to version {ver(r, 4)} and the {words(r, 2, 4)} works."),
    ("version", lambda r: f"Fixed in v{ver(r, 4)} (see the changelog)."),
    ("version", lambda r: f"pip install torch=={ver(r, 3)} transformers=={ver(r, 4)}"),
    ("version", lambda r: f"Running Python {ver(r, 3)} with CUDA {r.randint(10, 12)}.{r.randint(0, 9)}."),
    ("version", lambda r: f"Chrome {r.randint(100, 130)}.0.{r.randint(1000, 9999)}.{r.randint(10, 250)} crashes."),
    ("version", lambda r: f"Windows build 10.0.{r.randint(10000, 26000)}.{r.randint(100, 4000)} here."),
    ("version", lambda r: f"npm i react@{ver(r, 3)} and @types/node@{ver(r, 3)}"),
    ("version", lambda r: f"See section {ver(r, 4)} of the spec."),
    (
        "date",
        lambda r: (
            f"Posted on 20{r.randint(10, 26)}-{r.randint(1, 12):02d}-{r.randint(1, 28):02d} at "
            f"{r.randint(0, 23):02d}:{r.randint(0, 59):02d}:{r.randint(0, 59):02d}."
        ),
    ),
    (
        "date",
        lambda r: (
            f"Due {r.randint(1, 28):02d}/{r.randint(1, 12):02d}/20{r.randint(10, 26)}, "
            f"meeting {r.randint(1, 12)}:{r.randint(0, 59):02d} pm."
        ),
    ),
    (
        "date",
        lambda r: (
            f"timestamp {r.randint(1_500_000_000, 1_800_000_000)} or ms "
            f"{r.randint(1_500_000_000_000, 1_800_000_000_000)}"
        ),
    ),
    (
        "price",
        lambda r: (
            f"It costs ${r.randint(1, 9)},{r.randint(100, 999)}.{r.randint(0, 99):02d} "
            f"or €{r.randint(5, 500)} per month."
        ),
    ),
    ("price", lambda r: f"Budget: {r.randint(100, 999)}, {r.randint(100, 999)} and {r.randint(1000, 9999)} tokens."),
    (
        "number",
        lambda r: (
            f"The run took {r.randint(1, 100_000):,} steps, loss {r.random():.4f}, "
            f"{r.randint(1, 99)}% of {r.randint(1000, 99999)} samples."
        ),
    ),
    ("number", lambda r: f"order id {digits(r, r.randint(13, 19))} was shipped."),
    ("number", lambda r: f"ISBN 978-{r.randint(0, 9)}-{digits(r, 3)}-{digits(r, 5)}-{r.randint(0, 9)}"),
    (
        "number",
        lambda r: f"Score {r.randint(0, 9)}-{r.randint(0, 9)}, range {r.randint(1, 500)}-{r.randint(500, 900)}.",
    ),
    ("number", lambda r: f"Coordinates {r.uniform(-90, 90):.4f}, {r.uniform(-180, 180):.4f}."),
    ("number", lambda r: f"Matrix shape ({r.randint(1, 4096)}, {r.randint(1, 4096)}, {r.randint(1, 64)})"),
    (
        "id",
        lambda r: f"commit {hexs(r, 40)} and uuid {hexs(r, 8)}-{hexs(r, 4)}-{hexs(r, 4)}-{hexs(r, 4)}-{hexs(r, 12)}",
    ),
    ("id", lambda r: f"sha256:{hexs(r, 64)}"),
    ("id", lambda r: f"mac address style id {hexs(r, 2)}-{hexs(r, 2)}-{hexs(r, 2)}-{hexs(r, 2)}"),
    (
        "url",
        lambda r: (
            f"See https://{r.choice(DOMAINS)}/{r.choice(WORDS)}?page={r.randint(1, 99)}&sort=new#c{r.randint(1, 999)}"
        ),
    ),
    ("url", lambda r: f"Served on http://localhost:{r.randint(1024, 65535)}/api/v{r.randint(1, 3)}"),
    ("url", lambda r: f"git clone git@github.com:{r.choice(LAST)}/{r.choice(WORDS)}.git"),
    ("code", lambda r: "```python\n@property\ndef size(self):\n    return {'a': 1, 'b': [1, 2, 3]}\n```"),
    ("code", lambda r: f"std::vector<int> v({r.randint(1, 99)}); std::map<std::string, int> m;"),
    ("code", lambda r: f"for i in range({r.randint(1, 1000)}): x[i:i+{r.randint(1, 9)}] = y[::{r.randint(1, 4)}]"),
    ("code", lambda r: "background: url(icon@2x.png); .logo { width: 120px; } // sprite@3x.webp"),
    (
        "code",
        lambda r: f"TOKEN = os.environ['HF_TOKEN']  # never hard-code hf_ tokens; sk- keys too ({r.randint(1, 9)})",
    ),
    (
        "code",
        lambda r: f"a = b::c; d = e::f; time {r.randint(0, 23):02d}:{r.randint(0, 59):02d}:{r.randint(0, 59):02d}",
    ),
    (
        "code",
        lambda r: f"SELECT * FROM t WHERE id IN ({r.randint(1, 999)}, {r.randint(1, 999)}) LIMIT {r.randint(1, 99)};",
    ),
    ("code", lambda r: f"tensor([[{r.random():.4f}, {r.random():.4f}], [{r.random():.4f}, {r.random():.4f}]])"),
    ("chat", lambda r: f"@{r.choice(FIRST)} thanks! >>{digits(r, 8)} lol"),
    ("chat", lambda r: f">>{digits(r, 9)}\n>implying {words(r, 3, 6)}"),
]


def clean_text(rng: random.Random) -> tuple[str, set[str]]:
    chosen = [rng.choice(CLEAN_TEMPLATES) for _ in range(rng.randint(3, 6))]
    return " ".join(template(rng) for _, template in chosen), {category for category, _ in chosen}


def clean_pair(rng: random.Random) -> tuple[str, str, set[str]]:
    input_text, input_categories = clean_text(rng)
    output_text, output_categories = clean_text(rng)
    return input_text, output_text, input_categories | output_categories


# --- Planted items ------------------------------------------------------------------------------


def luhn_complete(rng: random.Random, prefix: str, length: int) -> str:
    body = prefix + digits(rng, length - len(prefix) - 1)
    for check in string.digits:
        candidate = body + check
        total = 0
        for position, char in enumerate(reversed(candidate)):
            value = int(char) * (2 if position % 2 else 1)
            total += value - 9 if value > 9 else value
        if total % 10 == 0:
            return candidate
    raise AssertionError


def group(number: str, sizes: list[int], sep: str) -> str:
    parts, at = [], 0
    for size in sizes:
        parts.append(number[at : at + size])
        at += size
    return sep.join(parts)


def plant_email(r: random.Random) -> str:
    local = r.choice(
        [
            f"{r.choice(FIRST)}.{r.choice(LAST)}",
            f"{r.choice(FIRST)}_{r.choice(LAST)}{r.randint(1, 99)}",
            f"{r.choice(FIRST)}+{r.choice(WORDS)}",
            f"{r.choice(FIRST).upper()}{r.randint(1970, 2010)}",
        ]
    )
    return f"{local}@{r.choice(DOMAINS)}"


def plant_phone(r: random.Random) -> str:
    area, exchange, line = f"{r.randint(2, 9)}{digits(r, 2)}", f"{r.randint(2, 9)}{digits(r, 2)}", digits(r, 4)
    return r.choice(
        [
            f"+1 {area} {exchange} {line}",
            f"+1-{area}-{exchange}-{line}",
            f"({area}) {exchange}-{line}",
            f"{area}-{exchange}-{line}",
            f"{area}.{exchange}.{line}",
            f"{area} {exchange} {line}",
            f"+44 20 {digits(r, 4)} {digits(r, 4)}",
            f"+44 7700 {digits(r, 6)}",
            f"020 {digits(r, 4)} {digits(r, 4)}",
            f"07700 {digits(r, 6)}",
            f"+49 30 {digits(r, 6)}",
            f"+49 (0)30 {digits(r, 7)}",
            f"+33 1 {digits(r, 2)} {digits(r, 2)} {digits(r, 2)} {digits(r, 2)}",
            f"+91 {r.randint(70000, 99999)} {digits(r, 5)}",
        ]
    )


def plant_ip(r: random.Random) -> str:
    octets = [r.randint(1, 254) for _ in range(4)]
    v4 = ".".join(map(str, octets))
    groups = [f"{r.randint(0, 0xFFFF):x}" for _ in range(8)]
    return r.choice(
        [
            v4,
            v4,
            v4,
            f"2001:db8::{groups[0]}:{r.randint(1, 0xFFFF):x}",
            ":".join(groups),
            f"fe80::{groups[1]}:{groups[2]}:{r.randint(1, 0xFFFF):x}",
        ]
    )


def plant_card(r: random.Random) -> str:
    kind = r.choice(["visa", "visa", "mc", "amex", "discover"])
    if kind == "visa":
        number = luhn_complete(r, "4", 16)
    elif kind == "mc":
        number = luhn_complete(r, str(r.randint(51, 55)), 16)
    elif kind == "discover":
        number = luhn_complete(r, "6011", 16)
    else:
        number = luhn_complete(r, r.choice(["34", "37"]), 15)
        return r.choice([number, group(number, [4, 6, 5], " "), group(number, [4, 6, 5], "-")])
    return r.choice([number, group(number, [4, 4, 4, 4], " "), group(number, [4, 4, 4, 4], "-")])


def alnum(r: random.Random, count: int, alphabet: str = string.ascii_letters + string.digits) -> str:
    return "".join(r.choice(alphabet) for _ in range(count))


def plant_secret(r: random.Random, stored: list[str]) -> tuple[str, str, str]:
    """(text before, the secret, text after): the span is the secret only (as the scanner reports it)."""
    upper = string.ascii_uppercase + string.digits
    choice = r.randrange(11)
    if choice == 0:
        return "", "hf_" + alnum(r, 34), ""
    if choice == 1:
        return "", "rpa_" + alnum(r, 40, upper), ""
    if choice == 2:
        return "", "sk-" + alnum(r, 48), ""
    if choice == 3:
        return "", "sk-proj-" + alnum(r, 60, string.ascii_letters + string.digits + "_-"), ""
    if choice == 4:
        return "", r.choice(["ghp_", "gho_", "ghs_"]) + alnum(r, 36), ""
    if choice == 5:
        return "", "github_pat_" + alnum(r, 82, string.ascii_letters + string.digits + "_"), ""
    if choice == 6:
        return "", r.choice(["AKIA", "ASIA"]) + alnum(r, 16, upper), ""
    if choice == 7:
        name = r.choice(["aws_secret_access_key = ", "AWS_SECRET_ACCESS_KEY=", '"SecretAccessKey": "'])
        return name, alnum(r, 40, string.ascii_letters + string.digits + "/+"), ""
    if choice == 8:
        kind = r.choice(["RSA ", "EC ", "OPENSSH ", ""])
        body = "\n".join(alnum(r, 64, string.ascii_letters + string.digits + "+/") for _ in range(r.randint(2, 6)))
        return "", f"-----BEGIN {kind}PRIVATE KEY-----\n{body}\n-----END {kind}PRIVATE KEY-----", ""
    if choice == 9:
        return "https://admin:", alnum(r, 14), f"@db.{r.choice(DOMAINS)}/prod"
    return "", r.choice(stored), ""


CONTEXTS = [
    "Contact {x} for details.",
    "my info: {x}",
    "({x})",
    "<{x}>",
    '"{x}"',
    '{{"value": "{x}", "ok": true}}',
    "value = '{x}'\nprint(value)",
    "{x}",
    "Sent from {x}.",
    "ping {x}, thanks",
    "[{x}]",
    "{x}\n",
]


def planted_pair(r: random.Random, kind: str, stored: list[str]) -> tuple[str, str, str, int, int]:
    """(input, output, side, start, end): clean text with one planted item of `kind` at [start, end)."""
    if kind == "secret":
        before_item, item, after_item = plant_secret(r, stored)
    else:
        before_item, after_item = "", ""
        item = {"email": plant_email, "phone": plant_phone, "ip": plant_ip, "credit_card": plant_card}[kind](r)
    context = r.choice(CONTEXTS)
    head, tail = context.split("{x}")
    head, tail = head.replace("{{", "{").replace("}}", "}"), tail.replace("{{", "{").replace("}}", "}")
    before, _ = clean_text(r)
    after, _ = clean_text(r)
    prefix = f"{before} {head}{before_item}"
    text = f"{prefix}{item}{after_item}{tail} {after}"
    other, _ = clean_text(r)
    if r.random() < 0.5:
        return text, other, "input", len(prefix), len(prefix) + len(item)
    return other, text, "output", len(prefix), len(prefix) + len(item)
