"""Stored scan findings: offsets only, a session's replaced whole, an edited pair's forgotten, a deleted pair's pruned."""

from __future__ import annotations

import io
import sqlite3

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

from storage.models import ScanFinding, ScrapedPair, SessionScan
from storage.services import pair_edits, scan_findings
from storage.services.scan import scan_sessions
from storage.services.scan_findings import flagged_pairs, scan_and_store, session_findings
from storage.services.sessions import add_scraped_pairs

TOKEN = "hf_PlantedTokenAbcdefGhijklmn0123"
EMAIL = "jane.doe@example.com"


def make_session(session_factory, pairs: list[tuple[str, str]], name: str = "scraped"):
    session = session_factory(source="reddit", name=name)
    add_scraped_pairs(session_id=session.pk, pairs=[{"input": i, "output": o} for i, o in pairs])
    session.refresh_from_db()
    return session, list(ScrapedPair.objects.filter(session=session).order_by("id").values_list("id", flat=True))


def stored(session_id: int | None = None) -> set[tuple]:
    findings = scan_findings.current_findings()
    if session_id is not None:
        findings = findings.filter(scan_id__in=SessionScan.objects.filter(session_id=session_id).values("pk"))
    return set(findings.values_list("pair_id", "side", "kind", "start", "end"))


def every_stored_value() -> str:
    """Every column of every row of the two tables, as text."""
    with connection.cursor() as cursor:
        rows = []
        for table in ("storage_scan_findings", "storage_scans"):
            cursor.execute(f"SELECT * FROM {table}")
            rows.extend(cursor.fetchall())
    return repr(rows)


@pytest.fixture
def planted(session_factory):
    return make_session(
        session_factory,
        [
            (f"mail me at {EMAIL}", f"my token is {TOKEN}, is that bad?"),
            ("what is the answer?", "42."),
            ("card 4111 1111 1111 1111", "ok"),
        ],
    )


@pytest.mark.django_db
def test_a_scan_stores_what_scan_pairs_finds_as_offsets_never_the_text(planted):
    session, (flagged, clean, card) = planted
    [result] = scan_and_store(session_ids=[session.pk])
    expected = {(f.pair_id, f.side, f.kind, f.start, f.end) for f in scan_sessions(session_ids=[session.pk]).findings}
    assert stored() == expected and len(expected) == 3
    assert (result.pairs_scanned, result.findings, result.flagged_pairs) == (3, 3, 2)
    assert result.counts == {"email": 1, "phone": 0, "ip": 0, "credit_card": 1, "secret": 1}
    scan = SessionScan.objects.get()
    assert scan.status == "current" and scan.scanned_at is not None
    assert all(f.scanned_at <= scan.scanned_at for f in ScanFinding.objects.all())
    dump = every_stored_value()
    assert TOKEN not in dump and TOKEN[3:15] not in dump and EMAIL not in dump and "4111" not in dump
    summary = session_findings(session_id=session.pk)
    assert summary.counts["secret"] == 1 and summary.flagged_pairs == 2
    excerpts = " ".join(e.excerpt for examples in summary.examples.values() for e in examples)
    assert "[SECRET]" in excerpts and "[CARD]" in excerpts and TOKEN not in excerpts and EMAIL not in excerpts
    assert set(flagged_pairs(ScrapedPair.objects.all()).values_list("pk", flat=True)) == {flagged, card}
    assert set(flagged_pairs(ScrapedPair.objects.all(), kind="secret").values_list("pk", flat=True)) == {flagged}
    assert set(flagged_pairs(ScrapedPair.objects.all(), flagged=False).values_list("pk", flat=True)) == {clean}


