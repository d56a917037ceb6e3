"""The pair reader, search snippets and the pairs list's filters, through the test client."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from storage.admin.pair_filters import url_domain
from storage.admin.pairs import SEARCH_COUNT_CAP
from storage.models import ScrapedPair
from storage.services import sessions as sessions_service

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:storage_scrapedpair_changelist")
ROW_RE = re.compile(r'name="_selected_action" value="(\d+)"')


def read_url(pair_id: int) -> str:
    return reverse("admin:storage_scrapedpair_read", args=(pair_id,))


def add(session, *pairs: dict) -> list[ScrapedPair]:
    sessions_service.add_scraped_pairs(session_id=session.pk, pairs=list(pairs))
    return list(ScrapedPair.objects.filter(session=session).order_by("id"))[-len(pairs) :]


def rows(client, params: dict) -> list[int]:
    response = client.get(CHANGELIST, params)
    assert response.status_code == 200, response.content[:500]
    return [int(pk) for pk in ROW_RE.findall(response.content.decode())]


def nav(page) -> tuple[str | None, str | None]:
    return page.context["previous_url"], page.context["next_url"]


@pytest.fixture
def viewer(client, django_user_model):
    user = django_user_model.objects.create_user("viewer", password="pw", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__startswith="view_"))
    client.force_login(user)
    return client


# The reader --------------------------------------------------------------------------------------


def test_texts_are_escaped_never_rendered(admin_client, session_factory):
    (pair,) = add(
        session_factory(name="<b>s</b>"),
        {
            "input": "<script>alert(1)</script>\n<img src=x onerror=alert(2)>",
            "output": "```html\n<script>x()</script>\n```",
        },
    )
    body = admin_client.get(read_url(pair.pk)).content.decode()
    assert "<script>alert(1)" not in body and "<img src=x" not in body and "<script>x()" not in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body
    assert '<code class="language-html">&lt;script&gt;x()&lt;/script&gt;</code>' in body
    assert "<b>s</b>" not in body


def test_line_breaks_code_blocks_and_rtl_text(admin_client, session_factory):
    text = "مرحبا بالعالم\nسطر ثان"
    output = "Try this:\n```python\ndef f(x):\n    return x * 2\n```\nDone.\n\n   ```\nplain\n   ```"
    (pair,) = add(session_factory(), {"input": text, "output": output})
    body = admin_client.get(read_url(pair.pk)).content.decode()
    assert f'<div class="ff-prose" dir="rtl">{text}</div>' in body
    assert '<figcaption class="ff-code-lang">python</figcaption>' in body
    assert (
        '<pre class="ff-code-block" dir="ltr"><code class="language-python">def f(x):\n    return x * 2</code></pre>'
        in body
    )
    assert '<div class="ff-prose" dir="auto">Try this:</div>' in body
    assert '<div class="ff-prose" dir="auto">Done.\n</div>' in body
    assert '<pre class="ff-code-block" dir="ltr"><code>plain</code></pre>' in body
    # Right-to-left text that starts with a Latin word is still laid out right to left; mixed text is left to the browser.
    (mixed,) = add(
        session_factory(), {"input": "LoRA هي طريقة لضبط النماذج بكفاءة", "output": "LoRA is a method (طريقة)"}
    )
    body = admin_client.get(read_url(mixed.pk)).content.decode()
    assert '<div class="ff-prose" dir="rtl">LoRA هي' in body and '<div class="ff-prose" dir="auto">LoRA is' in body
    # An unclosed fence is text.
    (open_fence,) = add(session_factory(), {"input": "```python\nno end", "output": "x"})
    assert "```python\nno end</div>" in admin_client.get(read_url(open_fence.pk)).content.decode()


def test_next_and_previous_follow_the_list_newest_first(admin_client, session_factory):
    pairs = add(session_factory(), *({"input": f"q{i}", "output": f"a{i}"} for i in range(3)))
    first, middle, last = (p.pk for p in pairs)
    assert nav(admin_client.get(read_url(last))) == (None, read_url(middle))
    assert nav(admin_client.get(read_url(middle))) == (read_url(last), read_url(first))
    assert nav(admin_client.get(read_url(first))) == (read_url(middle), None)


def test_next_and_previous_stay_within_a_search_and_a_session(admin_client, session_factory):
    one, other = session_factory(), session_factory()
    a = add(one, {"input": "LoRA rank", "output": "8"}, {"input": "unrelated", "output": "x"})
    b = add(other, {"input": "lora alpha", "output": "16"})
    c = add(one, {"input": "q", "output": "a LORA answer"}, {"input": "more", "output": "y"})
    matching = [c[0].pk, b[0].pk, a[0].pk]  # newest first, every pair with "lora"
    query = "q=lora"
    page = admin_client.get(read_url(matching[1]), {"q": "lora"})
    assert nav(page) == (f"{read_url(matching[0])}?{query}", f"{read_url(matching[2])}?{query}")
    # With the session filter too, the other session's pair is skipped.
    page = admin_client.get(read_url(c[0].pk), {"q": "lora", "session__id__exact": one.pk})
    assert page.context["next_url"] == f"{read_url(a[0].pk)}?q=lora&session__id__exact={one.pk}"
    assert page.context["previous_url"] is None
    # The same as the list shows.
    assert rows(admin_client, {"q": "lora"}) == matching


def test_the_reader_never_counts_the_list(admin_client, session_factory):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    (pair,) = add(session_factory(), {"input": "lora", "output": "a"})
    with CaptureQueriesContext(connection) as queries:
        assert admin_client.get(read_url(pair.pk), {"q": "lora"}).status_code == 200
    # The list's capped count (a subquery cut at SEARCH_COUNT_CAP) is what a search page spends most on.
    assert not [q["sql"] for q in queries.captured_queries if f"LIMIT {SEARCH_COUNT_CAP}" in q["sql"]]
    # The list page itself does count that way, so the pattern above is the right one to look for.
    with CaptureQueriesContext(connection) as queries:
        admin_client.get(CHANGELIST, {"q": "lora"})
    assert [q["sql"] for q in queries.captured_queries if f"LIMIT {SEARCH_COUNT_CAP}" in q["sql"]]


def test_the_reader_refuses_filters_the_list_refuses(admin_client, session_factory):
    (pair,) = add(session_factory(), {"input": "q", "output": "a"})
    assert admin_client.get(read_url(pair.pk), {"input_text__startswith": "q"}).status_code == 400
    assert admin_client.get(read_url(pair.pk), {"session__id__exact": "abc"}).status_code == 400
    assert admin_client.get(read_url(pair.pk + 1000)).status_code == 404


def test_edit_in_place_saves_and_keeps_the_filters(admin_client, session_factory):
    session = session_factory()
    (pair,) = add(session, {"input": "old question", "output": "old answer"})
    url = f"{read_url(pair.pk)}?q=old"
    response = admin_client.post(url, {"input_text": "new question", "output_text": "new\nanswer"})
    assert response.status_code == 302 and response["Location"] == url
    pair.refresh_from_db()
    assert (pair.input_text, pair.output_text) == ("new question", "new\nanswer")
    session.refresh_from_db()
    assert session.pair_count == 1
    from django.contrib.admin.models import LogEntry

    assert LogEntry.objects.get(object_id=str(pair.pk)).get_change_message() == "Changed Input text and Output text."


def test_line_breaks_sent_as_crlf_by_browsers_keep_the_stored_line_endings(admin_client, session_factory):
    session = session_factory()
    unix, windows = add(session, {"input": "a\nb", "output": "c"}, {"input": "a\r\nb", "output": "c"})
    for pair in (unix, windows):
        admin_client.post(read_url(pair.pk), {"input_text": "a\r\nb\r\nz", "output_text": "c\r\nd"})
    unix.refresh_from_db()
    windows.refresh_from_db()
    assert (unix.input_text, unix.output_text) == ("a\nb\nz", "c\nd")
    assert windows.input_text == "a\r\nb\r\nz"
    # The full change form does the same.
    change = reverse("admin:storage_scrapedpair_change", args=(unix.pk,))
    data = {"session": session.pk, "input_text": "x\r\ny", "output_text": "z", "source_url": "", "metadata": ""}
    assert admin_client.post(change, data).status_code == 302
    unix.refresh_from_db()
    assert unix.input_text == "x\ny"


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({"input_text": "", "output_text": "x"}, "This field is required."),
        ({"input_text": "a\x00b", "output_text": "x"}, "Null characters are not allowed."),
        ({"input_text": "x" * 1_000_001, "output_text": "x"}, "1,000,000"),
    ],
)
def test_edit_in_place_shows_validation_errors_and_changes_nothing(admin_client, session_factory, data, error):
    (pair,) = add(session_factory(), {"input": "kept", "output": "kept too"})
    page = admin_client.post(read_url(pair.pk), data)
    assert page.status_code == 200
    assert error in page.content.decode()
    assert page.context["editing"] is True
    pair.refresh_from_db()
    assert (pair.input_text, pair.output_text) == ("kept", "kept too")


def test_a_view_only_user_reads_but_cannot_edit(viewer, session_factory):
    (pair,) = add(session_factory(), {"input": "q", "output": "a"})
    page = viewer.get(read_url(pair.pk))
    assert page.status_code == 200
    body = page.content.decode()
    assert 'id="ff-edit"' not in body and "<textarea" not in body and "edit this pair" not in body
    assert viewer.post(read_url(pair.pk), {"input_text": "x", "output_text": "y"}).status_code == 403
    pair.refresh_from_db()
    assert pair.input_text == "q"


def test_read_links_from_the_list_and_the_change_page(admin_client, session_factory):
    session = session_factory()
    (pair,) = add(session, {"input": "q", "output": "a"})
    body = admin_client.get(CHANGELIST, {"q": "q", "session__id__exact": session.pk, "p": "1"}).content.decode()
    assert f'href="{read_url(pair.pk)}?q=q&amp;session__id__exact={session.pk}"' in body
    change = reverse("admin:storage_scrapedpair_change", args=(pair.pk,))
    filters = f"q%3Dq%26session__id__exact%3D{session.pk}"
    body = admin_client.get(f"{change}?_changelist_filters={filters}").content.decode()
    assert f'href="{read_url(pair.pk)}?q=q&amp;session__id__exact={session.pk}"' in body
    # Sized text boxes with the reader script (the monospace switch).
    assert 'class="ff-pair-text"' in body and 'rows="18"' in body and "storage/reader.js" in body


# Snippets ----------------------------------------------------------------------------------------


def match_cells(client, q: str) -> list[str]:
    body = client.get(CHANGELIST, {"q": q}).content.decode()
    return re.findall(r'<td class="field-match">(.*?)</td>', body, re.S)


def test_a_search_shows_where_it_matched_with_the_terms_marked(admin_client, session_factory):
    filler = "word " * 30
    add(session_factory(), {"input": "q", "output": f"{filler}Use a LoRA Rank of 8 <b>bold</b> {filler}"})
    (cell,) = match_cells(admin_client, "lora rank")
    assert cell.startswith('<span class="ff-snippet"><span class="ff-muted">output:</span> <bdi>…')
    assert "<mark>LoRA</mark> <mark>Rank</mark> of 8 &lt;b&gt;bold&lt;/b&gt;" in cell
    assert cell.endswith("…</bdi></span>")
    (cell,) = match_cells(admin_client, '"a lora rank"')
    assert "<mark>a LoRA Rank</mark>" in cell


def test_a_snippet_escapes_the_text_and_the_terms(admin_client, session_factory):
    add(session_factory(), {"input": "x <script>alert(1)</script> & y", "output": "z"})
    (cell,) = match_cells(admin_client, "<script>")
    assert "<mark>&lt;script&gt;</mark>alert(1)&lt;/script&gt; &amp; y" in cell
    assert "<script>" not in cell


def test_a_match_past_the_snippet_window_says_so(admin_client, session_factory):
    add(session_factory(), {"input": "a" * 1500 + " needle", "output": "z"})
    (cell,) = match_cells(admin_client, "needle")
    assert "matched past the first 1,000 characters" in cell


def test_the_search_says_how_terms_combine(admin_client, session_factory):
    body = admin_client.get(CHANGELIST).content.decode()
    assert "contains every term" in body and "quoted phrase" in body and "OR, -word and * are not operators" in body
    add(session_factory(), {"input": "this OR that", "output": "z"}, {"input": "this", "output": "that"})
    assert len(rows(admin_client, {"q": "OR"})) == 1


# Filters -----------------------------------------------------------------------------------------


@pytest.fixture
def varied(session_factory):
    session = session_factory()
    sessions_service.add_scraped_pairs(
        session_id=session.pk,
        pairs=[
            {"input": "s" * 10, "output": "o" * 3000, "source_url": "https://www.reddit.com/r/x?token=abc"},
            {"input": "m" * 500, "output": "o", "source_url": "http://old.reddit.com:8080/y", "tag": "x"},
            {"input": "l" * 2500, "output": "o" * 200, "source_url": "https://notreddit.com/z"},
            {"input": "s", "output": "o" * 2000, "source_url": "ftp://reddit.com/z", "score": 3},
            {"input": "s" * 199, "output": "o", "source_url": None},
            {"input": "m" * 200, "output": "o", "source_url": "https://user@Example.ORG/"},
        ],
    )
    return list(ScrapedPair.objects.order_by("-id"))


def length_class(n: int) -> str:
    return "short" if n < 200 else "long" if n > 2000 else "medium"


@pytest.mark.parametrize("value", ["short", "medium", "long"])
@pytest.mark.parametrize(("param", "side"), [("input_length", "input_text"), ("output_length", "output_text")])
def test_length_filters_select_what_the_text_lengths_say(admin_client, varied, param, side, value):
    expected = [p.pk for p in varied if length_class(len(getattr(p, side))) == value]
    assert rows(admin_client, {param: value}) == expected


@pytest.mark.parametrize("value", ["yes", "no"])
def test_the_metadata_filter(admin_client, varied, value):
    expected = [p.pk for p in varied if bool(p.metadata) == (value == "yes")]
    assert expected and rows(admin_client, {"has_metadata": value}) == expected


@pytest.mark.parametrize("domain", ["reddit.com", "old.reddit.com", "example.org", "www.reddit.com", "notreddit.com"])
def test_the_domain_filter_matches_the_host_and_its_subdomains(admin_client, varied, domain):
    wanted = domain.removeprefix("www.")
    hosts = {p.pk: urlsplit(p.source_url or "").hostname for p in varied}
    expected = [
        p.pk
        for p in varied
        if url_domain(p.source_url) and (hosts[p.pk] == wanted or hosts[p.pk].endswith("." + wanted))
    ]
    assert expected and rows(admin_client, {"domain": domain}) == expected


def test_the_domain_filter_offers_the_common_domains_and_refuses_non_hosts(admin_client, varied):
    page = admin_client.get(CHANGELIST).content.decode()
    assert "?domain=reddit.com" in page and "?domain=example.org" in page
    # Only a host name: nothing about the rest of the URL (where a token may sit) can be asked.
    for bad in ("reddit.com/r", "a b", "token=abc", "%", "reddit.com?token"):
        response = admin_client.get(CHANGELIST, {"domain": bad})
        assert (response.status_code, response["Location"]) == (302, f"{CHANGELIST}?e=1")


def test_filters_combine_with_search_and_session(admin_client, varied):
    expected = [p.pk for p in varied if len(p.input_text) < 200 and "s" in p.input_text.lower()]
    assert (
        rows(admin_client, {"input_length": "short", "q": "s", "session__id__exact": varied[0].session_id}) == expected
    )


def test_the_session_filter_has_an_id_box_that_keeps_the_other_parameters(admin_client, varied):
    body = admin_client.get(CHANGELIST, {"q": "s", "input_length": "short"}).content.decode()
    form = body.split('class="ff-filter-form"')[1].split("</form>")[0]
    assert 'name="session__id__exact"' in form and 'list="ff-session-choices"' in form
    assert '<input type="hidden" name="input_length" value="short">' in form
    assert '<input type="hidden" name="q" value="s">' in form
    assert f'<option value="{varied[0].session_id}">' in body
