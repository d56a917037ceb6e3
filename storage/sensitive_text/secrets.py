"""Secrets in a text: the token shapes of `storage.redaction.TOKEN_SHAPES`, URL passwords, stored secret values."""

from __future__ import annotations

import re
import string
from collections.abc import Iterable

from storage.redaction import TOKEN_SHAPES, secrets_pattern, usable_secrets
from storage.sensitive_text.kinds import Finding

# What URL_PASSWORD_RE's scheme is made of, in ASCII text.
SCHEME_CHARS = frozenset(string.ascii_letters + string.digits + "+.-")
URL_PASSWORD_RE = re.compile(r"\b[a-z][a-z0-9+.-]*://[^/\s:@]+:([^/\s@]+)@", re.IGNORECASE)

SECRET_TRIGGERS = tuple(dict.fromkeys(trigger for _, triggers, _ in TOKEN_SHAPES for trigger in triggers))
SubstringChecks = tuple[tuple[str, str | re.Pattern[str]], ...]
# Characters from rarest to commonest in text: each trigger is looked for from its rarest character.
ANCHOR_ORDER = "_-=:/'\"qjzxkvbpygfwmucldrhsnioate"


def substring_checks(substrings: Iterable[str]) -> SubstringChecks:
    """(rarest character, check) pairs that together say whether a text holds any of `substrings`, as `in` would.

    One `in` test per substring scans the whole text each time; a one-character `in` is a fast memchr, so
    the substrings are grouped by their rarest character and a group is looked at only when its character
    occurs: a lone substring by `in`, several by one pattern starting with the character (which `re` jumps
    between) that checks the part before it with a lookbehind.
    """
    groups: dict[str, list[str]] = {}
    for trigger in substrings:
        at = min(range(len(trigger)), key=lambda i: ANCHOR_ORDER.find(trigger[i]) % (len(ANCHOR_ORDER) + 1))
        groups.setdefault(trigger[at], []).append(trigger)
    checks: list[tuple[str, str | re.Pattern[str]]] = []
    for anchor, members in groups.items():
        if len(members) == 1:
            checks.append((anchor, members[0]))
            continue
        alternatives = []
        for trigger in members:
            at = trigger.index(anchor)
            before = f"(?<={re.escape(trigger[:at])}.)" if at else ""
            alternatives.append(before + re.escape(trigger[at + 1 :]))
        checks.append((anchor, re.compile(re.escape(anchor) + "(?:" + "|".join(alternatives) + ")", re.DOTALL)))
    return tuple(checks)


def holds_any(text: str, checks: SubstringChecks) -> bool:
    """Whether `text` holds any of the substrings `checks` (from substring_checks) were made for."""
    for anchor, check in checks:
        if anchor in text and (check in text if isinstance(check, str) else check.search(text)):
            return True
    return False


SECRET_TRIGGER_CHECKS = substring_checks(SECRET_TRIGGERS)


def find_secrets(text: str, secrets_re: re.Pattern[str] | None) -> list[Finding]:
    found: list[Finding] = []
    lowered = text.lower()
    if holds_any(lowered, SECRET_TRIGGER_CHECKS):
        for _, triggers, pattern in TOKEN_SHAPES:
            if any(trigger in lowered for trigger in triggers):
                for match in pattern.finditer(text):
                    # For named values (the AWS secret key) only the value is the secret, not its name.
                    start = match.end(1) if match.group(1) and not _keeps_prefix(match.group(1)) else match.start()
                    found.append(Finding("secret", start, match.end()))
    # A password in a URL sits between "://" and an "@".
    if "://" in text and "@" in text:
        for match in URL_PASSWORD_RE.finditer(text, _url_search_start(text)):
            found.append(Finding("secret", match.start(1), match.end(1)))
    if secrets_re is not None:
        # Looked up by identity: hashing a pattern hashes its compiled code, on every text.
        entry = _STORED_LITERALS.get(id(secrets_re))
        checks = entry[1] if entry is not None and entry[0] is secrets_re else None
        # Literal values: substring tests rule most texts out faster than the alternation.
        if checks is None or holds_any(text, checks):
            for match in secrets_re.finditer(text):
                found.append(Finding("secret", match.start(), match.end()))
    return found


def _url_search_start(text: str) -> int:
    """Where URL_PASSWORD_RE can first match: the scheme before the first "://" (its `\\b` makes `re` try
    every position, and most "://" have no password). ASCII text only, where IGNORECASE folds no other
    characters into the scheme's; otherwise 0."""
    if not text.isascii():
        return 0
    start = text.index("://")
    while start > 0 and text[start - 1] in SCHEME_CHARS:
        start -= 1
    return start


def _keeps_prefix(prefix: str) -> bool:
    """Whether a pattern's group 1 is part of the secret (a token prefix) rather than a name before it."""
    return not prefix.rstrip().endswith(("=", ":", '"', "'"))


# Substring checks for the values behind each pattern stored_secrets_pattern() made (redaction caches the
# patterns), by the pattern's id; the entry holds the pattern, so the id is not reused while the entry lives.
_STORED_LITERALS: dict[int, tuple[re.Pattern[str], SubstringChecks]] = {}


def stored_secrets_pattern(values: Iterable[str]) -> re.Pattern[str] | None:
    """One pattern for the stored secret values (as redaction masks them), or None without any."""
    usable = usable_secrets(values)
    if not usable:
        return None
    pattern = secrets_pattern(usable)
    _STORED_LITERALS[id(pattern)] = (pattern, substring_checks(usable))
    return pattern
