"""The admin's scan and length profile pages of a session, the findings on a pair's page, redacted downloads."""

from __future__ import annotations

import pytest
from django.urls import reverse

from storage.models import ScrapedPair, ScrapeSession
from storage.services import configs
from storage.services.sessions import add_scraped_pairs
from storage.services.settings import set_setting
from tests.helpers.tokenizers import tiny_tokenizer

pytestmark = pytest.mark.django_db

TOKEN = "hf_StoredInSettingsAbcdef123456"


@pytest.fixture
def session(session_factory):
    session = session_factory(source="reddit", name="flagged")
    add_scraped_pairs(
        session_id=session.pk,
        pairs=[
            {"input": "mail me: jane.doe@example.com", "output": f"my token is {TOKEN}"},
            {"input": "what is the answer ?", "output": "42 ."},
            {"input": "card 4111 1111 1111 1111", "output": "ok"},
        ],
    )
    set_setting(key="huggingface.token", value=TOKEN)
    session.refresh_from_db()
    return session


def url(name: str, session) -> str:
    return reverse(f"admin:storage_scrapesession_{name}", args=[session.pk])


def body_of(response) -> str:
    return b"".join(response.streaming_content).decode()


def test_session_page_links_to_scan_and_profile(admin_client, session):
    page = admin_client.get(url("change", session)).content.decode()
    assert url("scan", session) in page and url("profile", session) in page


def test_scan_page_counts_and_masks(admin_client, session):
    before = admin_client.get(url("scan", session)).content.decode()
    assert "has not been scanned yet" in before and 'value="Scan now"' in before
    scanned = admin_client.post(url("scan", session), {"scan": "Scan now"})
    assert scanned.status_code == 302 and scanned["Location"] == url("scan", session)
    response = admin_client.get(url("scan", session))
    page = response.content.decode()
    assert response.status_code == 200
    assert "<strong>3</strong> findings in <strong>2</strong> pairs" in page
    assert TOKEN not in page and "4111" not in page and "jane.doe@example.com" not in page
    assert "[SECRET]" in page and "[CARD]" in page
    assert "?redact=1" in page and "?drop_flagged=1" in page


def test_redacted_and_unflagged_downloads(admin_client, session):
    base = reverse("admin:storage_scrapesession_export", args=[session.pk, "jsonl"])
    redacted = admin_client.get(base + "?redact=1")
    assert 'filename="session-' in redacted["Content-Disposition"] and ".redacted." in redacted["Content-Disposition"]
    text = body_of(redacted)
    assert TOKEN not in text and "[EMAIL]" in text and "[SECRET]" in text and "[CARD]" in text
    unflagged = body_of(admin_client.get(base + "?drop_flagged=1"))
    assert unflagged == '{"input": "what is the answer ?", "output": "42 ."}\n'
    plain = body_of(admin_client.get(base))
    assert TOKEN in plain  # without asking, the export is the data as stored


def test_pair_page_lists_its_findings_masked(admin_client, session):
    first = ScrapedPair.objects.filter(session=session).order_by("id").first()
    page = admin_client.get(reverse("admin:storage_scrapedpair_change", args=[first.pk])).content.decode()
    assert "email in input (characters 9–29)" in page
    assert "secret in output (characters 12–43)" in page
    clean = ScrapedPair.objects.filter(session=session).order_by("id")[1]
    page = admin_client.get(reverse("admin:storage_scrapedpair_change", args=[clean.pk])).content.decode()
    assert "Nothing found" in page


def test_the_pairs_list_masks_what_it_shows_of_pairs_never_scanned(admin_client, session):
    pairs = reverse("admin:storage_scrapedpair_changelist")
    for query in (f"?session__id__exact={session.pk}", f"?session__id__exact={session.pk}&q=token"):
        page = admin_client.get(pairs + query).content.decode()
        assert TOKEN not in page and "jane.doe@example.com" not in page and "4111 1111" not in page, query
        assert "[SECRET]" in page
    page = admin_client.get(pairs + f"?session__id__exact={session.pk}").content.decode()
    assert "j••••••••••••••••••m" in page and "[CARD]" in page
    assert "what is the answer ?" in page  # a clean pair shows as it is
    assert page.count('class="field-input_preview"') == 3
    # What the page masks by itself flags nothing: the flagged filter lists what a stored scan found.
    flagged = admin_client.get(pairs + f"?session__id__exact={session.pk}&scan=flagged").content.decode()
    assert flagged.count('class="field-input_preview"') == 0


def test_profile_page_estimate_by_default_and_a_new_session(admin_client, session):
    response = admin_client.get(url("profile", session), {"max_seq_length": "5"})
    page = response.content.decode()
    assert response.status_code == 200
    assert "estimate: characters / 4" in page and "tokens (estimated)" in page
    assert page.count('<svg class="ff-chart ff-bars"') == 6
    # ceil(29/4)+ceil(42/4)=19, ceil(20/4)+ceil(4/4)=6, ceil(24/4)+1=7: all three over 5
    assert "<strong>3</strong> of 3 pairs" in page
    created = admin_client.post(url("profile", session), {"max_tokens": "7"})
    derived = ScrapeSession.objects.exclude(pk=session.pk).get()
    assert created.status_code == 302 and created["Location"] == url("change", derived)
    assert derived.pair_count == 2 and derived.metadata["derived_from"] == session.pk
    assert derived.metadata["removed"] == 1


