"""A pair's scan findings on its pages: the text with each finding marked and masked, never shown in full.

Offsets come from the scan (storage/services/scan.py, of the text as it is now); the marked text is built
from pair_text.text_blocks, so line breaks, code blocks and right-to-left text stay as the reader shows them.
"""

from __future__ import annotations

import re

from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe

from storage.admin.pair_text import text_blocks
from storage.sensitive_text import PLACEHOLDERS

# A finding is first replaced by "\ue000<n>\ue001" (private-use characters, escaped as themselves), then the
# escaped blocks get the mark. Those characters in the text itself are shown as U+FFFD, so none is mistaken
# for a finding's place.
OPEN, CLOSE = "\ue000", "\ue001"
SLOT_RE = re.compile(f"{OPEN}(\\d+){CLOSE}")
MARK_HTML = '<mark class="ff-finding ff-finding-{}" title="{} (characters {}–{}), masked">{}</mark>'


def masked_value(text: str, kind: str, start: int, end: int) -> str:
    """What a page shows in place of a finding: secrets and card numbers their placeholder, others their ends."""
    value = text[start:end]
    if kind in ("secret", "credit_card") or len(value) < 6:
        return PLACEHOLDERS[kind]
    return value[0] + "•" * (len(value) - 2) + value[-1]


def marked_blocks(text: str, findings: list) -> SafeString:
    """text_blocks of `text` with every finding (objects with kind, start, end) replaced by its masked mark."""
    if not findings:
        return text_blocks(text)
    if OPEN in text or CLOSE in text:
        text = text.replace(OPEN, "\ufffd").replace(CLOSE, "\ufffd")  # same length: the offsets still fit
    marks: list[str] = []
    pieces: list[str] = []
    position = 0
    for finding in sorted(findings, key=lambda f: f.start):
        if finding.start < position or not 0 <= finding.start < finding.end <= len(text):
            continue  # overlapping or out of range: the earlier mark covers it
        pieces.append(text[position : finding.start])
        pieces.append(f"{OPEN}{len(marks)}{CLOSE}")
        marks.append(
            format_html(
                MARK_HTML,
                finding.kind,
                finding.kind.replace("_", " "),
                finding.start,
                finding.end,
                masked_value(text, finding.kind, finding.start, finding.end),
            )
        )
        position = finding.end
    pieces.append(text[position:])
    blocks = str(text_blocks("".join(pieces)))
    return mark_safe(SLOT_RE.sub(lambda match: marks[int(match.group(1))], blocks))  # marks are format_html output


def masked_head(head: str | None, findings: list | None) -> str | None:
    """The first characters of a text (cut in SQL) with each finding masked; one cut short shows its placeholder."""
    if not head or not findings:
        return head
    pieces: list[str] = []
    position = 0
    for finding in sorted(findings, key=lambda f: f.start):
        if finding.start >= len(head):
            break
        if finding.start < position:
            continue
        pieces.append(head[position : finding.start])
        if finding.end <= len(head):
            pieces.append(masked_value(head, finding.kind, finding.start, finding.end))
        else:
            pieces.append(PLACEHOLDERS[finding.kind])  # cut by the end of the head: nothing of it shows
        position = min(finding.end, len(head))
    pieces.append(head[position:])
    return "".join(pieces)
