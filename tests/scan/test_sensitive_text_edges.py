"""Edges the fast paths of the scan depend on: each case pins what the detectors found before they were sped up.

The speed-ups (storage/sensitive_text: ASCII twins of the number patterns, version words checked with string
methods, patterns starting with their first character, secret triggers and stored values found from their
rarest character, URL passwords searched from the first scheme, IPv6 edges checked by one pattern) must find
exactly what the plain patterns found: same kinds, same offsets. Each case below exercises one of them where
a shortcut that is almost right would differ.
"""

from __future__ import annotations

import pytest

from storage.sensitive_text import find_sensitive, stored_secrets_pattern

CASES = [
    # Numbers next to each other and at the text's edges.
    ("4111 1111 1111 1111 415-555-0132", [("credit_card", "4111 1111 1111 1111"), ("phone", "415-555-0132")]),
    ("415-555-0132 4111111111111111", [("phone", "415-555-0132"), ("credit_card", "4111111111111111")]),
    ("192.168.1.10", [("ip", "192.168.1.10")]),
    ("415-555-0132", [("phone", "415-555-0132")]),
    ("415.555.0132", [("phone", "415.555.0132")]),
    ("+44 20 7946 0958 then 020 7946 0958", [("phone", "+44 20 7946 0958"), ("phone", "020 7946 0958")]),
    ("1.2.3.4\n5.6.7.8", [("ip", "1.2.3.4"), ("ip", "5.6.7.8")]),
    ("12.34.56.78.90", []),
    # A card among digit groups that start with digits no card scheme starts with.
    ("9 4111 1111 1111 1111 paid", [("credit_card", "4111 1111 1111 1111")]),
    ("ISBN 978-4-111-11111-1", []),
    # Unicode digits are digits to the patterns (not to the card schemes); one non-ASCII character anywhere
    # sends the whole text down the Unicode path, which must find the ASCII numbers in it too.
    ("٤١١١ ١١١١ ١١١١ ١١١١", []),
    ("١٩٢.١٦٨.١.١٠", [("ip", "١٩٢.١٦٨.١.١٠")]),
    (
        "café: call 415-555-0132 or 4111 1111 1111 1111 from 10.0.0.1",
        [("phone", "415-555-0132"), ("credit_card", "4111 1111 1111 1111"), ("ip", "10.0.0.1")],
    ),
    # Version words before an IPv4-shaped number: case folding (the long s is an s), the word boundary
    # looked for before the 12-character window, whitespace other than spaces.
    ("ſection 1.2.3.4", []),
    ("Section 1.2.3.4", []),
    ("xversion     1.2.3.4", [("ip", "1.2.3.4")]),
    ("wv 1.2.3.4", [("ip", "1.2.3.4")]),
    ("release\t1.2.3.4", []),
    ("pin ==1.2.3.4", []),
    # Token shapes need a word boundary before their prefix (a Unicode letter is a word character).
    ("xhf_AbCdEfGhIjKlMnOpQrStUv12", []),
    ("éhf_AbCdEfGhIjKlMnOpQrStUv12", []),
    ("(hf_AbCdEfGhIjKlMnOpQrStUv12)", [("secret", "hf_AbCdEfGhIjKlMnOpQrStUv12")]),
    ("HF_TOKEN hf_AbCdEfGhIjKlMnOpQrStUv12", [("secret", "hf_AbCdEfGhIjKlMnOpQrStUv12")]),
    ("xsk-abcdefghijklmnop1234 and _ghp_abcdefghijklmnopqrstuvwxyz0123456789", []),
    ("AKIAIOSFODNN7EXAMPLE1 xAKIAIOSFODNN7EXAMPLE", []),
    # URL passwords: a first URL without one, a non-ASCII text.
    ("see http://example.com then ftp://user:s3cr3tpass@files.example.com/x", [("secret", "s3cr3tpass")]),
    ("é https://u:pw123456@h.example.com", [("secret", "pw123456")]),
    ("ſftp://user:pw123456@h.example.com", [("secret", "pw123456")]),  # IGNORECASE: the long s is a scheme letter
    # IPv6 edges: more than four hex digits or a word character around the run, a trailing dot.
    ("abcdef::1 and g::1 and 1::2x", []),
    ("x abcde::1 y", []),
    ("x bcde::1 y", [("ip", "bcde::1")]),
    ("fe80::1.", [("ip", "fe80::1")]),
    ("x 2001:db8::1 y", [("ip", "2001:db8::1")]),
    ("time 12:30:45 a = b::c", []),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_detector_edges_are_found_exactly_as_before(text, expected):
    assert [(f.kind, text[f.start : f.end]) for f in find_sensitive(text)] == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("pass wandb-7f3a9c21d0e4 on", ["wandb-7f3a9c21d0e4"]),
        ("Sup3rS3cretProxyPass and rq9ZxP2mLk", ["Sup3rS3cretProxyPass", "rq9ZxP2mLk"]),
        ("wandb-7f3a9c21d0e", []),
        ("SUP3RS3CRETPROXYPASS", []),
    ],
)
def test_stored_values_found_from_their_rarest_character(text, expected):
    values = ["wandb-7f3a9c21d0e4", "Sup3rS3cretProxyPass", "rq9ZxP2mLk", "my_openai_token_value"]
    found = find_sensitive(text, stored_secrets_pattern(values))
    assert [text[f.start : f.end] for f in found if f.kind == "secret"] == expected
