"""A pair's secrets never leave in full through its page: numbered slots in the edit form, marks when read-only.

A pair's text may hold a token or a key (a pasted Hugging Face token, the stored RunPod key). Its edit
form shows each secret the scan finds as a numbered slot, "⟦SECRET 1⟧", and puts the value back on
save: a slot left in place keeps its secret, a slot deleted removes it. A text that already holds
such a slot of its own keeps it: the form's slots are numbered past it, and only their numbers are
filled on save. A user who may only view pairs gets the text as the reader shows it, every finding
marked and masked (pair_findings.marked_blocks).
"""

from __future__ import annotations

import re

from storage.sensitive_text import Finding

SLOT = "⟦SECRET {}⟧"
SLOT_RE = re.compile(r"⟦SECRET (\d{1,9})⟧")  # never a number too long for int()


def secret_slots(text: str, findings: list[Finding]) -> tuple[str, dict[int, str]]:
    """`text` with each secret finding replaced by a numbered slot, and the secret of each slot number."""
    secrets = sorted((f for f in findings if f.kind == "secret"), key=lambda f: f.start)
    if not secrets:
        return text, {}
    number = max((int(m.group(1)) for m in SLOT_RE.finditer(text)), default=0)
    pieces: list[str] = []
    values: dict[int, str] = {}
    position = 0
    for finding in secrets:
        if finding.start < position:
            continue  # overlapping: the earlier slot covers it
        number += 1
        pieces.append(text[position : finding.start])
        values[number] = text[finding.start : finding.end]
        pieces.append(SLOT.format(number))
        position = finding.end
    pieces.append(text[position:])
    return "".join(pieces), values


def filled_slots(text: str, values: dict[int, str]) -> str:
    """The secrets put back where their slots still are; any other slot stays as typed."""
    if not values:
        return text
    return SLOT_RE.sub(lambda match: values.get(int(match.group(1)), match.group(0)), text)
