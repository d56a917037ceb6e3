"""Find personal data and secrets in a text: e-mail addresses, phone numbers, IP addresses, card numbers, secrets.

`find_sensitive(text, secrets_re=None)` returns the findings of one text as `Finding(kind, start, end)`, with
Python string offsets, sorted by start, never overlapping (where two detectors claim the same characters the
stronger kind wins: secret > email > credit_card > ip > phone). `redact_findings(text, findings)` replaces each
finding with its placeholder (`[EMAIL]`, `[PHONE]`, `[IP]`, `[CARD]`, `[SECRET]`).

Kinds:
- `secret`: the token shapes of `storage.redaction.TOKEN_SHAPES` (Hugging Face, RunPod, GitHub, `sk-` keys,
  AWS access key ids and named secret access keys, private key blocks), passwords in URLs
  (`https://user:PASSWORD@host`), and the stored values of secret settings (`stored_secrets_pattern(values)`).
- `email`: `local@domain.tld`, except image names like `icon@2x.png` and `git@host` remotes.
- `phone`: `+` and a country code with 7-15 digits in groups; North American numbers `(415) 555-0132`,
  `415-555-0132`, `415.555.0132`, `415 555 0132` (area code and exchange start with 2-9); national numbers
  starting with 0 in groups (`020 7946 0958`). Bare runs of digits are not phones (ids, timestamps).
- `ip`: IPv4 (four octets ≤ 255) unless it reads as a version (`v1.2.3.4`, `version 1.2.3.4`, `==1.2.3.4`,
  `section 1.2.3.4`, a fifth part `1.2.3.4.5`); IPv6 checked by `ipaddress` with at least two groups and a digit
  (so `std::vector` and `12:30:45` are not addresses).
- `credit_card`: 13-19 digits, optionally in groups split by single spaces or dashes, passing the Luhn check
  and starting like a card scheme of that length (Visa, Mastercard, Amex, Discover, Diners, JCB, UnionPay):
  a random 16-digit id passes Luhn one time in ten, the scheme check removes most of those.

The detectors live by concern in `addresses` (e-mail, IPv6), `numbers` (phones, cards, IPv4) and `secrets`;
`kinds` holds `Finding`. Each runs only when a cheap test says it can match (an `@`, a run of digits, a `:`,
a trigger), and several rules are spelled for speed in ways that must match exactly what the plain patterns
match (ASCII twins of the number patterns, version words by string methods, triggers by their rarest
character): `tests/scan/test_sensitive_text_edges.py` pins the edges. This package imports nothing from Django.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from storage.sensitive_text.addresses import find_emails, find_ipv6s
from storage.sensitive_text.kinds import KINDS, PLACEHOLDERS, PRIORITY, Finding
from storage.sensitive_text.numbers import card_scheme_ok, find_numbers, luhn_ok
from storage.sensitive_text.secrets import find_secrets, stored_secrets_pattern

__all__ = [
    "KINDS",
    "PLACEHOLDERS",
    "PRIORITY",
    "Finding",
    "card_scheme_ok",
    "find_sensitive",
    "luhn_ok",
    "masked_example",
    "redact_findings",
    "stored_secrets_pattern",
]


def find_sensitive(text: str, secrets_re: re.Pattern[str] | None = None) -> list[Finding]:
    """The findings in `text`, sorted by start, overlaps resolved by PRIORITY."""
    if not text:
        return []
    found = find_secrets(text, secrets_re)
    if "@" in text:
        find_emails(text, found)
    find_numbers(text, found)
    if "::" in text or text.count(":") >= 7:
        found.extend(find_ipv6s(text))
    if len(found) <= 1:
        return found
    return _without_overlaps(found)


def _without_overlaps(found: list[Finding]) -> list[Finding]:
    kept: list[Finding] = []
    for finding in sorted(found, key=lambda f: (PRIORITY[f.kind], f.start, -(f.end - f.start))):
        if all(finding.end <= other.start or finding.start >= other.end for other in kept):
            kept.append(finding)
    return sorted(kept, key=lambda f: f.start)


def redact_findings(text: str, findings: Iterable[Finding]) -> str:
    """`text` with each finding (non-overlapping) replaced by its kind's placeholder."""
    parts = []
    last = 0
    for finding in sorted(findings, key=lambda f: f.start):
        parts.append(text[last : finding.start])
        parts.append(PLACEHOLDERS[finding.kind])
        last = finding.end
    parts.append(text[last:])
    return "".join(parts)


def masked_example(text: str, finding: Finding, *, findings: list[Finding] | None = None, context: int = 24) -> str:
    """A short excerpt around a finding for people to see, the finding itself masked.

    Secrets and card numbers show nothing of themselves; other kinds keep their first and last character
    so a reviewer can tell an address from a false alarm without the excerpt re-publishing it. Every other
    finding of the text is replaced before the excerpt is cut, so none shows half at its edges.
    """
    value = text[finding.start : finding.end]
    if finding.kind in ("secret", "credit_card") or len(value) < 6:
        shown = PLACEHOLDERS[finding.kind]
    else:
        shown = value[0] + "•" * (len(value) - 2) + value[-1]
    others = [f for f in (find_sensitive(text) if findings is None else findings) if f != finding]
    before = redact_findings(text[: finding.start], [f for f in others if f.end <= finding.start])
    after_findings = [
        Finding(f.kind, f.start - finding.end, f.end - finding.end) for f in others if f.start >= finding.end
    ]
    after = redact_findings(text[finding.end :], after_findings)
    return " ".join(f"{before[-context:]}{shown}{after[:context]}".split())
