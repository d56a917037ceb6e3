"""storage.api's safe-to-publish scan: what scan_pairs --json lists, stored scans, offsets only, clear errors."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command
from django.db import connection

from storage import api
from storage.exceptions import InvalidInput, NotFound
from storage.models import ScrapedPair

pytestmark = pytest.mark.django_db

TOKEN = "hf_ApiScanStoredTokenAbcdef012345"


@pytest.fixture
def session_id():
    api.set_hf_token(TOKEN)
    session = api.create_scrape_session("reddit", name="to publish")
    api.add_scraped_pairs(
        session,
        [
            {"input": "write to jane.doe@example.com", "output": f"my token is {TOKEN}"},
            {"input": "what is the answer ?", "output": "42 ."},
            {"input": "card 4111 1111 1111 1111", "output": "call +1 415 555 0134"},
        ],
    )
    return session


def pair_ids(session_id: int) -> list[int]:
    return list(ScrapedPair.objects.filter(session_id=session_id).order_by("id").values_list("id", flat=True))


def test_scan_pairs_lists_what_the_command_prints_offsets_only(session_id):
    found = api.scan_pairs([session_id])
    out = io.StringIO()
    call_command("scan_pairs", str(session_id), "--json", stdout=out)
    assert found == json.loads(out.getvalue())["findings"]
    first, _, third = pair_ids(session_id)
    assert {(f["pair_id"], f["side"], f["kind"]) for f in found} == {
        (first, "input", "email"),
        (first, "output", "secret"),
        (third, "input", "credit_card"),
        (third, "output", "phone"),
    }
    secret = next(f for f in found if f["kind"] == "secret")
    assert (secret["start"], secret["end"]) == (len("my token is "), len("my token is ") + len(TOKEN))
    assert TOKEN not in repr(found) and "jane.doe" not in repr(found)
    assert api.get_stored_findings(session_id) is None  # scanning alone stores nothing


def test_a_stored_scan_is_what_get_stored_findings_returns_until_a_pair_changes(session_id):
    assert api.store_scan([session_id]) == [
        {
            "session_id": session_id,
            "pairs_scanned": 3,
            "findings": 4,
            "flagged_pairs": 2,
            "counts": {"email": 1, "phone": 1, "ip": 0, "credit_card": 1, "secret": 1},
        }
    ]
    stored = api.get_stored_findings(session_id)
    assert stored["pairs_scanned"] == 3 and stored["scanned_at"]
    assert stored["findings"] == sorted(
        api.scan_pairs([session_id]), key=lambda f: (f["pair_id"], f["side"], f["start"])
    )
    assert TOKEN not in repr(stored)
    first, _, third = pair_ids(session_id)
    # An edit and a delete in plain SQL, as the desktop app makes them: the stored scan forgets those pairs.
    with connection.cursor() as cursor:
        cursor.execute("UPDATE scraped_pairs SET output_text = 'no token here' WHERE id = %s", [first])
    kinds = [(f["pair_id"], f["kind"]) for f in api.get_stored_findings(session_id)["findings"]]
    assert kinds == [(third, "credit_card"), (third, "phone")]
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM scraped_pairs WHERE id = %s", [third])
    assert api.get_stored_findings(session_id)["findings"] == []


def test_bad_session_ids_get_clear_errors(session_id):
    with pytest.raises(NotFound, match="scrape session 999999 does not exist"):
        api.get_stored_findings(999_999)
    with pytest.raises(NotFound, match="999999"):
        api.scan_pairs([session_id, 999_999])
    with pytest.raises(InvalidInput, match="session_id must be an integer"):
        api.get_stored_findings(str(session_id))
