"""What the safe-to-publish scan finds in one text, with exact offsets, and what it leaves alone."""

from __future__ import annotations

import pytest

from storage.redaction import redact
from storage.sensitive_text import Finding, find_sensitive, masked_example, redact_findings, stored_secrets_pattern

AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
PRIVATE_KEY = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA7\nabc+/=\n-----END RSA PRIVATE KEY-----"


def found(text: str, secrets_re=None) -> list[tuple[str, str]]:
    return [(f.kind, text[f.start : f.end]) for f in find_sensitive(text, secrets_re)]


@pytest.mark.parametrize(
    ("text", "kind", "item"),
    [
        ("Mail me at john.doe@example.com, thanks", "email", "john.doe@example.com"),
        ("<Jane_Smith+ml@mail.example.co.uk>", "email", "Jane_Smith+ml@mail.example.co.uk"),
        ('{"email": "OLGA1985@uni-example.edu"}', "email", "OLGA1985@uni-example.edu"),
        ("call +1 415 555 0132 now", "phone", "+1 415 555 0132"),
        ("call (415) 555-0132.", "phone", "(415) 555-0132"),
        ("call 415-555-0132", "phone", "415-555-0132"),
        ("call 415.555.0132", "phone", "415.555.0132"),
        ("call 415 555 0132", "phone", "415 555 0132"),
        ("ring +44 20 7946 0958 today", "phone", "+44 20 7946 0958"),
        ("ring 020 7946 0958 today", "phone", "020 7946 0958"),
        ("ring +49 (0)30 9018200", "phone", "+49 (0)30 9018200"),
        ("ring +33 1 42 68 53 00", "phone", "+33 1 42 68 53 00"),
        ("server 192.168.1.10 is down", "ip", "192.168.1.10"),
        ("ssh root@10.0.0.254:22", "ip", "10.0.0.254"),
        ("v6 2001:db8::8a2e:370:7334 here", "ip", "2001:db8::8a2e:370:7334"),
        ("link fe80::1ff:fe23:4567:890a%eth0", "ip", "fe80::1ff:fe23:4567:890a"),
        ("full 2001:0db8:85a3:0000:0000:8a2e:0370:7334.", "ip", "2001:0db8:85a3:0000:0000:8a2e:0370:7334"),
        ("card 4111 1111 1111 1111 exp 12/27", "credit_card", "4111 1111 1111 1111"),
        ("card 5500-0000-0000-0004", "credit_card", "5500-0000-0000-0004"),
        ("amex 378282246310005.", "credit_card", "378282246310005"),
        ("amex 3782 822463 10005", "credit_card", "3782 822463 10005"),
        ("at 13:37 4278 2395 1682 5727 paid", "credit_card", "4278 2395 1682 5727"),
        ("token hf_AbCdEfGhIjKlMnOpQrStUv12 ok", "secret", "hf_AbCdEfGhIjKlMnOpQrStUv12"),
        ("RUNPOD=rpa_ABCDEFGHIJKLMNOPQRST1234", "secret", "rpa_ABCDEFGHIJKLMNOPQRST1234"),
        ("key sk-proj-Abc123_def-456GHI789jkl", "secret", "sk-proj-Abc123_def-456GHI789jkl"),
        ("OPENAI_API_KEY sk-abcdefghijklmnop1234", "secret", "sk-abcdefghijklmnop1234"),
        ("gh ghp_abcdefghijklmnopqrstuvwxyz0123456789", "secret", "ghp_abcdefghijklmnopqrstuvwxyz0123456789"),
        ("pat github_pat_11ABCDEFG0_abcdefghijklmnopqrstu", "secret", "github_pat_11ABCDEFG0_abcdefghijklmnopqrstu"),
        ("id AKIAIOSFODNN7EXAMPLE,", "secret", "AKIAIOSFODNN7EXAMPLE"),
        ("temp ASIAY34FZKBOKMUTVV7A", "secret", "ASIAY34FZKBOKMUTVV7A"),
        (f"aws_secret_access_key = {AWS_SECRET}\n", "secret", AWS_SECRET),
        (f'"SecretAccessKey": "{AWS_SECRET}"', "secret", AWS_SECRET),
        (f"my key:\n{PRIVATE_KEY}\nbye", "secret", PRIVATE_KEY),
        (
            "cut off -----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBg",
            "secret",
            "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBg",
        ),
        ("postgres://app:s3cr3tpass@db.example.com/prod", "secret", "s3cr3tpass"),
    ],
)
def test_finds_each_kind_with_exact_offsets(text, kind, item):
    findings = find_sensitive(text)
    assert [(f.kind, f.start, f.end) for f in findings] == [(kind, text.index(item), text.index(item) + len(item))]


@pytest.mark.parametrize(
    "text",
    [
        "Upgrade to version 1.2.3.4 today",
        "Fixed in v10.0.3.1 and v2.0.1.7.",
        "pip install torch==2.1.0.1",
        "See section 4.2.1.3 of the spec.",
        "a five-part 1.2.3.4.5 version",
        "not an address 999.1.1.1",
        "std::vector<int> v; a::b; y[::2]; time 12:30:45",
        "loopback ::1 alone",
        "background: url(icon@2x.png) and sprite@3x.webp",
        "git clone git@github.com:org/repo.git",
        "npm i react@18.2.0 @types/node@20.1.0",
        "@property\ndef x(self): ...",
        "posted 2024-01-15 10:30:00, due 15/01/2024",
        "costs $1,299.99 or €45, 100-200 items, score 3-2",
        "order id 1234567890123456 and ms 1700000000000",
        "card-like but Luhn-bad 4111 1111 1111 1112",
        "Luhn-good but no card scheme 1234 5678 9012 3452",
        "ISBN 978-3-16-148410-0",
        "budget: 100 200 3000 tokens",
        "hf_short and sk-short and rpa_tiny",
        "TOKEN = os.environ['HF_TOKEN']",
        "AKIA is a prefix, AKIAshort too",
        "Asia and asian food",
        "commit 5ec2a8ba515f3f0b7b8a0d6d0f8b3e6c1a2b3c4d",
    ],
)
def test_leaves_lookalikes_alone(text):
    assert found(text) == []


