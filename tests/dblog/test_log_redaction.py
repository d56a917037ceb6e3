"""Secrets never reach app_logs: secret setting values and token-shaped strings are masked first."""

from __future__ import annotations

import logging

import pytest
from django.db import connection

from storage import api
from storage.dblog.handler import DatabaseLogHandler
from storage.redaction import REDACTED, redact
from tests.helpers.logs import stored_rows

HF_TOKEN = "hf_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789"
OTHER_HF_TOKEN = "hf_ZyXwVuTsRqPoNmLkJiHgFeDcBa9876543210"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"login with {HF_TOKEN} ok", f"login with hf_{REDACTED} ok"),
        ("RUNPOD_API_KEY=rpa_ABCDEFGHIJKLMNOPQRSTUV123", f"RUNPOD_API_KEY={REDACTED}"),
        ("key rpa_ABCDEFGHIJKLMNOPQRSTUV123 used", f"key rpa_{REDACTED} used"),
        ("openai sk-proj-abcdefghijklmnopqrstuv", f"openai sk-{REDACTED}"),
        ("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.e30.sig", f"Authorization: Bearer {REDACTED}"),
        ("authorization: Basic dXNlcjpwYXNz", f"authorization: Basic {REDACTED}"),
        (
            "headers={'Authorization': 'token ghp_abcdefghijklmnopqrstuvwxyz0123', 'Accept': 'json'}",
            f"headers={{'Authorization': 'token {REDACTED}', 'Accept': 'json'}}",
        ),
        ("curl -H 'x-api-key: abc123secret'", f"curl -H 'x-api-key: {REDACTED}'"),
        ('{"password": "hunter22", "user": "bob"}', f'{{"password": "{REDACTED}", "user": "bob"}}'),
        (
            "GET https://example.com/v1/models?key=AIzaSyD123456&alt=json",
            f"GET https://example.com/v1/models?key={REDACTED}&alt=json",
        ),
        ("push to https://bob:s3cret@hf.co/repo", f"push to https://bob:{REDACTED}@hf.co/repo"),
        # Ordinary fine-tuning talk stays as it is.
        (
            "eos_token: </s>, pad_token=<pad>, max_new_tokens=512",
            "eos_token: </s>, pad_token=<pad>, max_new_tokens=512",
        ),
        ("key metrics: loss 0.31", "key metrics: loss 0.31"),
        ("mail bob@example.com about the sk-learn run", "mail bob@example.com about the sk-learn run"),
        ("", ""),
    ],
)
def test_redact_masks_token_shaped_strings_only(text, expected):
    assert redact(text, secrets=()) == expected


def test_redact_masks_given_secret_values_but_not_short_ones():
    text = "uploaded with plain-secret-value-42 as abc"
    assert redact(text, secrets=["plain-secret-value-42", "abc"]) == f"uploaded with {REDACTED} as abc"


@pytest.mark.django_db(transaction=True)
def test_secrets_are_masked_in_messages_and_tracebacks_before_storing():
    logger = logging.getLogger("tests.redaction")
    handler = DatabaseLogHandler()
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    runpod_key = "plain-runpod-secret-77"  # not token-shaped: only the stored setting gives it away
    try:
        logger.info("before any secret is set")
        assert handler.flush(timeout=30)  # the writer has read (no) secrets already

        api.set_setting("runpod.api_key", runpod_key)
        api.set_setting("huggingface.token", HF_TOKEN)
        logger.info("starting pod with key %s", runpod_key)
        logger.info("request headers: Authorization: Bearer %s", runpod_key)
        logger.warning("token %s rejected", HF_TOKEN)
        logger.warning("a colleague's token %s in a pasted log", OTHER_HF_TOKEN)
        try:
            raise PermissionError(f"upload refused for {HF_TOKEN} / {runpod_key}")
        except PermissionError:
            logger.exception("push_to_hub failed")
        assert handler.flush(timeout=30)
    finally:
        logger.removeHandler(handler)
        handler.close()

    rows = stored_rows(connection.settings_dict["NAME"], logger="tests.redaction")
    assert [row["message"] for row in rows] == [
        "before any secret is set",
        f"starting pod with key {REDACTED}",
        f"request headers: Authorization: Bearer {REDACTED}",
        f"token {REDACTED} rejected",
        f"a colleague's token hf_{REDACTED} in a pasted log",
        "push_to_hub failed",
    ]
    traceback = rows[-1]["exc_info"]
    assert f"PermissionError: upload refused for {REDACTED} / {REDACTED}" in traceback
    stored = repr(rows)
    assert runpod_key not in stored
    assert HF_TOKEN not in stored
    assert HF_TOKEN[3:] not in stored
    assert OTHER_HF_TOKEN[3:] not in stored
