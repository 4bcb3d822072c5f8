"""``ner_mask``: free text masked inside. Pure functions and plans over catalogs built by hand; the load on real
servers is in ``test_free_text_target.py``."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from repro_pipeline.engine.config import load_config
from repro_pipeline.engine.errors import ConfigError
from repro_pipeline.engine.masking import values
from repro_pipeline.engine.masking.autodetect import is_card_number, pii_in_text
from repro_pipeline.engine.masking.free_text import (
    NULLED,
    DictionaryEntries,
    FreeTextDictionary,
    fold,
    free_text_masker,
)
from repro_pipeline.engine.masking.plan import MaskPlan, build_mask_plan
from repro_pipeline.engine.secrets import Secret
from repro_pipeline_tests.engine.masking.test_masking import _catalog, _masker, _table

SALT = Secret("s" * 32)
DICTIONARY = FreeTextDictionary(
    (
        ("Jane Doe", "Kayla Brooks"),
        ("Jane", "Kayla"),
        ("jane@acme.com", "kayla.brooks12+abc@example.org"),
        ("Ann", "Zoe"),
    ),
    ("public.users.full_name", "public.users.email", "public.users.first_name"),
)
TICKETS = _table(
    "public.tickets",
    {"note": "text", "summary": "character varying(200)", "ref": "text", "payload": "jsonb"},
    unique=(("ref",),),
)


def _masked(text: str | None, dictionary: FreeTextDictionary = DICTIONARY) -> str | None:
    return free_text_masker(dictionary, SALT)(text)


def test_originals_become_their_columns_values_case_insensitively_at_word_boundaries() -> None:
    assert _masked("Escalated for JANE DOE (jane@acme.com): refund pending.") == (
        "Escalated for Kayla Brooks (kayla.brooks12+abc@example.org): refund pending."
    )
    # The longest original wins where they overlap; "Ann" is not replaced inside "Annual" or "Joanna".
    assert _masked("Jane called; Jane Doe's Annual plan, per Joanna and Ann.") == (
        "Kayla called; Kayla Brooks's Annual plan, per Joanna and Zoe."
    )


def test_emails_phones_ip_addresses_and_card_numbers_become_deterministic_fakes_of_their_kind() -> None:
    text = "Mail bob@other.io or call +1 415 555 2671 from 81.2.69.160, card 4111 1111 1111 1111."
    masked = _masked(text)
    assert masked == _masked(text)  # deterministic
    assert masked is not None
    for original in ("bob@other.io", "+1 415 555 2671", "81.2.69.160", "4111 1111 1111 1111"):
        assert original not in masked
    email = values.fake(SALT, "ner_mask:email", "email", {})("bob@other.io")
    ip = values.fake(SALT, "ner_mask:ip_address", "ip_address", {})("81.2.69.160")
    card = values.fake(SALT, "ner_mask:credit_card", "credit_card", {})("4111 1111 1111 1111")
    phone = values.fake(SALT, "ner_mask:phone", "phone", {})("+1 415 555 2671")
    assert masked == f"Mail {email} or call {phone} from {ip}, card {card}."
    assert card is not None and is_card_number(card)
    # Another salt, other fakes.
    assert free_text_masker(DICTIONARY, Secret("t" * 32))(text) != masked


def test_the_texts_own_spelling_picks_its_replacement_else_the_first_read() -> None:
    """Fakes are seeded case-preserving: the users table's ``Jane@Acme.com`` and a payload's ``jane@acme.com``
    have fakes of their own, and a note names the one it spells."""
    dictionary = FreeTextDictionary(
        (("Jane@Acme.com", "users.fake@example.org"), ("jane@acme.com", "payload.fake@example.org")), ()
    )
    masked = free_text_masker(dictionary, SALT)
    assert masked("to Jane@Acme.com") == "to users.fake@example.org"
    assert masked("to jane@acme.com") == "to payload.fake@example.org"
    assert masked("to JANE@ACME.COM") == "to users.fake@example.org"


def test_a_dictionary_fake_is_not_faked_again_by_the_patterns() -> None:
    assert _masked("Contact jane@acme.com") == "Contact kayla.brooks12+abc@example.org"


def test_text_without_pii_null_and_empty_stay_as_they_are() -> None:
    assert _masked("Refund pending review (invoice 4242).") == "Refund pending review (invoice 4242)."
    assert _masked(None) is None
    assert _masked("") == ""
    assert free_text_masker(FreeTextDictionary(), SALT)("Jane Doe") == "Jane Doe"


def test_pii_in_text_finds_each_kind_once_and_never_a_version_number_or_a_plain_id() -> None:
    text = "card 4242-4242-4242-4242, ip 10.0.0.7, v1.2.3, order 123456789, x@y.example, (415) 555-2671"
    kinds = [(kind, text[start:end]) for kind, start, end in pii_in_text(text)]
    assert kinds == [
        ("credit_card", "4242-4242-4242-4242"),
        ("ip_address", "10.0.0.7"),
        ("email", "x@y.example"),
        ("phone", "(415) 555-2671"),
    ]
    assert pii_in_text("999.1.1.1 and 1234 5678 9012 3456") == []  # no address; not Luhn-valid


def test_the_dictionary_leaves_out_short_originals_and_bare_numbers_keeps_each_spelling_and_is_bounded() -> (
    None
):
    entries = DictionaryEntries(limit=2)
    entries.add("public.users.full_name", "Jane Doe", "Kayla Brooks")
    entries.add("public.users.initials", "JD", "KB")
    entries.add("public.payment_methods.last_four", "4242", "9999")
    entries.add("public.accounts.owner", "JANE DOE", "Other Fake")
    entries.add("public.users.phone", "+1 415 555 2671", None)
    entries.add("public.users.email", "jane@acme.com", "k@example.org")
    dictionary = entries.dictionary()
    assert dictionary.replacements == (
        ("Jane Doe", "Kayla Brooks"),
        ("JANE DOE", "Other Fake"),
        ("+1 415 555 2671", NULLED),
    )
    assert dictionary.columns == ("public.users.full_name", "public.accounts.owner", "public.users.phone")
    assert dictionary.left_out == 1
    assert "1 more beyond the bound" in dictionary.describe()


def test_fold_keeps_positions() -> None:
    assert fold("İstanbul JANE") == "İstanbul jane"
    assert len(fold("İ")) == 1


# --- the plan ------------------------------------------------------------------------------------------------


def _plan(
    tmp_path: Path, columns: str, paths: str = "", dictionary: FreeTextDictionary | None = None
) -> MaskPlan:
    (tmp_path / "mask-rules.yaml").write_text(
        'version: "1.0"\ntables:\n  public.tickets:\n    columns:\n'
        + textwrap.indent(textwrap.dedent(columns).strip("\n"), "      ")
        + "\n"
    )
    extensions = 'version: "1.0"\n'
    if paths:
        extensions += "json_mask:\n  - column: public.tickets.payload\n    paths:\n" + textwrap.indent(
            textwrap.dedent(paths).strip("\n"), "      "
        )
    (tmp_path / "ext.yaml").write_text(extensions + "\n")
    config = load_config(tmp_path / "mask-rules.yaml", tmp_path / "ext.yaml")
    return build_mask_plan(config, _catalog(TICKETS), SALT, free_text=dictionary)


def test_a_ner_mask_column_and_json_path_use_the_dictionary_and_say_which_detectors_ran(
    tmp_path: Path,
) -> None:
    plan = _plan(
        tmp_path,
        "note: { action: ner_mask }",
        "- { path: $.internal.support_notes, action: ner_mask }",
        DICTIONARY,
    )
    assert _masker(plan, "public.tickets", "note")("Spoke to Jane Doe.") == "Spoke to Kayla Brooks."
    payload = _masker(plan, "public.tickets", "payload")
    assert payload('{"internal": {"support_notes": "Spoke to Jane Doe."}, "n": 1}') == (
        '{"internal": {"support_notes": "Spoke to Kayla Brooks."}, "n": 1}'
    )
    described = {column.column: column.action for column in plan.for_table(TICKETS.name).columns}
    assert described["note"].startswith("ner_mask (4 originals of 3 masked fields; ")
    assert "email, credit_card, ip_address, phone by pattern" in described["note"]
    assert "no names model (spaCy and en_core_web_sm not installed)" in described["note"]
    assert "ner_mask $.internal.support_notes" in described["payload"]


def test_ner_mask_is_refused_on_a_bounded_column_and_a_unique_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as bounded:
        _plan(tmp_path, "summary: { action: ner_mask }")
    assert "tables.public.tickets.columns.summary: ner_mask masks free text" in str(bounded.value)
    assert "character varying(200)" in str(bounded.value)
    with pytest.raises(ConfigError) as unique:
        _plan(tmp_path, "ref: { action: ner_mask }")
    assert "ner_mask on a unique column" in str(unique.value)


def test_entities_takes_spacy_labels_only(tmp_path: Path) -> None:
    _plan(tmp_path, "note: { action: ner_mask, entities: [PERSON, ORG] }")
    with pytest.raises(ConfigError) as unknown:
        _plan(tmp_path, "note: { action: ner_mask, entities: [EMAIL] }")
    assert "tables.public.tickets.columns.note" in str(unknown.value) and "PERSON" in str(unknown.value)
