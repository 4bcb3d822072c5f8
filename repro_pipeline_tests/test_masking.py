"""Maskers and providers: deterministic, safe shapes, and JSON path rules. Pure functions, no database.

The golden values below were computed once with the engine and are hard-coded on purpose: if one changes,
every existing repro database stops matching a rerun with the same salt, so a change must be deliberate.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import os
import subprocess
import sys
import uuid
from datetime import date
from pathlib import Path

import pytest

from repro_pipeline.engine.masking import values
from repro_pipeline.engine.masking.json_paths import (
    JsonPathAction,
    compile_document_masker,
    string_leaves,
    values_at,
)
from repro_pipeline.engine.masking.providers import PROVIDERS
from repro_pipeline.engine.masking.values import ValueMasker
from repro_pipeline.engine.secrets import Secret

PROJECT_ROOT = Path(__file__).resolve().parents[1]
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
from repro_pipeline.engine.masking import values
from repro_pipeline.engine.secrets import Secret
salt = Secret("s" * 32)
print(json.dumps([
    values.fake(salt, "public.users.email", "email", {})("jane@acme.com"),
    values.fake(salt, "public.users.full_name", "full_name", {})("Jane Doe"),
    values.hashed(salt)("tok_123"),
    values.fake(salt, "scope", "address", {})("x"),
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
    ]
    assert json.loads(completed.stdout) == in_process
    assert in_process[:3] == [GOLDEN_EMAIL, GOLDEN_FULL_NAME, GOLDEN_HASH]


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