@pytest.mark.django_db
def test_a_new_scan_replaces_the_sessions_findings_and_leaves_other_sessions_alone(planted, session_factory):
    session, (flagged, _clean, card) = planted
    other, (_other_pair,) = make_session(session_factory, [(f"write to {EMAIL}", "sure")], name="other")
    scan_and_store(session_ids=[session.pk, other.pk])
    first = SessionScan.objects.get(session_id=session.pk)
    other_before = stored(other.pk)
    # Between scans: the card pair goes (deleted by plain SQL), a new flagged pair comes.
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM scraped_pairs WHERE id = %s", [card])
    add_scraped_pairs(session_id=session.pk, pairs=[{"input": "ssh to 10.0.0.7 please", "output": "done"}])
    new = ScrapedPair.objects.filter(session=session).order_by("-id").first().pk
    scan_and_store(session_ids=[session.pk])
    assert SessionScan.objects.filter(session_id=session.pk).get().pk != first.pk  # the old scan row is gone
    assert not ScanFinding.objects.filter(scan_id=first.pk).exists()
    assert {(p, k) for p, _, k, _, _ in stored(session.pk)} == {(flagged, "email"), (flagged, "secret"), (new, "ip")}
    assert stored(other.pk) == other_before


@pytest.mark.django_db
def test_an_edited_pair_loses_its_findings_whoever_edits_it(planted):
    session, (flagged, _clean, card) = planted
    scan_and_store(session_ids=[session.pk])
    pair = ScrapedPair.objects.get(pk=flagged)
    pair.output_text = "my token is revoked now"
    pair_edits.save_pair(pair, previous_session_id=pair.session_id)  # the admin's and the reader's edit
    with connection.cursor() as cursor:  # the desktop app's own UPDATE
        cursor.execute("UPDATE scraped_pairs SET input_text = %s WHERE id = %s", ["card 4111 1111 1111 1112", card])
    assert stored() == set()
    assert session_findings(session_id=session.pk).flagged_pairs == 0
    assert not flagged_pairs(ScrapedPair.objects.all()).exists()
    # An update that leaves the texts as they were keeps them.
    scan_and_store(session_ids=[session.pk])
    before = stored()
    with connection.cursor() as cursor:
        cursor.execute("UPDATE scraped_pairs SET source_url = %s WHERE id = %s", ["https://example.org", flagged])
    assert stored() == before and before


@pytest.mark.django_db
def test_a_pair_moved_to_another_session_leaves_its_old_sessions_scan(planted, session_factory):
    session, (flagged, _clean, card) = planted
    other, _ = make_session(session_factory, [("nothing to see", "here")], name="other")
    scan_and_store(session_ids=[session.pk, other.pk])
    pair = ScrapedPair.objects.get(pk=flagged)
    pair.session_id = other.pk
    pair_edits.save_pair(pair, previous_session_id=session.pk)  # the admin's session field
    # The old session's scan no longer counts it, and nothing flags it in its new, scanned-before session.
    assert session_findings(session_id=session.pk).flagged_pairs == 1
    assert {(p, k) for p, _, k, _, _ in stored()} == {(card, "credit_card")}
    assert not flagged_pairs(ScrapedPair.objects.filter(session_id=other.pk)).exists()
    scan_and_store(session_ids=[other.pk])  # its new session's scan flags it again
    assert {k for p, _, k, _, _ in stored(other.pk) if p == flagged} == {"email", "secret"}
    with connection.cursor() as cursor:  # the same for a move in plain SQL
        cursor.execute("UPDATE scraped_pairs SET session_id = %s WHERE id = %s", [other.pk, card])
    assert {(p, k) for p, _, k, _, _ in stored()} == {(flagged, "email"), (flagged, "secret")}


@pytest.mark.django_db
def test_a_pair_edited_while_the_scan_ran_is_stored_as_it_is_at_the_write(planted):
    session, (flagged, _clean, card) = planted
    scan = SessionScan.objects.create(session_id=session.pk, started_at=timezone.now())
    # The scan read the pairs flagged and card; before its write, one was cleaned and one got a new secret.
    ScrapedPair.objects.filter(pk=card).update(input_text="card removed")
    ScrapedPair.objects.filter(pk=flagged).update(output_text=f"new key {TOKEN}")
    counts, pairs = scan_findings._write_findings(scan, [flagged, card])
    rows = set(ScanFinding.objects.filter(scan_id=scan.pk).values_list("pair_id", "side", "kind", "start", "end"))
    assert rows == {(flagged, "input", "email", 11, 31), (flagged, "output", "secret", 8, 8 + len(TOKEN))}
    assert pairs == 1 and counts == {"email": 1, "secret": 1}


