"""profile_session and sessions_without_long_pairs: exact numbers with a tiny tokenizer, a labelled estimate without."""

from __future__ import annotations

import json

import pytest

from storage.exceptions import InvalidInput, NotFound
from storage.models import ScrapedPair, ScrapeSession
from storage.services import configs
from storage.services.length_profile import profile_session, sessions_without_long_pairs
from tests.helpers.datasets import add_pairs_directly, copy_test_database, manage
from tests.helpers.tokenizers import tiny_tokenizer

# Word and punctuation tokens (Whitespace pre-tokenizer): input + output per pair.
PAIRS = [
    ("what is the answer ?", "42 ."),  # 5 + 2 = 7 tokens; 20 + 4 = 24 characters
    ("hello", "world !"),  # 1 + 2 = 3 tokens; 5 + 7 = 12 characters
    ("the answer is what the answer is", "it is 42 , of course , and more"),  # 7 + 9 = 16 tokens
    ("a", "b"),  # 1 + 1 = 2 tokens; 2 characters
]
TOTAL_TOKENS = [7, 3, 16, 2]


@pytest.fixture
def tokenizer(tmp_path):
    return tiny_tokenizer(tmp_path / "tokenizer.json")


@pytest.fixture
def session(session_factory):
    from storage.services.sessions import add_scraped_pairs

    session = session_factory(source="reddit", name="qa")
    add_scraped_pairs(session_id=session.pk, pairs=[{"input": i, "output": o} for i, o in PAIRS])
    return session


@pytest.mark.django_db
def test_exact_token_counts_with_a_tokenizer(session, tokenizer):
    profile = profile_session(session_id=session.pk, tokenizer_path=tokenizer, max_seq_length=6)
    assert profile.exact and "exact: tokenizer.json" in profile.method
    assert profile.pairs == 4
    assert (profile.tokens["total"].smallest, profile.tokens["total"].largest) == (2, 16)
    assert profile.tokens["input"].largest == 7 and profile.tokens["output"].largest == 9
    assert profile.tokens["total"].histogram.counts == [4]  # 2, 3, 7 and 16 are all in 0-16
    assert profile.tokens["total"].histogram.edges == [16]
    assert profile.over == 2 and profile.over_share == 0.5  # 7 and 16 are over 6
    chars = [len(i) + len(o) for i, o in PAIRS]
    assert profile.chars["total"].largest == max(chars) and profile.chars["total"].smallest == 2
    assert profile.chars["total"].histogram.counts == [2, 1, 1]  # 2, 12 | 24 | 64


@pytest.mark.django_db
def test_without_a_tokenizer_the_counts_are_an_estimate_and_say_so(session):
    profile = profile_session(session_id=session.pk, max_seq_length=6)
    assert not profile.exact and profile.method.startswith("estimate: characters / 4")
    # ceil(20/4) + ceil(4/4) = 6: not over; ceil(5/4) + ceil(7/4) = 4
    assert [profile.tokens["total"].smallest, profile.tokens["total"].largest] == [2, 8 + 8]
    assert profile.over == 1


@pytest.mark.django_db
def test_max_seq_length_from_a_saved_config(session):
    configs.save_training_config(name="small", config={"hp": {"base_model": "m", "max_seq_len": 6}})
    configs.save_training_config(name="long name", config={"hp": {"max_seq_length": 10}})
    configs.save_training_config(name="none", config={"hp": {"epochs": 1}})
    assert profile_session(session_id=session.pk, config_name="small").max_seq_length_source == (
        "config 'small' (hp.max_seq_len)"
    )
    assert profile_session(session_id=session.pk, config_name="long name").max_seq_length == 10
    default = profile_session(session_id=session.pk, config_name="none")
    assert default.max_seq_length == 2048 and "trainer default" in default.max_seq_length_source
    with pytest.raises(NotFound, match="training config 'missing' does not exist"):
        profile_session(session_id=session.pk, config_name="missing")
    with pytest.raises(InvalidInput, match="not both"):
        profile_session(session_id=session.pk, config_name="small", max_seq_length=5)


@pytest.mark.django_db
def test_bad_tokenizer_files_are_clear_errors(session, tmp_path):
    with pytest.raises(InvalidInput, match="does not exist"):
        profile_session(session_id=session.pk, tokenizer_path=tmp_path / "nope.json")
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(InvalidInput, match=r"is not a tokenizer\.json"):
        profile_session(session_id=session.pk, tokenizer_path=broken)


@pytest.mark.django_db
def test_a_new_session_without_the_long_pairs(session, tokenizer):
    derived = sessions_without_long_pairs(session_id=session.pk, max_tokens=7, tokenizer_path=tokenizer)
    assert derived.pair_count == 3
    assert list(ScrapedPair.objects.filter(session=derived).values_list("input_text", "output_text")) == [
        PAIRS[0],
        PAIRS[1],
        PAIRS[3],
    ]
    assert derived.metadata == {
        "derived_from": session.pk,
        "filter": "without_long_pairs",
        "max_tokens": 7,
        "tokens": "exact: tokenizer.json (input and output tokens, no special tokens)",
        "removed": 1,
    }
    assert derived.source == "reddit" and derived.name == "qa (≤ 7 tokens)"
    session.refresh_from_db()
    assert session.pair_count == 4  # the source keeps its pairs
    assert ScrapeSession.objects.get(pk=derived.pk).pair_count == ScrapedPair.objects.filter(session=derived).count()


@pytest.mark.django_db(transaction=True)
def test_command_json_and_new_session(tmp_path, tokenizer):
    db = copy_test_database(tmp_path / "profile.db")
    session_id = add_pairs_directly(db, PAIRS, source="reddit")
    result = manage(
        db,
        "profile_session",
        str(session_id),
        "--tokenizer",
        str(tokenizer),
        "--max-seq-length",
        "6",
        "--json",
        "--new-session-without-long-pairs",
        text=True,
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["tokens_exact"] is True
    assert data["over_max_seq_length"] == 2 and data["over_share"] == 0.5
    assert data["tokens"]["total"]["max"] == 16 and data["tokens"]["total"]["histogram"] == [{"up_to": 16, "pairs": 4}]
    assert data["new_session"]["pair_count"] == 2
    estimate = manage(db, "profile_session", str(session_id), "--max-seq-length", "6", text=True)
    assert estimate.returncode == 0, estimate.stderr
    assert "Tokens: estimate: characters / 4" in estimate.stdout
    assert "tokens (estimated):" in estimate.stdout
    assert "1 of 4 pairs (25.00%) are over max_seq_length 6 (given) (estimated tokens)." in estimate.stdout
    bad = manage(db, "profile_session", str(session_id), "--new-session-without-long-pairs", text=True)
    assert bad.returncode == 1 and "needs --max-seq-length or --config" in bad.stderr
    missing = manage(db, "profile_session", "999", text=True)
    assert missing.returncode == 1 and "scrape session 999 does not exist" in missing.stderr
