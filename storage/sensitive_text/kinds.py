"""The kinds of finding, their placeholders and which wins an overlap; a finding is a kind and offsets."""

from __future__ import annotations

from typing import NamedTuple

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