@pytest.mark.sqlite_only("the desktop app's plain sqlite3 writer on the real database file")
@pytest.mark.django_db(transaction=True)
def test_the_desktop_apps_own_update_on_the_file_forgets_the_findings(planted):
    session, (flagged, _clean, card) = planted
    scan_and_store(session_ids=[session.pk])
    desktop = sqlite3.connect(connection.settings_dict["NAME"], timeout=5)
    try:
        desktop.execute("UPDATE scraped_pairs SET output_text = 'nothing here' WHERE id = ?", (flagged,))
        desktop.commit()
    finally:
        desktop.close()
    # Both sides' findings go: the offsets were of the old texts.
    assert {(p, k) for p, _, k, _, _ in stored()} == {(card, "credit_card")}


def doctor(*args) -> str:
    """doctor's output, with "EXIT 1" appended when it fails (found a problem it did not fix)."""
    out = io.StringIO()
    try:
        call_command("doctor", "--check", "scan-findings", *args, stdout=out)
    except CommandError as exc:
        out.write(f"\nEXIT {exc.returncode}")
    return out.getvalue()


@pytest.mark.django_db
def test_findings_of_deleted_pairs_are_skipped_and_pruned_by_doctor(planted):
    session, (flagged, _clean, card) = planted
    scan_and_store(session_ids=[session.pk])
    with connection.cursor() as cursor:  # the desktop app deletes with its own SQL: nothing cascades to ours
        cursor.execute("DELETE FROM scraped_pairs WHERE id = %s", [card])
    assert session_findings(session_id=session.pk).counts["credit_card"] == 0
    assert set(flagged_pairs(ScrapedPair.objects.all()).values_list("pk", flat=True)) == {flagged}
    assert scan_findings.orphan_count() == 1
    report = doctor()
    assert "1 stored scan findings belong to deleted pairs or to replaced scans" in report and "EXIT" in report
    assert "(fixed: pruned them)" in doctor("--fix")
    assert scan_findings.orphan_count() == 0 and ScanFinding.objects.filter(pair_id=card).count() == 0
    assert "EXIT" not in doctor()


@pytest.mark.django_db
def test_an_abandoned_scan_is_invisible_and_pruned(planted):
    import datetime as dt

    session, (_flagged, clean, _card) = planted
    scan_and_store(session_ids=[session.pk])
    current = stored()
    # A scan killed half way: its row stays `writing` with some findings.
    dead = SessionScan.objects.create(session_id=session.pk, started_at=timezone.now() - dt.timedelta(hours=2))
    ScanFinding.objects.create(
        scan_id=dead.pk, pair_id=clean, side="input", kind="email", start=0, end=5, scanned_at=timezone.now()
    )
    assert stored() == current  # readers use current scans only
    assert not flagged_pairs(ScrapedPair.objects.filter(pk=clean)).exists()
    assert scan_findings.orphan_count() == 1
    scan_findings.prune_orphans()
    assert not SessionScan.objects.filter(pk=dead.pk).exists() and stored() == current


@pytest.mark.django_db
def test_examples_never_show_a_stored_secret_setting_beside_another_finding(session_factory):
    from storage.services.settings import set_setting

    stored_secret = "correcthorsebatterystaple99"  # the desktop app's value: no token shape at all
    set_setting(key="huggingface.token", value=stored_secret)
    session, _ = make_session(session_factory, [(f"mail {EMAIL} key {stored_secret}", "ok")])
    scan_and_store(session_ids=[session.pk])
    summary = session_findings(session_id=session.pk)
    assert summary.counts["email"] == 1 and summary.counts["secret"] == 1
    excerpts = [e.excerpt for examples in summary.examples.values() for e in examples]
    assert excerpts and all("horse" not in e and EMAIL not in e for e in excerpts), excerpts
    assert stored_secret not in every_stored_value()
