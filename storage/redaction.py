"""Mask secrets in text before it is stored or shown: secret setting values and token-shaped strings.

`redact(text)` masks what looks like a credential (Hugging Face and RunPod tokens, `sk-` keys,
`Authorization:` and `Bearer` values, `api_key=...` assignments, `key=`/`token=` in URLs, URL
passwords) and the values of secret settings. The secret values are the ones last seen by the
database log writer, which re-reads them before every batch; pass `secrets=` to use others
(e.g. `storage.services.settings.secret_values()`, the stored values of every secret setting).

`is_secret_setting(key)` is the one rule for which settings hold secrets: the admin masks them,
redaction (of logs, pages, error reports) masks their stored values.

This module imports nothing from Django, so the log handler can use it before apps are ready.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable

REDACTED = "[REDACTED]"
# Shorter values would blank out ordinary words; real tokens and keys are much longer.
MIN_SECRET_LENGTH = 8

# Never match an already masked value again.
_VALUE = r"""(?!\[REDACTED\])[^\s"'&,;}\]]+"""

# Secrets recognisable by their shape alone: (name, lower-case triggers, pattern). Group 1 is the
# prefix that masking keeps; the whole match is the secret (storage.sensitive_text reports it so).
# Patterns start with their literal prefix and check the word boundary before it with a lookbehind
# (`(hf_)(?<!\whf_)` is `\b(hf_)`): a leading literal lets `re` jump between its occurrences, a
# leading `\b` makes it try every position of the text.
TOKEN_SHAPES: list[tuple[str, tuple[str, ...], re.Pattern[str]]] = [
    ("Hugging Face token", ("hf_",), re.compile(r"(hf_)(?<!\whf_)[A-Za-z0-9]{16,}")),
    ("RunPod key", ("rpa_",), re.compile(r"(rpa_)(?<!\wrpa_)[A-Za-z0-9]{16,}")),
    (
        "GitHub token",
        ("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"),
        re.compile(r"(gh[pousr]_|github_pat_)(?<!\wgh[pousr]_)(?<!\wgithub_pat_)[A-Za-z0-9_]{20,}"),
    ),
    # OpenAI (sk-..., sk-proj-...) and Anthropic-style (sk-ant-...) keys.
    ("API key (sk-)", ("sk-",), re.compile(r"(sk-)(?<!\wsk-)[A-Za-z0-9_-]{16,}")),
    # AWS access key ids: AKIA (long-term) or ASIA (temporary), then 16 upper-case letters or digits.
    ("AWS access key id", ("akia", "asia"), re.compile(r"(AKIA|ASIA)(?<!\wA[KS]IA)[A-Z0-9]{16}\b")),
    # An AWS secret access key is 40 base64 characters with no shape of its own: only when named.
    (
        "AWS secret access key",
        ("secret_access_key", "secretaccesskey"),
        re.compile(r"""(?i)((?:aws_?)?secret_?access_?key["']?\s*[:=]\s*["']?)[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])"""),
    ),
    # -----BEGIN RSA PRIVATE KEY----- ... -----END RSA PRIVATE KEY----- (or to the end of a cut-off text).
    (
        "private key block",
        ("private key-----",),
        re.compile(
            r"(-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----)"
            r"(?:(?!-----BEGIN )[\s\S])*?(?:-----END (?:[A-Z0-9]+ )*PRIVATE KEY-----|\Z)"
        ),
    ),
]

# (triggers, pattern, replacement): a pattern runs only when the lower-cased text contains one of
# its triggers, which keeps ordinary messages cheap. Named values go first; group 1 is kept.
TOKEN_PATTERNS: list[tuple[tuple[str, ...], re.Pattern[str], str]] = [
    # Authorization: Bearer abc / 'Authorization': 'Basic abc' / authorization=abc
    (
        ("authorization",),
        re.compile(
            r"""(?i)(\b(?:proxy-)?authorization["']?\s*[:=]\s*["']?(?:(?:bearer|basic|token|bot)\s+)?+)""" + _VALUE
        ),
        rf"\1{REDACTED}",
    ),
    (("bearer",), re.compile(r"(?i)(\bbearer\s+)(?!\[REDACTED\])[A-Za-z0-9._~+/=-]{8,}"), rf"\1{REDACTED}"),
    # api_key=..., RUNPOD_API_KEY: ..., "password": "...", x-api-key: ...
    (
        ("key", "token", "secret", "passw"),
        re.compile(
            r"""(?i)((?<![a-z0-9])(?:api[_-]?key|apikey|access[_-]?token|auth[_-]?token|refresh[_-]?token|"""
            r"""client[_-]?secret|secret[_-]?key|password|passwd)["']?\s*[:=]\s*["']?)""" + _VALUE
        ),
        rf"\1{REDACTED}",
    ),
    # ?key=...&token=... in URLs.
    (
        ("key=", "token=", "sig=", "signature=", "auth=", "secret="),
        re.compile(r"(?i)([?&](?:key|token|sig|signature|auth|secret|access_token|api_key|apikey)=)" + _VALUE),
        rf"\1{REDACTED}",
    ),
    # https://user:password@host
    (("@",), re.compile(r"(?i)(\b[a-z][a-z0-9+.-]*://[^/\s:@]+:)(?!\[REDACTED\])[^/\s@]+@"), rf"\1{REDACTED}@"),
    # Token-shaped secrets (TOKEN_SHAPES above), wherever they appear.
    *((triggers, pattern, rf"\1{REDACTED}") for _, triggers, pattern in TOKEN_SHAPES),
]

# The settings FineFoundry itself keeps credentials in.
KNOWN_SECRET_SETTING_KEYS = frozenset({"huggingface.token", "runpod.api_key"})
# Any other key that is plainly a credential (`wandb.api_key`, `openai_token`, `proxy.password`, ...).
SECRET_LOOKING_KEY_RE = re.compile(r"(token|api[_.-]?key|apikey|secret|password|passwd|credentials?)$", re.IGNORECASE)


def is_secret_setting(key: str | None) -> bool:
    """Whether the setting `key` holds a secret: its value is masked wherever it could be shown."""
    return bool(key) and (key in KNOWN_SECRET_SETTING_KEYS or bool(SECRET_LOOKING_KEY_RE.search(key.strip())))


_ALL_TRIGGERS = tuple(dict.fromkeys(trigger for triggers, _, _ in TOKEN_PATTERNS for trigger in triggers))
# Lower-case substrings without which no token pattern matches (a text holding none of them is masked
# only for stored secret values).
MASKING_TRIGGERS = _ALL_TRIGGERS

_known_secrets: tuple[str, ...] = ()


def usable_secrets(values: Iterable[str]) -> tuple[str, ...]:
    """Keep the values long enough to be real secrets, longest first so none is half-masked."""
    kept = {value.strip() for value in values if isinstance(value, str) and len(value.strip()) >= MIN_SECRET_LENGTH}
    return tuple(sorted(kept, key=lambda value: (-len(value), value)))


def secrets_from_setting_values(raw_values: Iterable[str]) -> tuple[str, ...]:
    """Decode stored setting values (JSON, or plain text from old desktop versions) into secrets."""
    decoded = []
    for raw in raw_values:
        try:
            value = json.loads(raw)
        except (json.JSONDecodeError, TypeError):
            value = raw
        # A secret that happens to parse as a number or a list is still the text that was stored.
        decoded.append(value if isinstance(value, str) else raw)
    return usable_secrets(decoded)


def remember_secrets(values: Iterable[str]) -> None:
    """Make `redact()` without `secrets=` mask these values from now on."""
    global _known_secrets
    _known_secrets = usable_secrets(values)


@functools.lru_cache(maxsize=16)
def secrets_pattern(secrets: tuple[str, ...]) -> re.Pattern[str]:
    """One pattern matching any of `secrets` (already passed through usable_secrets(): longest first)."""
    return re.compile("|".join(re.escape(secret) for secret in secrets))


def redact(text: str, secrets: Iterable[str] | None = None) -> str:
    """Return `text` with secret values and token-shaped strings replaced by [REDACTED]."""
    return mask(text, _known_secrets if secrets is None else usable_secrets(secrets))


def may_need_masking(texts: list[str], secrets: tuple[str, ...]) -> bool:
    """Whether any of `texts` could hold something to mask (one pass over them all)."""
    joined = "\n".join(texts)
    if secrets and secrets_pattern(secrets).search(joined):
        return True
    lowered = joined.lower()
    return any(trigger in lowered for trigger in _ALL_TRIGGERS)


def mask(text: str, secrets: tuple[str, ...]) -> str:
    """redact() for a hot loop: `secrets` already passed through usable_secrets()."""
    if not text:
        return text
    if secrets:
        text = secrets_pattern(secrets).sub(REDACTED, text)
    lowered = text.lower()
    # Plain substring tests are many times faster than one big case-insensitive regex.
    for trigger in _ALL_TRIGGERS:
        if trigger in lowered:
            break
    else:
        return text
    for triggers, pattern, replacement in TOKEN_PATTERNS:
        if any(trigger in lowered for trigger in triggers):
            text = pattern.sub(replacement, text)
    return text
