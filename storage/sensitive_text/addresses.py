"""E-mail addresses and IPv6 addresses in a text (IPv4 addresses are numbers: see `numbers`)."""

from __future__ import annotations

import ipaddress
import re
import string
from collections.abc import Iterable

from storage.sensitive_text.kinds import Finding

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

# The same runs, only those whose edges _ipv6s accepts, checked by `re` from the colon: before it, up to four
# hex digits (the address's first group) after a character that is not a word character, "." or ":" (k is
# how many); after the run, no word character unless the run ends with "." (the dot is then cut off).
IPV6_CANDIDATE_RE = re.compile(
    ":(?:"
    + "|".join((f"(?<=[0-9A-Fa-f]{{{k}}}:)" if k else "") + f"(?<![A-Za-z0-9_.:][0-9A-Fa-f]{{{k}}}:)" for k in range(5))
    + r")[0-9A-Fa-f:.]*+(?:(?<=\.)|(?![A-Za-z0-9_]))"
)
HEX_DIGITS = frozenset(string.hexdigits)
ASCII_DIGIT_RE = re.compile("[0-9]")  # candidates are ASCII: the same as str.isdigit there


def find_emails(text: str, found: list[Finding]) -> None:
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


def find_ipv6s(text: str) -> Iterable[Finding]:
    for run in IPV6_CANDIDATE_RE.finditer(text):
        start, end = run.start(), run.end()
        while start > 0 and run.start() - start < 4 and text[start - 1] in HEX_DIGITS:
            start -= 1
        candidate = text[start:end].rstrip(".")
        end = start + len(candidate)
        pieces = candidate.split(":")
        groups = len(pieces) - pieces.count("")  # the non-empty ones
        if groups < 2 or ("::" not in candidate and groups < 8 and "." not in candidate):
            continue
        if not ASCII_DIGIT_RE.search(candidate):
            continue
        try:
            ipaddress.IPv6Address(candidate)
        except ValueError:
            continue
        yield Finding("ip", start, end)