def test_profile_page_exact_with_the_configured_tokenizer_and_a_config(admin_client, session, settings, tmp_path):
    settings.FINEFOUNDRY_TOKENIZER = str(tiny_tokenizer(tmp_path / "tokenizer.json"))
    configs.save_training_config(name="cfg", config={"hp": {"max_seq_len": 6}})
    page = admin_client.get(url("profile", session), {"config": "cfg"}).content.decode()
    assert "exact: tokenizer.json" in page and "estimated" not in page
    # Word tokens: 5+6=11, 5+2=7, 5+1=6: two pairs over 6
    assert "<strong>2</strong> of 3 pairs" in page and "config &#x27;cfg&#x27; (hp.max_seq_len)" in page


def test_profile_page_bad_input_is_a_message_not_an_error(admin_client, session):
    page = admin_client.get(url("profile", session), {"max_seq_length": "0"})
    assert page.status_code == 200 and "greater than or equal to 1" in page.content.decode()
    both = admin_client.get(url("profile", session), {"max_seq_length": "5", "config": "nope"})
    assert both.status_code == 200
    bad_post = admin_client.post(url("profile", session), {"max_tokens": "many"}, follow=True)
    assert "No session created: max_tokens must be a whole number" in bad_post.content.decode()
    assert ScrapeSession.objects.count() == 1


def test_view_only_staff_sees_the_pages_but_cannot_create(client, session, django_user_model):
    from django.contrib.auth.models import Permission

    user = django_user_model.objects.create_user("viewer", password="pw", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_scrapesession"))
    client.force_login(user)
    # Findings point into pairs: without the view permission on pairs the scan page is refused.
    assert client.get(url("scan", session)).status_code == 403
    user.user_permissions.add(Permission.objects.get(codename="view_scrapedpair"))
    user = django_user_model.objects.get(pk=user.pk)  # permissions are cached per user object
    client.force_login(user)
    page = client.get(url("scan", session)).content.decode()
    assert "has not been scanned yet" in page and "Scan now" not in page
    assert client.post(url("scan", session), {"scan": "1"}).status_code == 403
    page = client.get(url("profile", session), {"max_seq_length": "5"}).content.decode()
    assert "Create a new session" not in page
    assert client.post(url("profile", session), {"max_tokens": "7"}).status_code == 403
    assert ScrapeSession.objects.count() == 1


def test_the_edit_form_shows_a_secret_as_a_slot_and_a_save_keeps_or_removes_it(admin_client, session):
    first = ScrapedPair.objects.filter(session=session).order_by("id").first()
    change = reverse("admin:storage_scrapedpair_change", args=[first.pk])
    page = admin_client.get(change).content.decode()
    assert TOKEN not in page and TOKEN[:10] not in page
    assert "my token is ⟦SECRET 1⟧</textarea>" in page
    form = {"session": session.pk, "input_text": first.input_text, "metadata": ""}

    # The slot kept, the text around it edited: the token is still stored, and never went through the page.
    response = admin_client.post(change, {**form, "output_text": "my new token is ⟦SECRET 1⟧ (rotated)"})
    assert response.status_code == 302
    first.refresh_from_db()
    assert first.output_text == f"my new token is {TOKEN} (rotated)"
    # A slot number the form never gave stays as typed; the slot deleted removes the token.
    response = admin_client.post(change, {**form, "output_text": "⟦SECRET 7⟧ was here, no token now"})
    assert response.status_code == 302
    first.refresh_from_db()
    assert first.output_text == "⟦SECRET 7⟧ was here, no token now"


def test_a_text_holding_a_slot_of_its_own_keeps_it_and_its_secret(admin_client, session):
    first = ScrapedPair.objects.filter(session=session).order_by("id").first()
    ScrapedPair.objects.filter(pk=first.pk).update(output_text=f"⟦SECRET 1⟧ is a literal; {TOKEN} is not")
    change = reverse("admin:storage_scrapedpair_change", args=[first.pk])
    page = admin_client.get(change).content.decode()
    assert TOKEN not in page and "⟦SECRET 1⟧ is a literal; ⟦SECRET 2⟧ is not</textarea>" in page
    response = admin_client.post(
        change,
        {
            "session": session.pk,
            "input_text": first.input_text,
            "output_text": "⟦SECRET 1⟧ is a literal; ⟦SECRET 2⟧ is not",
            "metadata": "",
        },
    )
    assert response.status_code == 302
    first.refresh_from_db()
    assert first.output_text == f"⟦SECRET 1⟧ is a literal; {TOKEN} is not"


def test_previews_mask_a_secret_their_end_cuts_short(admin_client, session):
    # The token starts at character 90 of a preview that shows 100: cut there, the scan would not know it.
    first = ScrapedPair.objects.filter(session=session).order_by("id").first()
    ScrapedPair.objects.filter(pk=first.pk).update(output_text="word " * 18 + TOKEN)
    for page_url in (
        reverse("admin:storage_scrapedpair_changelist") + f"?session__id__exact={session.pk}",
        url("change", session),
    ):
        page = admin_client.get(page_url).content.decode()
        assert TOKEN[:8] not in page, page_url
        assert "word word [SECRET]" in page, page_url