def test_stored_secret_values_are_found_and_short_ones_ignored():
    pattern = stored_secrets_pattern(["wandb-7f3a9c21d0e4", "short", "  padded-secret-value  "])
    text = "set WANDB=wandb-7f3a9c21d0e4 and padded-secret-value, not short"
    assert found(text, pattern) == [("secret", "wandb-7f3a9c21d0e4"), ("secret", "padded-secret-value")]
    assert stored_secrets_pattern([]) is None


def test_stored_secret_values_are_found_by_any_pattern_of_them_the_fast_path_included():
    from storage.redaction import secrets_pattern, usable_secrets

    values = ["wandb-7f3a9c21d0e4", "Sup3rS3cretProxyPass"]
    text = "a Sup3rS3cretProxyPass inside, then wandb-7f3a9c21d0e4 at the end"
    expected = [("secret", "Sup3rS3cretProxyPass"), ("secret", "wandb-7f3a9c21d0e4")]
    assert found(text, stored_secrets_pattern(values)) == expected  # substring pre-check, then the pattern
    assert found(text, secrets_pattern(usable_secrets(values))) == expected  # a pattern made elsewhere: no pre-check
    assert found("nothing stored here", stored_secrets_pattern(values)) == []


def with_check_digit(body: str) -> str:
    """`body` and the Luhn check digit that makes it pass."""
    from storage.sensitive_text import luhn_ok

    return next(body + digit for digit in "0123456789" if luhn_ok(body + digit))


@pytest.mark.parametrize(
    ("start", "length", "card"),
    [
        ("4", 13, True),  # Visa
        ("4", 16, True),
        ("4", 19, True),
        ("53", 16, True),  # Mastercard 51-55
        ("2221", 16, True),  # Mastercard 2221-2720
        ("2720", 16, True),
        ("37", 15, True),  # American Express
        ("6011", 16, True),  # Discover
        ("645", 19, True),
        ("36", 14, True),  # Diners Club International
        ("39", 16, True),  # Diners Club (North America)
        ("3530", 16, True),  # JCB
        ("62", 17, True),  # UnionPay
        ("56", 16, False),  # no scheme starts with 56
        ("2721", 16, False),
        ("37", 16, False),  # American Express numbers have 15 digits only
        ("4", 14, False),  # Visa: 13, 16 or 19
        ("36", 16, False),
    ],
)
def test_card_numbers_need_a_scheme_of_their_length(start, length, card):
    number = with_check_digit(start + "1" * (length - len(start) - 1))
    assert found(f"card {number} ok") == ([("credit_card", number)] if card else [])


def test_overlaps_keep_the_stronger_kind():
    # A URL password looks like the local part of an e-mail address: the secret wins.
    assert found("https://bob:hunter2222@host.example.com/") == [("secret", "hunter2222")]


def test_redact_findings_replaces_each_with_its_placeholder():
    text = "Mail a.b@example.com or call 415-555-0132 from 10.1.2.3 with 4111111111111111 and hf_AbCdEfGhIjKlMnOpQrSt"
    assert redact_findings(text, find_sensitive(text)) == (
        "Mail [EMAIL] or call [PHONE] from [IP] with [CARD] and [SECRET]"
    )


def test_offsets_are_python_string_indices_beyond_the_basic_plane():
    text = "😀🎉 naïve e-mail: zoe@example.com 🙂"
    (finding,) = find_sensitive(text)
    assert text[finding.start : finding.end] == "zoe@example.com"


def test_masked_example_never_shows_a_secret_or_a_card():
    text = "my token hf_AbCdEfGhIjKlMnOpQrStUv and card 4111 1111 1111 1111, mail a.b@example.com"
    examples = [masked_example(text, f) for f in find_sensitive(text)]
    joined = " ".join(examples)
    assert "AbCdEfGhIjKlMnOpQrStUv" not in joined
    assert "4111" not in joined
    assert "a.b@example.com" not in joined
    assert "[SECRET]" in examples[0] and "[CARD]" in examples[1]


def test_new_token_shapes_are_masked_in_logs_too():
    masked = redact(f"id AKIAIOSFODNN7EXAMPLE secret aws_secret_access_key={AWS_SECRET} {PRIVATE_KEY}")
    assert "IOSFODNN7EXAMPLE" not in masked and AWS_SECRET not in masked and "MIIEowIBAAKCAQEA7" not in masked


def test_finding_is_a_plain_tuple():
    assert Finding("email", 1, 2) == ("email", 1, 2)


@pytest.mark.parametrize("text", ["4111111111111111", "card 4111111111111111", "paid with\n5555555555554444"])
def test_a_card_in_bare_digits_at_the_end_of_a_text_is_found(text):
    # The end of the text ends the number as a space would (before, "" counted as a dash after it).
    digits = text.split()[-1]
    assert [(f.kind, text[f.start : f.end]) for f in find_sensitive(text)] == [("credit_card", digits)]
