"""A pair's text as a reader sees it: prose with its line breaks, fenced code as code, the search terms marked.

Everything from the data is escaped; the only markup is what these functions write.
"""

from __future__ import annotations

import re
import unicodedata

from django.utils.html import escape, format_html
from django.utils.safestring import SafeString, mark_safe

# ```lang on its own line, the code, ``` on its own line (indented fences too, as Markdown allows).
FENCE_RE = re.compile(r"^[ \t]*```[ \t]*([\w+#.-]*)[^\n]*\n(.*?)^[ \t]*```[ \t]*$", re.M | re.S)
# The list computes a snippet from the first characters of each side only (cut in SQL).
SNIPPET_SOURCE_CHARS = 1_000
SNIPPET_BEFORE = 40
SNIPPET_AFTER = 100
WHITESPACE_RE = re.compile(r"\s+")
# Direction is judged from the first characters of a block: enough for a paragraph, cheap for a 1 MB text.
DIRECTION_SAMPLE = 2_000
CODE_HTML = '<figure class="ff-code-figure">{}<pre class="ff-code-block" dir="ltr"><code{}>{}</code></pre></figure>'


def text_blocks(text: str) -> SafeString:
    """Prose blocks (line breaks kept, direction from the text) and <pre><code> for fenced code."""
    parts: list[str] = []
    position = 0
    for fence in FENCE_RE.finditer(text):
        parts.append(prose_block(text[position : fence.start()]))
        language, code = fence.group(1), fence.group(2).removesuffix("\n")
        parts.append(
            format_html(
                CODE_HTML,
                format_html('<figcaption class="ff-code-lang">{}</figcaption>', language) if language else "",
                format_html(' class="language-{}"', language) if language else "",
                code,
            )
        )
        position = fence.end()
    parts.append(prose_block(text[position:]))
    return mark_safe("".join(part for part in parts if part))  # every part is format_html output


def prose_block(text: str) -> str:
    # A newline right against a fence belongs to the fence, not to the prose.
    text = text.removeprefix("\n").removesuffix("\n")
    if not text.strip():
        return ""
    return format_html('<div class="ff-prose" dir="{}">{}</div>', text_direction(text), text)


def text_direction(text: str) -> str:
    """ "rtl" when most strong characters are right-to-left, else "auto".

    dir="auto" alone goes by the first strong character, so Arabic text that starts with "LoRA" would be
    laid out left to right.
    """
    rtl = ltr = 0
    for char in text[:DIRECTION_SAMPLE]:
        kind = unicodedata.bidirectional(char)
        if kind in ("R", "AL"):
            rtl += 1
        elif kind == "L":
            ltr += 1
    return "rtl" if rtl > ltr else "auto"


def term_pattern(terms: list[str]) -> re.Pattern[str] | None:
    """One case-insensitive pattern for all terms, longest first so a phrase wins over a word in it."""
    if not terms:
        return None
    return re.compile("|".join(re.escape(term) for term in sorted(terms, key=len, reverse=True)), re.I)


def highlighted(text: str, pattern: re.Pattern[str]) -> str:
    """`text` escaped, on one line, with every match of `pattern` in <mark>."""
    pieces, position = [], 0
    for match in pattern.finditer(text):
        pieces.append(escape(WHITESPACE_RE.sub(" ", text[position : match.start()])))
        pieces.append(f"<mark>{escape(WHITESPACE_RE.sub(' ', match.group()))}</mark>")
        position = match.end()
    pieces.append(escape(WHITESPACE_RE.sub(" ", text[position:])))
    return "".join(pieces)


def match_snippet(sides: list[tuple[str, str | None]], pattern: re.Pattern[str] | None) -> SafeString:
    """Around the first match in the first side that has one: a few words before, more after, terms marked.

    `sides` are (label, the first SNIPPET_SOURCE_CHARS or so characters of the text).
    """
    if pattern is None:
        return mark_safe("")
    for label, text in sides:
        match = pattern.search(text or "")
        if match is None:
            continue
        start = max(0, match.start() - SNIPPET_BEFORE)
        end = min(len(text), match.end() + SNIPPET_AFTER)
        return format_html(
            '<span class="ff-snippet"><span class="ff-muted">{}:</span> <bdi>{}{}{}</bdi></span>',
            label,
            "…" if start else "",
            mark_safe(highlighted(text[start:end], pattern)),  # highlighted() escapes
            "…" if end < len(text) else "",
        )
    return format_html(
        '<span class="ff-snippet ff-muted">{}</span>', f"matched past the first {SNIPPET_SOURCE_CHARS:,} characters"
    )
