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

Each detector runs only when a cheap test says it can match (an `@`, a digit, a `:`, a trigger), so the
typical text costs a few substring tests. This module imports nothing from Django.
"""

from __future__ import annotations

import ipaddress
import re
import string
from collections.abc import Iterable
from typing import NamedTuple

from storage.redaction import TOKEN_SHAPES, secrets_pattern, usable_secrets

KINDS = ("email", "phone", "ip", "credit_card", "secret")
PLACEHOLDERS = {
    "email": "[EMAIL]",
    "phone": "[PHONE]",
    "ip": "[IP]",
    "credit_card": "[CARD]",
    "secret": "[SECRET]",
}
# Which kind keeps characters two detectors both claim.
PRIORITY = {"secret": 0, "email": 1, "credit_card": 2, "ip": 3, "phone": 4}


class Finding(NamedTuple):
    kind: str
    start: int
    end: int


# An address is found from its "@" (rare in text): the local part before it, the domain after it.
EMAIL_LOCAL_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}$")
EMAIL_DOMAIN_RE = re.compile(r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}\b")
EMAIL_LOCAL_CHARS = frozenset(string.ascii_letters + string.digits + "._%+-")
# user@2x.png is an image name, not an address.
FILE_SUFFIXES = frozenset(
    [
        "png",
        "jpg",
        "jpeg",
        "gif",
        "svg",
        "webp",
        "ico",
        "bmp",
        "tif",
        "tiff",
        "avif",
        "js",
        "mjs",
        "ts",
        "tsx",
        "jsx",
        "css",
        "scss",
        "less",
        "map",
        "json",
        "html",
        "htm",
    ]
)
NOT_PERSONAL_LOCAL_PARTS = frozenset({"git"})

# The pattern starts with the set of first characters (and checks the character before after it) so that `re`
# skips ahead fast; each alternative then asserts the first character it needs.
PHONE_RE = re.compile(
    r"[+(02-9](?<![\w+.-].)(?:"
    # +44 20 7946 0958, +1-415-555-0132, +49 (30) 901820, +33 1 42 68 53 00
    r"(?<=\+)\d{1,3}(?:[ .-]?\(\d{1,4}\))?(?:[ .-]?\d{1,5}){2,6}"
    # (415) 555-0132, 415-555-0132, 415.555.0132, 415 555 0132
    r"|(?<=\()[2-9]\d{2}\)[ .-]?[2-9]\d{2}[ .-]\d{4}"
    r"|(?<=[2-9])\d{2}(?P<sep>[ .-])[2-9]\d{2}(?P=sep)\d{4}"
    # 020 7946 0958, 0151-496-0725, 07700 900123
    r"|(?<=0)\d{2,4}[ -]\d{3,4}[ -]?\d{3,4}"
    r")(?![\w.-]*\d)"
)
# Runs of digits with separators, at least 7 characters: only these can hold a phone, card or IPv4 address.
# Starting with a character class lets `re` skip ahead fast; the detectors then run on these runs alone.
NUMBER_RUN_RE = re.compile(r"[\d(+][\d .()+-]{5,}\d")
RUN_CONTEXT = 16
# Deleting the separators of a run leaves its digits (one C call instead of a count per separator).
RUN_SEPARATORS = str.maketrans("", "", " .()+-")
CARD_RE = re.compile(r"(?<![\w.-])\d(?:[ -]?\d){12,18}(?![\w-]|\.\d)")
DIGIT_GROUP_RE = re.compile(r"\d+")
# `(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}`, starting with the digit for `re`'s fast skip.
IPV4_RE = re.compile(r"\d(?<![\w.]\d)\d{0,2}\.(?:\d{1,3}\.){2}\d{1,3}(?![\w]|\.\d)")
# Text right before an IPv4-shaped number that makes it a version, a section or a requirement pin.
VERSION_BEFORE = re.compile(
    r"(?i)(?:\bv|\bver\.?|\bversion|\brelease|\bbuild|\bsection|\bchapter|§|==|>=|<=|~=|!=)\s*$"
)
# VERSION_BEFORE's alternatives for _version_before: words after a word boundary, marks anywhere.
VERSION_WORDS = ("v", "ver", "ver.", "version", "release", "build", "section", "chapter")
VERSION_MARKS = ("==", ">=", "<=", "~=", "!=")
# From a colon, the hex digits, colons and dots around it (an embedded IPv4 tail included).
IPV6_RUN_RE = re.compile(r":[0-9A-Fa-f:.]*")
HEX_DIGITS = frozenset(string.hexdigits)
WORD_CHARS = frozenset(string.ascii_letters + string.digits + "_")
URL_PASSWORD_RE = re.compile(r"\b[a-z][a-z0-9+.-]*://[^/\s:@]+:([^/\s@]+)@", re.IGNORECASE)

# Card schemes by first digits and their lengths (a card number starting otherwise is not reported).
CARD_SCHEMES = (
    (("4",), (13, 16, 19)),  # Visa
    (tuple(str(p) for p in range(51, 56)) + tuple(str(p) for p in range(2221, 2721)), (16,)),  # Mastercard
    (("34", "37"), (15,)),  # American Express
    (("6011", "65", *tuple(str(p) for p in range(644, 650))), (16, 17, 18, 19)),  # Discover
    (("36", *tuple(str(p) for p in range(300, 306))), (14,)),  # Diners Club International
    (("38", "39"), (16,)),  # Diners Club (North America)
    (tuple(str(p) for p in range(3528, 3590)), (16, 17, 18, 19)),  # JCB
    (("62",), (16, 17, 18, 19)),  # UnionPay
)


def luhn_ok(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if position % 2:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


# The same schemes by length: one startswith per number instead of one per scheme.
CARD_PREFIXES_BY_LENGTH = {
    length: tuple(prefix for prefixes, lengths in CARD_SCHEMES if length in lengths for prefix in prefixes)
    for length in range(13, 20)
}


# Every scheme prefix starts with one of these digits.
CARD_FIRST_DIGITS = frozenset(prefix[0] for prefixes in CARD_PREFIXES_BY_LENGTH.values() for prefix in prefixes)


def card_scheme_ok(digits: str) -> bool:
    prefixes = CARD_PREFIXES_BY_LENGTH.get(len(digits))
    return prefixes is not None and digits.startswith(prefixes)


def _emails(text: str, found: list[Finding]) -> None:
    at = text.find("@")
    while at != -1:
        # The domain first: an anchored match, and most "@" (decorators, npm pins) have none.
        domain = EMAIL_DOMAIN_RE.match(text, at + 1)
        if domain:
            local = EMAIL_LOCAL_RE.search(text, max(0, at - 64), at)
            if local and (local.start() == 0 or text[local.start() - 1] not in EMAIL_LOCAL_CHARS):
                suffix = domain.group().rsplit(".", 1)[-1].lower()
                if suffix not in FILE_SUFFIXES and local.group().lower() not in NOT_PERSONAL_LOCAL_PARTS:
                    found.append(Finding("email", local.start(), domain.end()))
        at = text.find("@", at + 1)


def _numbers(text: str, found: list[Finding]) -> None:
    """Phones, cards and IPv4 addresses, looked for only inside runs of digits and separators."""
    for run in NUMBER_RUN_RE.finditer(text):
        chars = run.group()
        if chars.isdecimal():
            # A bare run of digits is never a phone here, and a card only as a whole.
            if 13 <= len(chars) <= 19 and card_scheme_ok(chars) and luhn_ok(chars) and _stands_alone(text, run):
                found.append(Finding("credit_card", run.start(), run.end()))
            continue
        dots = chars.count(".")
        digits = len(chars.translate(RUN_SEPARATORS))
        if digits < 7 and dots < 3:
            continue
        start = run.start()
        end = min(len(text), run.end() + RUN_CONTEXT)
        if digits >= 13:
            _cards(text, start, end, found)
        if dots >= 3:
            _ipv4s(text, IPV4_RE.search(text, start, end), end, found)
        if digits >= 7 and PHONE_RE.search(text, start, end):
            _phones(text, start, end, found)


def _stands_alone(text: str, run: re.Match[str]) -> bool:
    """Whether a run is not part of a word, a decimal or a longer dashed number (as CARD_RE's lookarounds say)."""
    before = text[run.start() - 1] if run.start() else " "
    after = text[run.end() : run.end() + 2]
    return not (before.isalnum() or before in "_.-") and not (
        after[:1].isalnum() or after[:1] in "_-" or (after[:1] == "." and after[1:2].isdigit())
    )


def _phones(text: str, start: int, end: int, found: list[Finding]) -> None:
    for match in PHONE_RE.finditer(text, start, end):
        digits = sum(char.isdigit() for char in match.group())
        if 7 <= digits <= 15:
            found.append(Finding("phone", match.start(), match.end()))


def _cards(text: str, start: int, end: int, found: list[Finding]) -> None:
    for match in CARD_RE.finditer(text, start, end):
        digits = match.group().replace(" ", "").replace("-", "")
        if card_scheme_ok(digits) and luhn_ok(digits):
            found.append(Finding("credit_card", match.start(), match.end()))
        elif len(digits) < len(match.group()):
            # Groups run on from other numbers ("at 13:37 4278 2395 1682 5727"): try the groups inside.
            among = _card_among_groups(match.group(), match.start())
            if among is not None:
                found.append(among)


def _card_among_groups(chars: str, offset: int) -> Finding | None:
    """The longest run of whole digit groups, leftmost first, that is a card number."""
    groups = [(group.start(), group.end()) for group in DIGIT_GROUP_RE.finditer(chars)]
    for first in range(len(groups)):
        if chars[groups[first][0]] not in CARD_FIRST_DIGITS:
            continue  # no scheme starts so: the pieces from this group can't be cards
        for last in range(len(groups) - 1, first - 1, -1):
            piece = chars[groups[first][0] : groups[last][1]]
            digits = piece.replace(" ", "").replace("-", "")
            if 13 <= len(digits) <= 19 and card_scheme_ok(digits) and luhn_ok(digits):
                return Finding("credit_card", offset + groups[first][0], offset + groups[last][1])
    return None


def _ipv4s(text: str, match: re.Match[str] | None, end: int, found: list[Finding]) -> None:
    """The IPv4 addresses from `match` (the first IPV4_RE match of a run's window) to the window's end."""
    while match is not None:
        if max(map(int, match.group().split("."))) <= 255 and not _version_before(text, match.start()):
            found.append(Finding("ip", match.start(), match.end()))
        match = IPV4_RE.search(text, match.end(), end)


def _version_before(text: str, at: int) -> bool:
    """Whether VERSION_BEFORE matches in the 12 characters before `at`.

    Versions are most IPv4-shaped numbers, so for ASCII text the same rule is checked with string methods:
    the words and marks must end where the trailing whitespace begins, a word after a non-word character
    (a word boundary, which looks before the window too). Non-ASCII text takes the regex (`(?i)` folds the
    long s, U+017F, to `s`).
    """
    begin = max(0, at - 12)
    window = text[begin:at]
    if not window.isascii():
        return VERSION_BEFORE.search(text, begin, at) is not None
    window = window.rstrip().lower()
    if window.endswith(VERSION_MARKS):
        return True
    for word in VERSION_WORDS:
        if window.endswith(word):
            start = begin + len(window) - len(word)
            if start == 0 or not (text[start - 1].isalnum() or text[start - 1] == "_"):
                return True
    return False


def _ipv6s(text: str) -> Iterable[Finding]:
    position = 0
    while True:
        run = IPV6_RUN_RE.search(text, position)
        if run is None:
            return
        start, end = run.start(), run.end()
        position = end
        while start > 0 and run.start() - start < 4 and text[start - 1] in HEX_DIGITS:
            start -= 1
        candidate = text[start:end].rstrip(".")
        end = start + len(candidate)
        if (start > 0 and (text[start - 1] in WORD_CHARS or text[start - 1] in ".:")) or (
            end < len(text) and text[end] in WORD_CHARS
        ):
            continue
        groups = [group for group in candidate.split(":") if group]
        if len(groups) < 2 or not any(char.isdigit() for char in candidate):
            continue
        if "::" not in candidate and len(groups) < 8 and "." not in candidate:
            continue
        try:
            ipaddress.IPv6Address(candidate)
        except ValueError:
            continue
        yield Finding("ip", start, end)


SECRET_TRIGGERS = tuple(dict.fromkeys(trigger for _, triggers, _ in TOKEN_SHAPES for trigger in triggers))
# Characters from rarest to commonest in text: each trigger is looked for from its rarest character.
ANCHOR_ORDER = "_-=:/'\"qjzxkvbpygfwmucldrhsnioate"


def _trigger_pattern(triggers: Iterable[str]) -> re.Pattern[str]:
    """One pattern finding any of `triggers` (as `in` would): each alternative starts at the trigger's rarest
    character and checks the part before it with a lookbehind, so `re` only stops at rare characters, where
    one `in` test per trigger would scan the whole text each time."""
    alternatives = []
    for trigger in triggers:
        at = min(range(len(trigger)), key=lambda i: ANCHOR_ORDER.find(trigger[i]) % (len(ANCHOR_ORDER) + 1))
        before, after = re.escape(trigger[:at]), re.escape(trigger[at + 1 :])
        alternatives.append(re.escape(trigger[at]) + (f"(?<={before}.)" if before else "") + after)
    return re.compile("|".join(alternatives), re.DOTALL)


SECRET_TRIGGERS_RE = _trigger_pattern(SECRET_TRIGGERS)


def _secrets(text: str, secrets_re: re.Pattern[str] | None) -> list[Finding]:
    found: list[Finding] = []
    lowered = text.lower()
    if SECRET_TRIGGERS_RE.search(lowered):
        for _, triggers, pattern in TOKEN_SHAPES:
            if any(trigger in lowered for trigger in triggers):
                for match in pattern.finditer(text):
                    # For named values (the AWS secret key) only the value is the secret, not its name.
                    start = match.end(1) if match.group(1) and not _keeps_prefix(match.group(1)) else match.start()
                    found.append(Finding("secret", start, match.end()))
    # A password in a URL sits between "://" and an "@".
    if "://" in text and "@" in text:
        for match in URL_PASSWORD_RE.finditer(text):
            found.append(Finding("secret", match.start(1), match.end(1)))
    if secrets_re is not None:
        # Looked up by identity: hashing a pattern hashes its compiled code, on every text.
        entry = _STORED_LITERALS.get(id(secrets_re))
        literals = entry[1] if entry is not None and entry[0] is secrets_re else None
        # Literal values: plain substring tests rule most texts out faster than the alternation.
        if literals is None or any(map(text.__contains__, literals)):
            for match in secrets_re.finditer(text):
                found.append(Finding("secret", match.start(), match.end()))
    return found


def _keeps_prefix(prefix: str) -> bool:
    """Whether a pattern's group 1 is part of the secret (a token prefix) rather than a name before it."""
    return not prefix.rstrip().endswith(("=", ":", '"', "'"))


# The literal values behind each pattern stored_secrets_pattern() made (patterns are cached by redaction),
# by the pattern's id; the entry holds the pattern, so the id is not reused while the entry lives.
_STORED_LITERALS: dict[int, tuple[re.Pattern[str], tuple[str, ...]]] = {}


def stored_secrets_pattern(values: Iterable[str]) -> re.Pattern[str] | None:
    """One pattern for the stored secret values (as redaction masks them), or None without any."""
    usable = usable_secrets(values)
    if not usable:
        return None
    pattern = secrets_pattern(usable)
    _STORED_LITERALS[id(pattern)] = (pattern, usable)
    return pattern


def find_sensitive(text: str, secrets_re: re.Pattern[str] | None = None) -> list[Finding]:
    """The findings in `text`, sorted by start, overlaps resolved by PRIORITY."""
    if not text:
        return []
    found = _secrets(text, secrets_re)
    if "@" in text:
        _emails(text, found)
    _numbers(text, found)
    if "::" in text or text.count(":") >= 7:
        found.extend(_ipv6s(text))
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
