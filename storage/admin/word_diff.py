"""Two texts side by side with the differing words marked: escaped HTML with <del> and <ins>."""

from __future__ import annotations

import difflib

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe


def marked_words(base: str, other: str) -> tuple[SafeString, SafeString]:
    """`base` with the words `other` lacks in <del>, and `other` with the words `base` lacks in <ins>."""
    left, right = base.split(), other.split()
    old, new = [], []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(a=left, b=right, autojunk=False).get_opcodes():
        removed, added = escape(" ".join(left[i1:i2])), escape(" ".join(right[j1:j2]))
        if tag == "equal":
            old.append(removed)
            new.append(added)
            continue
        if removed:
            old.append(f"<del>{removed}</del>")
        if added:
            new.append(f"<ins>{added}</ins>")
    # Safe: every word went through escape() above.
    return mark_safe(" ".join(old)), mark_safe(" ".join(new))
