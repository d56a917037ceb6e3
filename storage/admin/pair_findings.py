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
from storage.services.scan import PairScanner
from storage.services.scan_findings import current_findings

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


def attach_findings(pairs) -> None:
    """Give each pair of the page its findings per side, so its previews and snippets are masked.

    Those of the current stored scans (one query), and whatever the scan finds in the first characters
    the page shows: a pair never scanned, or edited since, is masked too. What the flagged filter lists
    stays what the stored scans found.
    """
    by_pair: dict[int, dict[str, list]] = {}
    pairs = list(pairs)
    if not pairs:
        return
    for finding in (
        current_findings()
        .filter(pair_id__in=[pair.pk for pair in pairs])
        .only("pair_id", "side", "kind", "start", "end")
    ):
        by_pair.setdefault(finding.pair_id, {}).setdefault(finding.side, []).append(finding)
    scanner = PairScanner()
    for pair in pairs:
        found = by_pair.get(pair.pk, {})
        for side in ("input", "output"):
            # The snippet's head is the longer one when there is a search; the preview's is a prefix of it.
            head = getattr(pair, f"{side}_head", None) or getattr(pair, f"{side}_preview", None)
            if head:
                found.setdefault(side, []).extend(scanner.find(head))
        pair.scan_findings = found
