"""Maskers and providers: deterministic, safe shapes, and JSON path rules. Pure functions, no database.

The golden values below were computed once with the engine and are hard-coded on purpose: if one changes,
every existing repro database stops matching a rerun with the same salt, so a change must be deliberate.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import json
import os
import subprocess
import sys
import textwrap
import time
import uuid
from datetime import date
from pathlib import Path

import pytest

from repro_pipeline.engine.config import load_config
from repro_pipeline.engine.errors import ConfigError
from repro_pipeline.engine.masking import regex, values
from repro_pipeline.engine.masking.json_paths import (
    JsonPathAction,
    compile_document_masker,
    string_leaves,
    values_at,
)
from repro_pipeline.engine.masking.plan import ColumnMasking, MaskPlan, build_mask_plan
from repro_pipeline.engine.masking.providers import PROVIDERS, max_length
from repro_pipeline.engine.masking.values import ValueMasker
from repro_pipeline.engine.secrets import Secret
from repro_pipeline.engine.source.catalog import Catalog, Column, Constraint, Table, TableName
from repro_pipeline_tests.conftest import FIXTURES, PROJECT_ROOT

SALT = Secret("s" * 32)
OTHER_SALT = Secret("t" * 32)

GOLDEN_EMAIL = "sherry.mendoza4388@example.net"
GOLDEN_FULL_NAME = "Willie Francis"
GOLDEN_HASH = "ca156dbbcdbb35325b72a649bfe4cf583e158055b0ab8018704d99eb636e2e56"


def _email_masker(salt: Secret = SALT, scope: str = "public.users.email") -> ValueMasker:
    return values.fake(salt, scope, "email", {})


# --- golden values: any change in determinism is caught ------------------------------------------------


def test_golden_fake_email() -> None:
    assert _email_masker()("jane@acme.com") == GOLDEN_EMAIL


def test_golden_fake_full_name() -> None:
    assert values.fake(SALT, "public.users.full_name", "full_name", {})("Jane Doe") == GOLDEN_FULL_NAME


def test_golden_hash() -> None:
    assert values.hashed(SALT)("tok_123") == GOLDEN_HASH


def test_hash_is_hex_hmac_sha256_of_the_value_keyed_by_the_salt() -> None:
    expected = hmac.new(SALT.reveal().encode(), b"tok_123", hashlib.sha256).hexdigest()
    assert values.hashed(SALT)("tok_123") == expected


# One value through every provider, scope "scope", value "x": pins the word lists (Faker's en_US data) and
# the arithmetic of each provider.
GOLDEN_PROVIDER_OUTPUTS = {
    "first_name": "Alexander",
    "last_name": "Benson",
    "full_name": "Alexander Benson",
    "username": "alexander.benson9325",
    "email": "alexander.benson9325@example.com",
    "company": "Benson Group",
    "job_title": "Radiographer, diagnostic",
    "phone": "+1-448-555-0131",
    "street": "1002 Benson Avenue",
    "city": "West Alexanderfurt",
    "postcode": "22367",
    "country": "Uganda",
    "address": "1002 Benson Avenue, West Alexanderfurt 22367, Uganda",
    "ip_address": "203.0.113.208",
    "uuid": "0e19c818-4055-4053-a761-6a7d39674439",
    "dob": "1971-12-22",
    "ssn": "948-50-0172",
    "credit_card": "4242420793493313",
}


def test_golden_outputs_cover_every_provider() -> None:
    assert set(GOLDEN_PROVIDER_OUTPUTS) == set(PROVIDERS)


@pytest.mark.parametrize(("provider", "expected"), sorted(GOLDEN_PROVIDER_OUTPUTS.items()))
def test_golden_provider_output(provider: str, expected: str) -> None:
    assert values.fake(SALT, "scope", provider, {})("x") == expected


# --- determinism and scoping -----------------------------------------------------------------------------


def test_same_inputs_give_the_same_outputs_across_calls_and_maskers() -> None:
    first, second = _email_masker(), _email_masker()
    assert first("jane@acme.com") == first("jane@acme.com") == second("jane@acme.com")
    assert values.hashed(SALT)("tok_123") == values.hashed(Secret("s" * 32))("tok_123")


def test_different_salt_gives_a_different_fake_and_hash() -> None:
    assert _email_masker(OTHER_SALT)("jane@acme.com") != GOLDEN_EMAIL
    assert values.hashed(OTHER_SALT)("tok_123") != GOLDEN_HASH


def test_same_value_in_two_unaliased_columns_fakes_differently() -> None:
    users = _email_masker(scope="public.users.email")
    orders = _email_masker(scope="public.orders.customer_email")
    assert users("jane@acme.com") != orders("jane@acme.com")


def test_columns_sharing_a_seed_alias_fake_the_same_value_identically() -> None:
    # users.email and payload $.actor.email both carry seed_alias: user_email in the guide's config.
    scalar_column = _email_masker(scope="user_email")
    json_path = _email_masker(scope="user_email")
    assert scalar_column("jane@acme.com") == json_path("jane@acme.com")
    assert scalar_column("jane@acme.com") != GOLDEN_EMAIL  # the alias replaces the column path


def test_hash_is_the_same_in_every_column_so_tokens_still_join() -> None:
    # hashed() takes no scope: the same token hashes the same in every table.
    assert values.hashed(SALT)("tok_123") == values.hashed(SALT)("tok_123") == GOLDEN_HASH


def test_different_values_fake_differently() -> None:
    masker = _email_masker()
    outputs = {masker(f"user{i}@acme.com") for i in range(200)}
    assert len(outputs) == 200


def test_fake_seed_is_nfc_normalized_and_case_preserving() -> None:
    masker = _email_masker()
    assert masker("jos\u00e9@acme.com") == masker("jose\u0301@acme.com")  # composed vs decomposed é
    assert masker("Jane@Acme.com") != masker("jane@acme.com")  # as the guide warns


def test_scope_and_value_are_not_ambiguous_when_concatenated() -> None:
    # Length prefixes keep ("ab", "c") and ("a", "bc") apart.
    assert values.fake_seed(SALT, "ab", "c") != values.fake_seed(SALT, "a", "bc")


def test_email_domain_parameter_forces_the_domain() -> None:
    masker = values.fake(SALT, "public.users.email", "email", {"domain": "example.org"})
    assert masker("jane@acme.com") == "sherry.mendoza4388@example.org"


# Run in a fresh interpreter with another hash seed: nothing may depend on Python's per-process hashing.
_CHILD_CODE = """
import json
from repro_pipeline.engine.masking import regex, values
from repro_pipeline.engine.secrets import Secret
salt = Secret("s" * 32)
print(json.dumps([
    values.fake(salt, "public.users.email", "email", {})("jane@acme.com"),
    values.fake(salt, "public.users.full_name", "full_name", {})("Jane Doe"),
    values.hashed(salt)("tok_123"),
    values.fake(salt, "scope", "address", {})("x"),
    values.fake(salt, "public.users.email", "email", {}, tagged=True)("jane@acme.com"),
    values.fake(salt, "public.users.email", "email", {}, normalize="lower")("Jane@Acme.com"),
    values.regex_mask(salt, "public.t.code", regex.compile_pattern(r"\\d", 0), "#", tagged=True)("A1"),
]))
"""


@pytest.mark.parametrize("hash_seed", ["0", "4242"])
def test_outputs_are_the_same_in_another_process_with_another_hash_seed(hash_seed: str) -> None:
    environment = {**os.environ, "PYTHONHASHSEED": hash_seed}
    completed = subprocess.run(
        [sys.executable, "-c", _CHILD_CODE],
        capture_output=True,
        text=True,
        env=environment,
        cwd=PROJECT_ROOT,
        timeout=120,
        check=True,
    )
    in_process = [
        _email_masker()("jane@acme.com"),
        values.fake(SALT, "public.users.full_name", "full_name", {})("Jane Doe"),
        values.hashed(SALT)("tok_123"),
        values.fake(SALT, "scope", "address", {})("x"),
        values.fake(SALT, "public.users.email", "email", {}, tagged=True)("jane@acme.com"),
        values.fake(SALT, "public.users.email", "email", {}, normalize="lower")("Jane@Acme.com"),
        values.regex_mask(SALT, "public.t.code", regex.compile_pattern(r"\d", 0), "#", tagged=True)("A1"),
    ]
    assert json.loads(completed.stdout) == in_process
    assert in_process[:3] == [GOLDEN_EMAIL, GOLDEN_FULL_NAME, GOLDEN_HASH]
    assert in_process[4:6] == [GOLDEN_TAGGED_EMAIL, GOLDEN_EMAIL]


# --- NULL and empty string -------------------------------------------------------------------------------

MASKERS_THAT_KEEP_EMPTY = {
    "fake-email": _email_masker(),
    "fake-full-name": values.fake(SALT, "public.users.full_name", "full_name", {}),
    "hash": values.hashed(SALT),
}


@pytest.mark.parametrize("masker", MASKERS_THAT_KEEP_EMPTY.values(), ids=MASKERS_THAT_KEEP_EMPTY.keys())
def test_fake_and_hash_keep_null_and_empty_string(masker: ValueMasker) -> None:
    assert masker(None) is None
    assert masker("") == ""


def test_static_replaces_every_non_null_value_including_empty() -> None:
    masker = values.static("9999")
    assert masker(None) is None
    assert masker("") == "9999"
    assert masker("1234") == "9999"


def test_null_action_gives_null_for_everything() -> None:
    masker = values.null()
    assert [masker(None), masker(""), masker("1234")] == [None, None, None]


# --- providers: non-empty, deterministic, never realistic -------------------------------------------------

SAMPLE_VALUES = [f"original-{i}" for i in range(300)] + ["jane@acme.com", "Ünïcødé ✓", " ", "0"]


def _outputs(provider: str) -> list[str]:
    masker = values.fake(SALT, f"public.people.{provider}", provider, {})
    results = [masker(value) for value in SAMPLE_VALUES]
    assert all(isinstance(result, str) for result in results)
    return [result for result in results if result is not None]


@pytest.mark.parametrize("provider", sorted(PROVIDERS))
def test_every_provider_returns_a_non_empty_deterministic_string(provider: str) -> None:
    outputs = _outputs(provider)
    assert len(outputs) == len(SAMPLE_VALUES)
    assert all(output and output.strip() == output for output in outputs)
    assert _outputs(provider) == outputs


@pytest.mark.parametrize("provider", sorted(PROVIDERS))
@pytest.mark.parametrize("seed", [bytes(32), b"\xff" * 32, bytes(range(32))], ids=["zeros", "ones", "ramp"])
def test_every_provider_handles_extreme_seeds(provider: str, seed: bytes) -> None:
    output = PROVIDERS[provider](seed, {})
    assert isinstance(output, str)
    assert output


def test_email_is_at_a_reserved_example_domain() -> None:
    for output in _outputs("email"):
        local, _, domain = output.partition("@")
        assert domain in {"example.com", "example.net", "example.org"}
        assert local
        assert local == local.lower()
        assert output.count("@") == 1


def test_ip_address_is_in_a_documentation_range() -> None:
    test_nets = [ipaddress.ip_network(net) for net in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24")]
    for output in _outputs("ip_address"):
        address = ipaddress.ip_address(output)
        assert any(address in net for net in test_nets)
        assert output.rsplit(".", 1)[1] not in {"0", "255"}


def test_ssn_uses_a_never_issued_9xx_area() -> None:
    for output in _outputs("ssn"):
        area, group, serial = output.split("-")
        assert (len(area), len(group), len(serial)) == (3, 2, 4)
        assert 900 <= int(area) <= 999
        assert int(group) != 0
        assert int(serial) != 0


def _passes_luhn(number: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(number)):
        digit = int(char)
        if position % 2 == 1:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return total % 10 == 0


def test_luhn_helper_recognizes_known_test_numbers() -> None:
    assert _passes_luhn("4242424242424242")
    assert _passes_luhn("5555555555554444")
    assert not _passes_luhn("4242424242424241")


def test_credit_card_is_a_luhn_valid_test_card() -> None:
    for output in _outputs("credit_card"):
        assert output.isdigit()
        assert len(output) == 16
        assert output.startswith(("424242", "400000", "555555", "222300"))
        assert _passes_luhn(output)


def test_phone_is_a_fictional_555_01xx_number() -> None:
    for output in _outputs("phone"):
        assert "-555-01" in output
        assert output.startswith("+1-")
        assert len(output.rsplit("-", 1)[1]) == 4


def test_uuid_is_a_version_4_uuid() -> None:
    for output in _outputs("uuid"):
        parsed = uuid.UUID(output)
        assert str(parsed) == output
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122


def test_dob_is_an_iso_date_of_an_adult_born_after_1950() -> None:
    for output in _outputs("dob"):
        born = date.fromisoformat(output)
        assert born.isoformat() == output
        assert date(1950, 1, 1) <= born < date(2005, 1, 1)


def test_postcode_is_five_digits() -> None:
    assert all(len(output) == 5 and output.isdigit() for output in _outputs("postcode"))


def test_full_name_is_first_name_and_last_name() -> None:
    first = values.fake(SALT, "scope", "first_name", {})
    last = values.fake(SALT, "scope", "last_name", {})
    full = values.fake(SALT, "scope", "full_name", {})
    for value in SAMPLE_VALUES[:50]:
        assert full(value) == f"{first(value)} {last(value)}"


# --- JSON path rules --------------------------------------------------------------------------------------

PAYLOAD = {
    "actor": {"email": "jane@acme.com", "ip": "10.1.2.3", "name": "Jane Doe", "user_id": 17},
    "internal": {"support_notes": "called from her cell, 555-867-5309", "ticket": "T-1"},
    "event": "invoice.paid",
}


def _mask(path: str, masker: ValueMasker | None, document: object = PAYLOAD) -> object:
    """Mask ``document`` with one rule and return the parsed output (which must be valid JSON)."""
    output = compile_document_masker([JsonPathAction(path, masker)])(json.dumps(document))
    assert output is not None
    return json.loads(output)


def _with(document: dict, path: tuple[str, ...], value: object) -> dict:
    copy = json.loads(json.dumps(document))
    node = copy
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return copy


def test_dotted_path_fake_changes_only_that_leaf() -> None:
    alias_masker = _email_masker(scope="user_email")
    masked = _mask("$.actor.email", alias_masker)
    assert masked == _with(PAYLOAD, ("actor", "email"), alias_masker("jane@acme.com"))
    assert masked["actor"]["email"].endswith(("@example.com", "@example.net", "@example.org"))


def test_dotted_path_hash() -> None:
    masked = _mask("$.actor.ip", values.hashed(SALT))
    assert masked == _with(PAYLOAD, ("actor", "ip"), values.hashed(SALT)("10.1.2.3"))


def test_dotted_path_static() -> None:
    assert _mask("$.actor.name", values.static("REDACTED")) == _with(PAYLOAD, ("actor", "name"), "REDACTED")


def test_dotted_path_null_sets_json_null() -> None:
    assert _mask("$.actor.name", values.null()) == _with(PAYLOAD, ("actor", "name"), None)


def test_dotted_path_remove_deletes_the_key() -> None:
    masked = _mask("$.internal.support_notes", None)
    expected = json.loads(json.dumps(PAYLOAD))
    del expected["internal"]["support_notes"]
    assert masked == expected


def test_non_string_leaf_is_masked_as_its_json_text() -> None:
    # A fake or hash of a number gives a string: the masker sees the JSON text of the value.
    masked = _mask("$.actor.user_id", values.hashed(SALT))
    assert masked["actor"]["user_id"] == values.hashed(SALT)("17")
    masked = _mask("$.internal", values.hashed(SALT))
    assert masked["internal"] == values.hashed(SALT)(json.dumps(PAYLOAD["internal"], sort_keys=True))


def test_the_guides_three_rules_applied_in_order() -> None:
    masker = compile_document_masker(
        [
            JsonPathAction("$.actor.email", _email_masker(scope="user_email")),
            JsonPathAction("$.actor.ip", values.hashed(SALT)),
            JsonPathAction("$.internal.support_notes", None),
        ]
    )
    masked = json.loads(masker(json.dumps(PAYLOAD)) or "null")
    assert masked == {
        "actor": {
            "email": _email_masker(scope="user_email")("jane@acme.com"),
            "ip": values.hashed(SALT)("10.1.2.3"),
            "name": "Jane Doe",
            "user_id": 17,
        },
        "internal": {"ticket": "T-1"},
        "event": "invoice.paid",
    }
    assert "jane@acme.com" not in list(string_leaves(masked))


MISSING_PATHS = [
    "$.actor.phone",
    "$.nothing.here",
    "$.actor.email.deeper",  # the parent is a string, not an object
    "$.actors[*].email",
    "$.actors[0].email",
    "$..phone",
    "$['odd.key']",
]


@pytest.mark.parametrize("path", MISSING_PATHS)
@pytest.mark.parametrize("action", ["hash", "remove"])
def test_missing_path_is_a_no_op(path: str, action: str) -> None:
    masker = values.hashed(SALT) if action == "hash" else None
    assert _mask(path, masker) == PAYLOAD


@pytest.mark.parametrize("text", ["null", "[1,2]", '"text"', "42", "true", "{}", "[]"])
@pytest.mark.parametrize("path", ["$.actor.email", "$.actors[*].email", "$..email", "$['odd.key']"])
@pytest.mark.parametrize("action", ["hash", "remove"])
def test_non_object_payload_stays_valid_and_unchanged(text: str, path: str, action: str) -> None:
    masker = compile_document_masker(
        [JsonPathAction(path, values.hashed(SALT) if action == "hash" else None)]
    )
    output = masker(text)
    assert output is not None
    assert json.loads(output) == json.loads(text)


def test_sql_null_column_stays_null() -> None:
    masker = compile_document_masker([JsonPathAction("$.actor.email", _email_masker())])
    assert masker(None) is None


@pytest.mark.parametrize(
    "masker",
    [_email_masker(), values.hashed(SALT), values.static("x"), values.null()],
    ids=["fake", "hash", "static", "null"],
)
@pytest.mark.parametrize("path", ["$.actor.email", "$..email", "$.actors[*].email"])
def test_json_null_at_the_path_stays_null(masker: ValueMasker, path: str) -> None:
    document = {"actor": {"email": None}, "actors": [{"email": None}]}
    assert _mask(path, masker, document) == document


def test_wildcard_masks_every_array_element() -> None:
    document = {"actors": [{"email": "a@acme.com"}, {"email": "b@acme.com"}, {"name": "c"}]}
    masker = _email_masker()
    assert _mask("$.actors[*].email", masker, document) == {
        "actors": [{"email": masker("a@acme.com")}, {"email": masker("b@acme.com")}, {"name": "c"}]
    }


def test_array_index_masks_one_element() -> None:
    document = {"actors": [{"email": "a@acme.com"}, {"email": "b@acme.com"}]}
    assert _mask("$.actors[0].email", values.static("x"), document) == {
        "actors": [{"email": "x"}, {"email": "b@acme.com"}]
    }


def test_wildcard_remove_deletes_the_key_in_every_element() -> None:
    document = {"actors": [{"email": "a@acme.com", "id": 1}, {"email": "b@acme.com", "id": 2}]}
    assert _mask("$.actors[*].email", None, document) == {"actors": [{"id": 1}, {"id": 2}]}


def test_recursive_descent_masks_every_depth() -> None:
    document = {
        "email": "top@acme.com",
        "actor": {"email": "a@acme.com", "deep": {"email": "d@acme.com"}},
        "actors": [{"email": "b@acme.com"}],
        "note": "keep",
    }
    masked = _mask("$..email", values.hashed(SALT), document)
    assert set(values_at(masked, "$..email")) == {
        values.hashed(SALT)(value) for value in ("top@acme.com", "a@acme.com", "d@acme.com", "b@acme.com")
    }
    assert masked["note"] == "keep"


def test_recursive_descent_remove() -> None:
    document = {"email": "x", "actor": {"email": "y", "n": 1}, "actors": [{"email": "z"}]}
    assert _mask("$..email", None, document) == {"actor": {"n": 1}, "actors": [{}]}


@pytest.mark.parametrize("path", ["$['odd.key']", '$["odd.key"]'])
def test_bracketed_key_containing_a_dot(path: str) -> None:
    document = {"odd.key": "secret", "odd": {"key": "other"}}
    assert _mask(path, values.static("x"), document) == {"odd.key": "x", "odd": {"key": "other"}}
    assert _mask(path, None, document) == {"odd": {"key": "other"}}


def test_output_keeps_non_ascii_text_as_is() -> None:
    masker = compile_document_masker([JsonPathAction("$.a", None)])
    assert masker('{"a": 1, "b": "é ✓"}') == '{"b": "é ✓"}'


def test_numbers_outside_the_masked_paths_keep_their_exact_value() -> None:
    masker = compile_document_masker([JsonPathAction("$.actor.email", values.hashed(SALT))])
    output = masker('{"amount": 12345678901234567890.123, "rate": 0.10000000000000000001, "actor": {}}')
    assert output is not None
    assert "12345678901234567890.123" in output
    assert "0.10000000000000000001" in output


def test_huge_numbers_give_valid_json() -> None:
    masker = compile_document_masker([JsonPathAction("$.actor.email", values.hashed(SALT))])
    output = masker('{"big": 1e400, "actor": {}}')
    assert output is not None
    json.loads(output, parse_constant=_refuse_non_json_constant)


def _refuse_non_json_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


def test_dotted_path_with_dashes_in_keys() -> None:
    document = {"headers": {"x-forwarded-for": "10.0.0.1", "accept": "*/*"}}
    masked = _mask("$.headers.x-forwarded-for", values.hashed(SALT), document)
    assert masked == {"headers": {"x-forwarded-for": values.hashed(SALT)("10.0.0.1"), "accept": "*/*"}}
    assert values_at(document, "$.headers.x-forwarded-for") == ["10.0.0.1"]


# --- values_at and string_leaves --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("$.actor.email", ["jane@acme.com"]),
        ("$.actor", [PAYLOAD["actor"]]),
        ("$.actor.user_id", [17]),
        ("$.actor.phone", []),
        ("$.nothing.here", []),
        ("$.actor.email.deeper", []),
        ("$.actors[*].email", []),
        ("$..ticket", ["T-1"]),
    ],
)
def test_values_at(path: str, expected: list[object]) -> None:
    assert values_at(PAYLOAD, path) == expected


def test_values_at_with_arrays_and_bracketed_keys() -> None:
    document = {"actors": [{"email": "a"}, {"email": "b"}], "odd.key": "v", "n": None}
    assert values_at(document, "$.actors[*].email") == ["a", "b"]
    assert values_at(document, "$.actors[1].email") == ["b"]
    assert values_at(document, "$['odd.key']") == ["v"]
    assert values_at(document, "$.n") == [None]
    assert values_at([1, 2], "$.a") == []


def test_string_leaves_yields_every_string_value_but_no_key() -> None:
    document = {"k1": "a", "k2": [1, "b", {"k3": "c", "k4": None, "k5": True}], "k6": {"k7": 2.5}}
    assert list(string_leaves(document)) == ["a", "b", "c"]
    assert list(string_leaves("only")) == ["only"]
    assert list(string_leaves(42)) == []
    assert list(string_leaves(None)) == []


# --- normalize: lower ------------------------------------------------------------------------------------


def test_normalize_lower_fakes_case_variants_the_same() -> None:
    masker = values.fake(SALT, "public.users.email", "email", {}, normalize="lower")
    assert masker("Jane@Acme.com") == masker("jane@acme.com") == masker("JANE@ACME.COM")
    # An already-lowercase value gives what it gives without normalize: the golden value.
    assert masker("jane@acme.com") == GOLDEN_EMAIL


def test_normalize_is_off_by_default() -> None:
    assert _email_masker()("Jane@Acme.com") != _email_masker()("jane@acme.com")
    assert values.fake_seed(SALT, "s", "Jane") != values.fake_seed(SALT, "s", "jane")
    assert values.fake_seed(SALT, "s", "Jane", "lower") == values.fake_seed(SALT, "s", "jane")


def test_normalize_lower_is_nfc_normalized_too() -> None:
    masker = values.fake(SALT, "scope", "full_name", {}, normalize="lower")
    assert masker("JOS\u00c9") == masker("jos\u00e9") == masker("JOSE\u0301") == masker("jose\u0301")


def test_hash_with_normalize_lower() -> None:
    masker = values.hashed(SALT, normalize="lower")
    assert masker("TOK_123") == masker("tok_123") == GOLDEN_HASH
    assert values.hashed(SALT)("TOK_123") != GOLDEN_HASH
    assert masker(None) is None and masker("") == ""


def test_unknown_normalization_fails_when_the_masker_is_built() -> None:
    with pytest.raises(ValueError, match="unknown normalization 'upper'"):
        values.fake(SALT, "scope", "email", {}, normalize="upper")


# --- regex_mask values -----------------------------------------------------------------------------------


def test_regex_mask_substitutes_every_match() -> None:
    masker = values.regex_mask(SALT, "public.t.notes", regex.compile_pattern(r"\d", 0), "X")
    assert masker("call 555-0100 now") == "call XXX-XXXX now"
    assert masker("no digits") == "no digits"
    assert masker(None) is None and masker("") == ""


def test_regex_mask_with_groups_and_flags() -> None:
    pattern = regex.compile_pattern(r"(?P<user>[a-z]+)@\w+\.com", regex.flag_bits(["ignorecase"]))
    masker = values.regex_mask(SALT, "public.t.notes", pattern, r"\g<user>@example.com")
    assert masker("mail JANE@ACME.COM today") == "mail JANE@example.com today"


def test_regex_mask_withholds_values_longer_than_the_limit() -> None:
    # The regex engine never sees them: the value is written as its hash (unique, and fits any column
    # that held it).
    masker = values.regex_mask(SALT, "public.t.notes", regex.compile_pattern(r"\d", 0), "X")
    at_limit = "1" * regex.MAX_VALUE_LENGTH
    over_limit = at_limit + "1"
    assert masker(at_limit) == "X" * regex.MAX_VALUE_LENGTH
    assert masker(over_limit) == values.hashed(SALT)(over_limit)
    assert masker(over_limit + "2") != masker(over_limit)


def test_regex_mask_unique_tag() -> None:
    pattern = regex.compile_pattern(r"\d", 0)
    masker = values.regex_mask(SALT, "public.t.code", pattern, "X", tagged=True)
    first, second = masker("A-1"), masker("A-2")
    assert first is not None and second is not None
    assert first.startswith("A-X-") and second.startswith("A-X-") and first != second
    assert len(first) == len("A-X") + 1 + values.TAG_LENGTH


# --- uniqueness tag --------------------------------------------------------------------------------------

GOLDEN_TAGGED_EMAIL = "sherry.mendoza4388+tjzkn3xij4djkt3g@example.net"


def test_golden_tagged_email() -> None:
    masker = values.fake(SALT, "public.users.email", "email", {}, tagged=True)
    assert masker("jane@acme.com") == GOLDEN_TAGGED_EMAIL
    # The untagged part is the untagged fake: only the tag is added.
    assert GOLDEN_TAGGED_EMAIL.replace("+tjzkn3xij4djkt3g", "") == GOLDEN_EMAIL


def test_tag_is_80_bits_of_the_seed_in_lowercase_base32() -> None:
    seed = values.fake_seed(SALT, "public.users.email", "jane@acme.com")
    tag = values.uniqueness_tag(seed)
    assert len(tag) == values.TAG_LENGTH == 16
    assert set(tag) <= set("abcdefghijklmnopqrstuvwxyz234567")
    assert base64.b32decode(tag.upper()) == seed[22:32]


@pytest.mark.parametrize("provider", sorted(set(PROVIDERS) - {"email", "uuid"}))
def test_tagged_fake_is_the_fake_a_dash_and_the_tag(provider: str) -> None:
    plain = values.fake(SALT, "scope", provider, {})("x")
    tagged = values.fake(SALT, "scope", provider, {}, tagged=True)("x")
    assert tagged == f"{plain}-{values.uniqueness_tag(values.fake_seed(SALT, 'scope', 'x'))}"


def test_uuid_fake_is_never_tagged() -> None:
    assert values.fake(SALT, "scope", "uuid", {}, tagged=True)("x") == GOLDEN_PROVIDER_OUTPUTS["uuid"]


def test_tagged_fakes_of_a_million_distinct_values_never_collide() -> None:
    masker = values.fake(SALT, "public.users.email", "email", {}, tagged=True)
    began = time.perf_counter()
    outputs = {masker(f"user{number}@acme.com") for number in range(1_000_000)}
    elapsed = time.perf_counter() - began
    assert len(outputs) == 1_000_000
    assert elapsed < 60, f"{elapsed:.1f} s"  # about 6 s on the 2-core reference machine


def test_tagged_names_collide_in_their_base_but_never_in_full() -> None:
    # 690 first names x 1000 last names: 20,000 values already share base names, the tag keeps them apart.
    masker = values.fake(SALT, "public.people.name", "full_name", {}, tagged=True)
    outputs = [masker(f"person {number}") for number in range(20_000)]
    assert len({output.rsplit("-", 1)[0] for output in outputs if output}) < 20_000
    assert len(set(outputs)) == 20_000


def test_character_n_values_are_masked_without_their_padding() -> None:
    masker = values.unpadded(values.hashed(SALT))
    assert masker("tok_123   ") == GOLDEN_HASH
    assert masker("    ") == ""
    assert masker(None) is None


def test_hash_cut_to_a_length_and_as_uuid() -> None:
    assert values.hashed(SALT, length=32)("tok_123") == GOLDEN_HASH[:32]
    shaped = values.hashed(SALT, uuid_shaped=True)("tok_123")
    assert shaped is not None
    assert uuid.UUID(shaped).hex == GOLDEN_HASH[:32]


def test_provider_max_length_bounds_every_output() -> None:
    for provider in PROVIDERS:
        longest = max_length(provider, {})
        for value in SAMPLE_VALUES:
            output = values.fake(SALT, "scope", provider, {})(value)
            assert output is not None and len(output) <= longest, (provider, output)
    assert max_length("email", {"domain": "example.org"}) == max_length("email", {})
    assert max_length("email", {"domain": "a.example.com"}) == max_length("email", {}) + 2


def test_long_values_are_not_kept_in_the_cache() -> None:
    masker = values.hashed(SALT)
    long_value = "x" * 5000
    assert (
        masker(long_value)
        == masker(long_value)
        == hmac.new(SALT.reveal().encode(), long_value.encode(), hashlib.sha256).hexdigest()
    )


# --- the mask plan against a catalog (built by hand, no database) ----------------------------------------


def _table(
    name: str,
    columns: dict[str, str],
    *,
    primary_key: tuple[str, ...] = ("id",),
    unique: tuple[tuple[str, ...], ...] = (),
    not_null: tuple[str, ...] = (),
    nulls_not_distinct: bool = False,
) -> Table:
    table_name = TableName.parse(name)
    constraints = []
    if primary_key:
        constraints.append(
            Constraint(
                table_name,
                f"{table_name.name}_pkey",
                "p",
                primary_key,
                f"PRIMARY KEY ({', '.join(primary_key)})",
            )
        )
    for members in unique:
        option = " NULLS NOT DISTINCT" if nulls_not_distinct else ""
        constraints.append(
            Constraint(
                table_name,
                f"{table_name.name}_{'_'.join(members)}_key",
                "u",
                members,
                f"UNIQUE{option} ({', '.join(members)})",
            )
        )
    return Table(
        name=table_name,
        columns=tuple(
            Column(column, type_text, column in primary_key or column in not_null, None, "", "")
            for column, type_text in {"id": "bigint", **columns}.items()
        ),
        primary_key=primary_key,
        constraints=tuple(constraints),
    )


def _catalog(*tables: Table, unique_indexes: tuple[tuple[str, str], ...] = ()) -> Catalog:
    return Catalog(
        tables={table.name: table for table in tables},
        foreign_keys=(),
        unique_indexes=tuple((TableName.parse(table), definition) for table, definition in unique_indexes),
    )


def _plan(tmp_path: Path, catalog: Catalog, rules: str, extensions: str = 'version: "1.0"\n') -> MaskPlan:
    (tmp_path / "mask-rules.yaml").write_text(textwrap.dedent(rules).lstrip("\n"))
    (tmp_path / "commercial-extensions.yaml").write_text(textwrap.dedent(extensions).lstrip("\n"))
    config = load_config(tmp_path / "mask-rules.yaml", tmp_path / "commercial-extensions.yaml")
    return build_mask_plan(config, catalog, SALT)


def _refusal(tmp_path: Path, catalog: Catalog, rules: str, extensions: str = 'version: "1.0"\n') -> str:
    with pytest.raises(ConfigError) as raised:
        _plan(tmp_path, catalog, rules, extensions)
    assert raised.value.exit_code == 3
    return str(raised.value)


def _masker(plan: MaskPlan, table: str, column: str) -> ValueMasker:
    masking = plan.for_table(TableName.parse(table))
    position = [c.name for c in masking.table.copy_columns].index(column)
    return masking.maskers[position]


def _rules(table: str, columns: str) -> str:
    return f'version: "1.0"\ntables:\n  {table}:\n    columns:\n' + textwrap.indent(
        textwrap.dedent(columns).strip("\n"), "      "
    )


USERS = _table("public.users", {"email": "text", "full_name": "text"}, not_null=("email",))
UNIQUE_USERS = _table(
    "public.users", {"email": "text", "full_name": "text"}, unique=(("email",),), not_null=("email",)
)
AUDIT = _table("public.audit_events", {"payload": "jsonb"})
GUIDE_DIR = FIXTURES / "guide"


def test_the_guides_rules_keep_their_outputs_and_descriptions() -> None:
    config = load_config(GUIDE_DIR / "mask-rules.yaml", GUIDE_DIR / "commercial-extensions.yaml")
    payments = _table("public.payment_methods", {"last_four": "character(4)", "provider_token": "text"})
    catalog = _catalog(USERS, AUDIT, payments, _table("public.organizations", {}))
    plan = build_mask_plan(config, catalog, SALT)
    assert {c.column: c.action for c in plan.for_table(TableName.parse("public.users")).columns} == {
        "email": "fake:email (seed_alias user_email)",
        "full_name": "fake:full_name",
    }
    assert _masker(plan, "public.users", "email")("jane@acme.com") == _email_masker(scope="user_email")(
        "jane@acme.com"
    )
    assert _masker(plan, "public.users", "full_name")("Jane Doe") == GOLDEN_FULL_NAME
    assert _masker(plan, "public.payment_methods", "provider_token")("tok_123") == GOLDEN_HASH
    assert _masker(plan, "public.payment_methods", "last_four")("1234") == "9999"


def test_a_fake_on_a_unique_column_is_tagged(tmp_path: Path) -> None:
    plan = _plan(
        tmp_path, _catalog(UNIQUE_USERS), _rules("public.users", "email: { action: fake, provider: email }")
    )
    masker = _masker(plan, "public.users", "email")
    assert masker("jane@acme.com") == GOLDEN_TAGGED_EMAIL
    described = plan.for_table(TableName.parse("public.users")).columns
    assert described == (ColumnMasking("email", "fake:email (uniqueness tag)"),)


def test_a_fake_on_a_non_unique_column_is_not_tagged(tmp_path: Path) -> None:
    plan = _plan(
        tmp_path, _catalog(USERS), _rules("public.users", "email: { action: fake, provider: email }")
    )
    assert _masker(plan, "public.users", "email")("jane@acme.com") == GOLDEN_EMAIL


@pytest.mark.parametrize(
    ("table", "unique_indexes"),
    [
        (_table("public.users", {"email": "text", "org": "bigint"}, unique=(("org", "email"),)), ()),
        (_table("public.users", {"email": "text"}, primary_key=("email",)), ()),
        (
            _table("public.users", {"email": "text"}),
            (("public.users", "CREATE UNIQUE INDEX users_email ON public.users USING btree (email)"),),
        ),
        (
            _table("public.users", {"email": "text"}),
            (
                (
                    "public.users",
                    "CREATE UNIQUE INDEX users_email ON public.users USING btree (lower(email)) WHERE (id > 0)",
                ),
            ),
        ),
        (
            _table("public.users", {"email": "text", "org": "bigint"}),
            (
                (
                    "public.users",
                    "CREATE UNIQUE INDEX users_email ON public.users USING btree (org, (email || ''::text))",
                ),
            ),
        ),
    ],
    ids=[
        "composite-unique-constraint",
        "primary-key",
        "unique-index",
        "partial-expression-index",
        "composite-expression-index",
    ],
)
def test_every_kind_of_uniqueness_tags_the_column(
    tmp_path: Path, table: Table, unique_indexes: tuple[tuple[str, str], ...]
) -> None:
    catalog = _catalog(table, unique_indexes=unique_indexes)
    plan = _plan(tmp_path, catalog, _rules("public.users", "email: { action: fake, provider: email }"))
    assert _masker(plan, "public.users", "email")("jane@acme.com") == GOLDEN_TAGGED_EMAIL


def test_an_index_include_column_is_not_unique(tmp_path: Path) -> None:
    catalog = _catalog(
        _table("public.users", {"email": "text", "code": "text"}),
        unique_indexes=(
            ("public.users", "CREATE UNIQUE INDEX u ON public.users USING btree (code) INCLUDE (email)"),
        ),
    )
    plan = _plan(tmp_path, catalog, _rules("public.users", "email: { action: fake, provider: email }"))
    assert _masker(plan, "public.users", "email")("jane@acme.com") == GOLDEN_EMAIL


def test_a_seed_alias_of_a_unique_column_is_tagged_everywhere_so_values_still_agree(tmp_path: Path) -> None:
    orders = _table("public.orders", {"customer_email": "text"})
    rules = (
        _rules("public.users", "email: { action: fake, provider: email, seed_alias: user_email }")
        + "\n  public.orders:\n    columns:\n      customer_email: { action: fake, provider: email, seed_alias: user_email }\n"
    )
    extensions = """
        version: "1.0"
        json_mask:
          - column: public.audit_events.payload
            paths:
              - { path: $.actor.email, action: fake, provider: email, seed_alias: user_email }
        """
    plan = _plan(tmp_path, _catalog(UNIQUE_USERS, orders, AUDIT), rules, extensions)
    user = _masker(plan, "public.users", "email")("jane@acme.com")
    assert user is not None and "+" in user
    assert _masker(plan, "public.orders", "customer_email")("jane@acme.com") == user
    payload = _masker(plan, "public.audit_events", "payload")('{"actor": {"email": "jane@acme.com"}}')
    assert json.loads(payload or "null") == {"actor": {"email": user}}


def test_static_on_a_unique_column_is_refused(tmp_path: Path) -> None:
    message = _refusal(
        tmp_path, _catalog(UNIQUE_USERS), _rules("public.users", "email: { action: static, value: x }")
    )
    assert message.startswith(
        f"{tmp_path / 'mask-rules.yaml'}:5: tables.public.users.columns.email: action static on a unique column (UNIQUE users_email_key)"
    )


def test_null_on_a_unique_column_is_refused_only_when_nulls_collide(tmp_path: Path) -> None:
    distinct = _table("public.users", {"email": "text"}, unique=(("email",),))
    plan = _plan(tmp_path, _catalog(distinct), _rules("public.users", "email: { action: null }"))
    assert _masker(plan, "public.users", "email")("jane@acme.com") is None  # NULLs never collide
    not_distinct = _table("public.users", {"email": "text"}, unique=(("email",),), nulls_not_distinct=True)
    message = _refusal(tmp_path, _catalog(not_distinct), _rules("public.users", "email: { action: null }"))
    assert (
        "tables.public.users.columns.email: action null on a unique column whose NULLs count as equal"
        in message
    )
    index = _catalog(
        _table("public.users", {"email": "text"}),
        unique_indexes=(
            ("public.users", "CREATE UNIQUE INDEX u ON public.users USING btree (email) NULLS NOT DISTINCT"),
        ),
    )
    assert "NULLs count as equal (UNIQUE INDEX u)" in _refusal(
        tmp_path, index, _rules("public.users", "email: { action: null }")
    )


def test_normalize_lower_aligns_a_column_and_a_json_path(tmp_path: Path) -> None:
    rules = _rules(
        "public.users", "email: { action: fake, provider: email, seed_alias: user_email, normalize: lower }"
    )
    extensions = """
        version: "1.0"
        json_mask:
          - column: public.audit_events.payload
            paths:
              - { path: $.actor.email, action: fake, provider: email, seed_alias: user_email, normalize: lower }
              - { path: $.actor.ip, action: hash, normalize: lower }
        """
    plan = _plan(tmp_path, _catalog(USERS, AUDIT), rules, extensions)
    user = _masker(plan, "public.users", "email")("Jane@Acme.com")
    payload = _masker(plan, "public.audit_events", "payload")(
        '{"actor": {"email": "jane@acme.com", "ip": "AB"}}'
    )
    assert json.loads(payload or "null") == {"actor": {"email": user, "ip": values.hashed(SALT)("ab")}}
    assert plan.for_table(TableName.parse("public.users")).columns == (
        ColumnMasking("email", "fake:email (seed_alias user_email, normalize lower)"),
    )


def test_columns_sharing_an_alias_must_agree_on_normalize(tmp_path: Path) -> None:
    rules = _rules(
        "public.users", "email: { action: fake, provider: email, seed_alias: user_email, normalize: lower }"
    )
    extensions = """
        version: "1.0"
        json_mask:
          - column: public.audit_events.payload
            paths:
              - { path: $.actor.email, action: fake, provider: email, seed_alias: user_email }
        """
    message = _refusal(tmp_path, _catalog(USERS, AUDIT), rules, extensions)
    assert (
        f"{tmp_path / 'commercial-extensions.yaml'}:5: json_mask[0].paths[0]: seed_alias user_email"
        in message
    )
    assert "normalize unset here and with normalize lower at" in message


def test_normalize_on_a_case_sensitive_unique_column_is_refused(tmp_path: Path) -> None:
    rules = _rules("public.users", "email: { action: fake, provider: email, normalize: lower }")
    message = _refusal(tmp_path, _catalog(UNIQUE_USERS), rules)
    assert (
        "tables.public.users.columns.email: normalize: lower on a unique column whose uniqueness is case-sensitive"
        in message
    )


@pytest.mark.parametrize(
    ("table", "unique_indexes"),
    [
        (_table("public.users", {"email": "public.citext"}, unique=(("email",),)), ()),
        (
            _table("public.users", {"email": "text"}),
            (("public.users", "CREATE UNIQUE INDEX u ON public.users USING btree (lower(email))"),),
        ),
        (
            _table("public.users", {"email": "character varying(200)"}, unique=(("email",),)),
            (("public.users", "CREATE UNIQUE INDEX u ON public.users USING btree (lower((email)::text))"),),
        ),
    ],
    ids=["citext", "lower-index", "lower-index-beside-a-plain-unique"],
)
def test_normalize_on_a_case_insensitive_unique_column_is_accepted(
    tmp_path: Path, table: Table, unique_indexes: tuple[tuple[str, str], ...]
) -> None:
    rules = _rules("public.users", "email: { action: fake, provider: email, normalize: lower }")
    plan = _plan(tmp_path, _catalog(table, unique_indexes=unique_indexes), rules)
    masker = _masker(plan, "public.users", "email")
    assert masker("Jane@Acme.com") == masker("jane@acme.com") == GOLDEN_TAGGED_EMAIL


TYPE_FIT_REFUSALS = [
    ("character varying(20)", "{ action: fake, provider: email }", "fake email gives up to 39 characters"),
    ("character(4)", "{ action: hash }", "hash needs at least 16 hex digits (64 bits; fewer would collide)"),
    ("bigint", "{ action: fake, provider: full_name }", "no provider gives values of that type"),
    ("integer", "{ action: hash }", "hash gives hex text that does not fit the column"),
    ("numeric(10,2)", "{ action: regex_mask, pattern: '\\d', replace: X }", "regex_mask works on text"),
    ("uuid", "{ action: fake, provider: email }", "only provider uuid fits it"),
    ("date", "{ action: fake, provider: full_name }", "only provider dob fits it"),
    ("timestamp with time zone", "{ action: hash }", "hash gives hex text"),
    ("inet", "{ action: fake, provider: email }", "only provider ip_address fits it"),
    ("text[]", "{ action: fake, provider: email }", "no provider gives values of that type"),
    ("boolean", "{ action: hash }", "hash gives hex text"),
    ("jsonb", "{ action: regex_mask, pattern: a, replace: b }", "regex_mask works on text"),
    (
        "character varying(64)",
        "{ action: regex_mask, pattern: '\\d+', replace: '[number]' }",
        "regex_mask can make a value longer",
    ),
    (
        "character(4)",
        "{ action: static, value: '12345' }",
        "static value '12345' does not fit: it is 5 characters long",
    ),
    ("integer", "{ action: static, value: 'n/a' }", "it is not an integer"),
    ("smallint", "{ action: static, value: '99999' }", "it is outside -32768..32767"),
    ("numeric", "{ action: static, value: 'abc' }", "it is not a number"),
    ("uuid", "{ action: static, value: 'abc' }", "it is not a uuid"),
    ("jsonb", "{ action: static, value: '{oops' }", "it is not JSON"),
]


@pytest.mark.parametrize(
    ("type_text", "rule", "says"), TYPE_FIT_REFUSALS, ids=[f"{t}-{r}" for t, r, _ in TYPE_FIT_REFUSALS]
)
def test_a_masked_value_that_cannot_fit_the_column_type_is_refused(
    tmp_path: Path, type_text: str, rule: str, says: str
) -> None:
    catalog = _catalog(_table("public.things", {"value": type_text}))
    message = _refusal(tmp_path, catalog, _rules("public.things", f"value: {rule}"))
    first_line = message.splitlines()[0]
    assert first_line.startswith(f"{tmp_path / 'mask-rules.yaml'}:5: tables.public.things.columns.value: ")
    assert says in first_line
    if "static value" not in says and "hash needs" not in says:
        assert f"public.things.value is {type_text}" in first_line


def test_a_tagged_fake_must_fit_with_its_tag(tmp_path: Path) -> None:
    fits_untagged = _table("public.users", {"email": "character varying(50)"}, unique=(("email",),))
    message = _refusal(
        tmp_path, _catalog(fits_untagged), _rules("public.users", "email: { action: fake, provider: email }")
    )
    assert (
        "fake email gives up to 56 characters, with the 17-character uniqueness tag because the column is unique "
        "(UNIQUE users_email_key), more than the column holds: public.users.email is character varying(50)"
    ) in message
    roomy = _table("public.users", {"email": "character varying(56)"}, unique=(("email",),))
    plan = _plan(
        tmp_path, _catalog(roomy), _rules("public.users", "email: { action: fake, provider: email }")
    )
    assert _masker(plan, "public.users", "email")("jane@acme.com") == GOLDEN_TAGGED_EMAIL


def test_hash_is_cut_to_the_column_length(tmp_path: Path) -> None:
    catalog = _catalog(_table("public.t", {"token": "character varying(32)", "code": "character(20)"}))
    plan = _plan(tmp_path, catalog, _rules("public.t", "token: { action: hash }\ncode: { action: hash }"))
    assert _masker(plan, "public.t", "token")("tok_123") == GOLDEN_HASH[:32]
    assert (
        _masker(plan, "public.t", "code")("tok_123" + " " * 13) == GOLDEN_HASH[:20]
    )  # blank padding dropped
    assert plan.for_table(TableName.parse("public.t")).columns[0] == ColumnMasking(
        "token", "hash (first 32 hex)"
    )


def test_hash_on_a_unique_short_column_needs_80_bits(tmp_path: Path) -> None:
    catalog = _catalog(_table("public.t", {"token": "character varying(16)"}, unique=(("token",),)))
    message = _refusal(tmp_path, catalog, _rules("public.t", "token: { action: hash }"))
    assert "hash needs at least 20 hex digits on a unique column (UNIQUE t_token_key) (80 bits" in message


def test_uuid_columns_take_the_uuid_provider_or_a_uuid_shaped_hash(tmp_path: Path) -> None:
    catalog = _catalog(_table("public.t", {"a": "uuid", "b": "uuid"}, unique=(("a",), ("b",))))
    plan = _plan(
        tmp_path, catalog, _rules("public.t", "a: { action: fake, provider: uuid }\nb: { action: hash }")
    )
    assert _masker(plan, "public.t", "a")("x") == values.fake(SALT, "public.t.a", "uuid", {})("x")
    assert uuid.UUID(_masker(plan, "public.t", "b")("tok_123") or "").hex == GOLDEN_HASH[:32]


def test_date_columns_take_dob_but_not_on_a_unique_column(tmp_path: Path) -> None:
    plan = _plan(
        tmp_path,
        _catalog(_table("public.t", {"born": "date"})),
        _rules("public.t", "born: { action: fake, provider: dob }"),
    )
    assert _masker(plan, "public.t", "born")("1980-01-01") == values.fake(SALT, "public.t.born", "dob", {})(
        "1980-01-01"
    )
    unique = _catalog(_table("public.t", {"born": "date"}, unique=(("born",),)))
    message = _refusal(tmp_path, unique, _rules("public.t", "born: { action: fake, provider: dob }"))
    assert (
        "fake dob cannot be made unique in this column: public.t.born is date, which cannot hold the uniqueness tag"
        in message
    )


def test_whole_json_column_fake_and_hash_write_json_strings(tmp_path: Path) -> None:
    catalog = _catalog(_table("public.t", {"doc": "jsonb", "raw": "json"}))
    plan = _plan(
        tmp_path, catalog, _rules("public.t", "doc: { action: hash }\nraw: { action: fake, provider: email }")
    )
    doc, raw = _masker(plan, "public.t", "doc"), _masker(plan, "public.t", "raw")
    assert json.loads(doc('"tok_123"') or "") == GOLDEN_HASH
    assert json.loads(doc('{"a": 1}') or "") == values.hashed(SALT)('{"a": 1}')
    assert json.loads(raw('"jane@acme.com"') or "") == values.fake(SALT, "public.t.raw", "email", {})(
        "jane@acme.com"
    )
    assert doc("null") == "null" and doc(None) is None


def test_regex_mask_in_the_plan(tmp_path: Path) -> None:
    catalog = _catalog(
        _table(
            "public.t",
            {"note": "text", "short": "character varying(12)", "code": "text", "pin": "character(6)"},
            unique=(("code",),),
        )
    )
    rules = _rules(
        "public.t",
        r"""
        note: { action: regex_mask, pattern: '\b\d{3}-\d{4}\b', replace: '[phone]', flags: [ASCII] }
        short: { action: regex_mask, pattern: '(\d{2})\d{2,}', replace: '\1**' }
        code: { action: regex_mask, pattern: '\d', replace: '#' }
        pin: { action: regex_mask, pattern: '\d', replace: '*' }
        """,
    )
    plan = _plan(tmp_path, catalog, rules)
    assert _masker(plan, "public.t", "note")("call 555-0100") == "call [phone]"
    assert _masker(plan, "public.t", "short")("id 123456") == "id 12**"
    code = _masker(plan, "public.t", "code")("A1")
    assert code is not None and code.startswith("A#-") and len(code) == 3 + values.TAG_LENGTH
    assert _masker(plan, "public.t", "pin")("12a   ") == "**a"
    described = {c.column: c.action for c in plan.for_table(TableName.parse("public.t")).columns}
    assert described == {
        "note": "regex_mask",
        "short": "regex_mask",
        "code": "regex_mask (uniqueness tag)",
        "pin": "regex_mask",
    }


def test_regex_mask_on_a_unique_bounded_column_is_refused(tmp_path: Path) -> None:
    catalog = _catalog(_table("public.t", {"code": "character varying(40)"}, unique=(("code",),)))
    message = _refusal(
        tmp_path, catalog, _rules("public.t", r"code: { action: regex_mask, pattern: '\d', replace: '#' }")
    )
    assert "needs the 17-character uniqueness tag" in message


def test_domains_enums_and_extension_types_are_left_to_the_target(tmp_path: Path) -> None:
    catalog = _catalog(_table("public.t", {"email": "public.email_address"}))
    plan = _plan(tmp_path, catalog, _rules("public.t", "email: { action: fake, provider: email }"))
    assert _masker(plan, "public.t", "email")("jane@acme.com") == values.fake(
        SALT, "public.t.email", "email", {}
    )("jane@acme.com")


def test_exact_numbers_inside_a_masked_subtree_are_masked_by_their_literal() -> None:
    from repro_pipeline.engine.masking.json_paths import compile_root_masker

    masker = compile_root_masker(values.hashed(SALT))
    first = masker('{"a": 0.10000000000000000001}')
    second = masker('{"a": 0.20000000000000000001}')
    assert first is not None and second is not None and first != second
    subtree = compile_document_masker([JsonPathAction("$.x", values.hashed(SALT))])
    assert subtree('{"x": {"a": 0.10000000000000000001}}') != subtree('{"x": {"a": 0.20000000000000000001}}')


def test_canonically_equivalent_values_get_distinct_tags_on_a_unique_column() -> None:
    masker = values.fake(SALT, "public.users.name", "full_name", {}, tagged=True)
    composed, decomposed = "Jos\u00e9", "Jose\u0301"
    assert masker(composed) != masker(decomposed)
    untagged = values.fake(SALT, "public.users.name", "full_name", {})
    assert untagged(composed) == untagged(decomposed)


def test_one_masker_keeps_each_documents_exact_numbers_apart() -> None:
    masker = compile_document_masker([JsonPathAction("$.actor.email", values.hashed(SALT))])
    first = masker('{"a": 0.10000000000000000001, "b": 1e400, "actor": {"email": "x"}}')
    second = masker('{"a": 12345678901234567890.5, "actor": {"email": "x"}}')
    assert (
        first
        == f'{{"a": 0.10000000000000000001, "b": 1e400, "actor": {{"email": "{values.hashed(SALT)("x")}"}}}}'
    )
    assert second == f'{{"a": 12345678901234567890.5, "actor": {{"email": "{values.hashed(SALT)("x")}"}}}}'


def test_an_exact_number_masked_as_part_of_a_subtree_is_masked_as_its_literal() -> None:
    masker = compile_document_masker([JsonPathAction("$.x", values.hashed(SALT))])
    subtree = '{"n": 0.10000000000000000001}'
    assert masker('{"x": {"n": 0.10000000000000000001}}') == f'{{"x": "{values.hashed(SALT)(subtree)}"}}'


JSONB_TEXT = '{"n": 1.50, "actor": {"name": "Jane"}, "note": "no email key here"}'


def test_a_jsonb_document_without_the_paths_last_keys_is_returned_as_it_came() -> None:
    jsonb = compile_document_masker([JsonPathAction("$.actor.email", values.hashed(SALT))], jsonb=True)
    assert jsonb(JSONB_TEXT) is JSONB_TEXT
    parsed = compile_document_masker([JsonPathAction("$.actor.email", values.hashed(SALT))])
    assert parsed(JSONB_TEXT) == JSONB_TEXT and parsed(JSONB_TEXT) is not JSONB_TEXT


def test_numbers_keep_their_literal_unless_python_writes_them_the_same() -> None:
    masker = compile_document_masker([JsonPathAction("$.a", None)])
    text = '{"a": 1, "b": [1.50, 1E3, -0.0, 0.1, 2.5e-7, 100, 12345678901234567890123, -1.0]}'
    assert masker(text) == text.replace('"a": 1, ', "")


def test_a_jsonb_document_holding_a_paths_last_key_is_masked() -> None:
    jsonb = compile_document_masker(
        [JsonPathAction("$.actor.email", values.hashed(SALT)), JsonPathAction("$.notes", None)], jsonb=True
    )
    assert jsonb('{"actor": {"email": "jane@acme.com"}}') == (
        f'{{"actor": {{"email": "{values.hashed(SALT)("jane@acme.com")}"}}}}'
    )
    assert jsonb('{"notes": "x", "other": 1}') == '{"other": 1}'


def test_a_json_document_whose_key_is_written_with_escapes_is_still_masked() -> None:
    masker = compile_document_masker([JsonPathAction("$.actor.email", values.hashed(SALT))])
    assert masker('{"actor": {"em\\u0061il": "jane@acme.com"}}') == (
        f'{{"actor": {{"email": "{values.hashed(SALT)("jane@acme.com")}"}}}}'
    )


@pytest.mark.parametrize(
    ("path", "document"), [("$['odd.key']", '{"odd.key": "a"}'), ("$..email", '{"email": "b"}')]
)
def test_a_jsonb_document_is_parsed_whenever_a_path_is_not_dotted(path: str, document: str) -> None:
    masker = compile_document_masker([JsonPathAction(path, values.static("x"))], jsonb=True)
    assert masker(document) == document.replace('"a"', '"x"').replace('"b"', '"x"')
