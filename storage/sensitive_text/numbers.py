"""Phone numbers, card numbers and IPv4 addresses: all looked for only inside runs of digits and separators."""

from __future__ import annotations

import re
from typing import NamedTuple

from storage.sensitive_text.kinds import Finding

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


def ascii_twin(pattern: re.Pattern[str]) -> re.Pattern[str]:
    """`pattern` with `\\d` and `\\w` spelled as ASCII ranges, for text that is all ASCII (where both match the same).

    `re` tests a set of ranges with a bitmap, but a Unicode `\\d` or `\\w` with a call into the Unicode
    database per character: the run pattern alone was a third of the scan.
    """
    spelled = {"\\d": "0-9", "\\w": "A-Za-z0-9_"}
    out, in_set, i, source = [], False, 0, pattern.pattern
    while i < len(source):
        piece = source[i : i + 2] if source[i] == "\\" else source[i]
        if piece in spelled:
            out.append(spelled[piece] if in_set else f"[{spelled[piece]}]")
        else:
            in_set = (in_set or piece == "[") and not (in_set and piece == "]")
            out.append(piece)
        i += len(piece)
    return re.compile("".join(out), pattern.flags)


class NumberPatterns(NamedTuple):
    runs: re.Pattern[str]
    phone: re.Pattern[str]
    card: re.Pattern[str]
    ipv4: re.Pattern[str]


UNICODE_PATTERNS = NumberPatterns(NUMBER_RUN_RE, PHONE_RE, CARD_RE, IPV4_RE)
ASCII_PATTERNS = NumberPatterns(*map(ascii_twin, UNICODE_PATTERNS))


def find_numbers(text: str, found: list[Finding]) -> None:
    """Phones, cards and IPv4 addresses, looked for only inside runs of digits and separators."""
    patterns = ASCII_PATTERNS if text.isascii() else UNICODE_PATTERNS
    for run in patterns.runs.finditer(text):
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
            _cards(text, start, end, found, patterns.card)
        if dots >= 3 and (match := patterns.ipv4.search(text, start, end)):
            _ipv4s(text, match, end, found, patterns.ipv4)
        if digits >= 7 and patterns.phone.search(text, start, end):
            _phones(text, start, end, found, patterns.phone)


def _stands_alone(text: str, run: re.Match[str]) -> bool:
    """Whether a run is not part of a word, a decimal or a longer dashed number (as CARD_RE's lookarounds say)."""
    before = text[run.start() - 1] if run.start() else " "
    after = text[run.end() : run.end() + 2] or " "  # the end of the text ends the run ("" is in every string)
    return not (before.isalnum() or before in "_.-") and not (
        after[:1].isalnum() or after[:1] in "_-" or (after[:1] == "." and after[1:2].isdigit())
    )


def _phones(text: str, start: int, end: int, found: list[Finding], phone_re: re.Pattern[str]) -> None:
    for match in phone_re.finditer(text, start, end):
        digits = sum(char.isdigit() for char in match.group())
        if 7 <= digits <= 15:
            found.append(Finding("phone", match.start(), match.end()))


def _cards(text: str, start: int, end: int, found: list[Finding], card_re: re.Pattern[str]) -> None:
    for match in card_re.finditer(text, start, end):
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


def _ipv4s(text: str, match: re.Match[str] | None, end: int, found: list[Finding], ipv4_re: re.Pattern[str]) -> None:
    """The IPv4 addresses from `match` (the first IPV4_RE match of a run's window) to the window's end."""
    while match is not None:
        if max(map(int, match.group().split("."))) <= 255 and not _version_before(text, match.start()):
            found.append(Finding("ip", match.start(), match.end()))
        match = ipv4_re.search(text, match.end(), end)


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
