"""``pseudonym`` and ``hmac_hash``, keyed by ``pseudonym_key``: their outputs, and when and how the key is
resolved. Pure functions and plans over catalogs built by hand; the load on real servers is in
``test_keyed_actions_target.py``."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import textwrap
from pathlib import Path

import pytest

from repro_pipeline.engine.config import load_config
from repro_pipeline.engine.errors import ConfigError, SecretError
from repro_pipeline.engine.masking import values
from repro_pipeline.engine.masking.plan import MaskPlan, build_mask_plan
from repro_pipeline.engine.secrets import Secret
from repro_pipeline.engine.source.catalog import Catalog
from repro_pipeline_tests.engine.masking.test_masking import _catalog, _masker, _rules, _table

SALT = Secret("s" * 32)
KEY_TEXT = "k" * 32
KEY = Secret(KEY_TEXT)
PEOPLE = _table(
    "public.people",
    {"email": "text", "name": "text", "token": "text", "short": "character varying(20)", "ref": "uuid"},
    unique=(("email",),),
)
CATALOG = _catalog(PEOPLE)


def _length_prefixed(text: str) -> bytes:
    return len(text.encode()).to_bytes(4, "big") + text.encode()


def _plan(tmp_path: Path, rules: str, catalog: Catalog = CATALOG, salt: Secret = SALT) -> MaskPlan:
    (tmp_path / "mask-rules.yaml").write_text(textwrap.dedent(rules).lstrip("\n"))
    (tmp_path / "ext.yaml").write_text('version: "1.0"\n')
    config = load_config(tmp_path / "mask-rules.yaml", tmp_path / "ext.yaml")
    return build_mask_plan(config, catalog, salt)


@pytest.fixture
def key_in_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PSEUDONYM_KEY", KEY_TEXT)


# --- outputs ------------------------------------------------------------------------------------------------


def test_hmac_hash_is_hmac_sha256_of_the_column_path_and_value_keyed_by_the_pseudonym_key() -> None:
    expected = hmac.new(
        KEY_TEXT.encode(),
        _length_prefixed("public.people.token") + _length_prefixed("tok_123"),
        hashlib.sha256,
    )
    assert values.hmac_hashed(KEY, "public.people.token")("tok_123") == expected.hexdigest()
    encoded = values.hmac_hashed(KEY, "public.people.token", encoding="base64url")("tok_123")
    assert len(encoded) == 43 and "=" not in encoded
    assert base64.urlsafe_b64decode(encoded + "=") == expected.digest()


def test_hmac_hash_is_scoped_to_its_column_and_its_key() -> None:
    token = values.hmac_hashed(KEY, "public.people.token")
    assert token("tok_123") == token("tok_123")
    assert token("tok_123") != values.hmac_hashed(KEY, "public.orders.token")("tok_123")
    assert token("tok_123") != values.hmac_hashed(Secret("j" * 32), "public.people.token")("tok_123")
    assert token(None) is None and token("") == ""


def test_pseudonym_is_the_fake_seeded_by_the_pseudonym_key(tmp_path: Path, key_in_environment: None) -> None:
    plan = _plan(tmp_path, _rules("public.people", "name: { action: pseudonym, provider: full_name }"))
    pseudonym = _masker(plan, "public.people", "name")
    assert pseudonym("Jane Doe") == values.fake(KEY, "public.people.name", "full_name", {})("Jane Doe")
    assert pseudonym("Jane Doe") != values.fake(SALT, "public.people.name", "full_name", {})("Jane Doe")
    again = _masker(
        _plan(tmp_path, _rules("public.people", "name: { action: pseudonym, provider: full_name }")),
        "public.people",
        "name",
    )
    assert again("Jane Doe") == pseudonym("Jane Doe")


def test_a_unique_pseudonym_column_gets_the_uniqueness_tag(tmp_path: Path, key_in_environment: None) -> None:
    plan = _plan(tmp_path, _rules("public.people", "email: { action: pseudonym, provider: email }"))
    described = {column.column: column.action for column in plan.for_table(PEOPLE.name).columns}
    assert described == {"email": "pseudonym:email (uniqueness tag)"}
    assert "+" in (_masker(plan, "public.people", "email")("jane@acme.com") or "")


def test_hmac_hash_fits_its_column(tmp_path: Path, key_in_environment: None) -> None:
    rules = _rules(
        "public.people",
        """
        token: { action: hmac_hash, encoding: base64url }
        short: { action: hmac_hash }
        ref: { action: hmac_hash }
        """,
    )
    plan = _plan(tmp_path, rules)
    described = {column.column: column.action for column in plan.for_table(PEOPLE.name).columns}
    assert described == {
        "token": "hmac_hash (base64url)",
        "short": "hmac_hash (hex, first 20 characters)",
        "ref": "hmac_hash (as uuid)",
    }
    assert len(_masker(plan, "public.people", "short")("x") or "") == 20


@pytest.mark.parametrize(
    ("columns", "says"),
    [
        ("id: { action: hmac_hash }", "hmac_hash gives hex text that does not fit the column"),
        (
            "ref: { action: hmac_hash, encoding: base64url }",
            "hmac_hash gives base64url text that does not fit",
        ),
        ("short: { action: hmac_hash, encoding: base64url }", None),
        ("id: { action: pseudonym, provider: email }", "pseudonym email gives text that does not fit"),
    ],
)
def test_a_keyed_rule_that_cannot_fit_its_column_is_refused(
    tmp_path: Path, key_in_environment: None, columns: str, says: str | None
) -> None:
    tiny = _table("public.people", {"ref": "uuid", "short": "character varying(10)"})
    if says is None:  # 10 base64url characters are 60 bits: fewer than 64
        says = "hmac_hash needs at least 11 base64url characters"
    with pytest.raises(ConfigError, match=says):
        _plan(tmp_path, _rules("public.people", columns), _catalog(tiny))


def test_an_unknown_encoding_is_refused_naming_the_two(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="'hex' or 'base64url'"):
        _plan(tmp_path, _rules("public.people", "token: { action: hmac_hash, encoding: base32 }"))


# --- the key ------------------------------------------------------------------------------------------------


def test_the_key_is_not_resolved_when_no_rule_uses_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PSEUDONYM_KEY", raising=False)
    rules = 'version: "1.0"\npseudonym_key: env://REPRO_TEST_NO_SUCH_KEY\n' + _rules(
        "public.people", "name: { action: fake, provider: full_name }"
    ).removeprefix('version: "1.0"\n')
    _plan(tmp_path, rules)


def test_the_key_comes_from_its_reference_before_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, key_in_environment: None
) -> None:
    other = secrets.token_hex(32)
    monkeypatch.setenv("REPRO_TEST_PSEUDONYM_KEY", other)
    rules = 'version: "1.0"\npseudonym_key: ${REPRO_TEST_PSEUDONYM_KEY}\n' + _rules(
        "public.people", "token: { action: hmac_hash }"
    ).removeprefix('version: "1.0"\n')
    masker = _masker(_plan(tmp_path, rules), "public.people", "token")
    assert masker("tok") == values.hmac_hashed(Secret(other), "public.people.token")("tok")


def _keyed_rules(reference: str | None) -> str:
    head = 'version: "1.0"\n' + (f"pseudonym_key: {reference}\n" if reference else "")
    return head + _rules("public.people", "token: { action: hmac_hash }").removeprefix('version: "1.0"\n')


@pytest.mark.parametrize(
    ("reference", "environment", "says"),
    [
        (
            None,
            None,
            "PSEUDONYM_KEY (no pseudonym_key in the config): environment variable PSEUDONYM_KEY is not set",
        ),
        ("env://REPRO_TEST_NO_SUCH_KEY", None, "pseudonym_key in "),
        ("${REPRO_TEST_SHORT_KEY}", "short-key-of-31-bytes-xxxxxxxxx", "the pseudonym key is 31 bytes long"),
        ("${REPRO_TEST_SHORT_KEY}", "s" * 32, "the pseudonym key is the salt"),
    ],
    ids=["unset", "unresolvable", "short", "the-salt"],
)
def test_a_missing_short_or_reused_key_is_refused_without_showing_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, reference: str | None, environment: str | None, says: str
) -> None:
    monkeypatch.delenv("PSEUDONYM_KEY", raising=False)
    monkeypatch.delenv("REPRO_TEST_NO_SUCH_KEY", raising=False)
    if environment is not None:
        monkeypatch.setenv("REPRO_TEST_SHORT_KEY", environment)
    with pytest.raises(SecretError) as raised:
        _plan(tmp_path, _keyed_rules(reference))
    assert says in str(raised.value)
    assert raised.value.exit_code == 4
    if environment is not None:
        assert environment not in str(raised.value)


# --- seed_alias across keys -----------------------------------------------------------------------------------


def test_a_seed_alias_shared_by_a_fake_and_a_pseudonym_is_refused(
    tmp_path: Path, key_in_environment: None
) -> None:
    """An alias promises one output per original; a fake (the salt) and a pseudonym (the key) cannot keep it."""
    rules = _rules(
        "public.people",
        """
        name: { action: pseudonym, provider: full_name, seed_alias: person }
        token: { action: fake, provider: full_name, seed_alias: person }
        """,
    )
    with pytest.raises(ConfigError) as raised:
        _plan(tmp_path, rules)
    assert "seed_alias person is used by pseudonym" in str(raised.value)
    assert "tables.public.people.columns.token" in str(raised.value)
    assert "use the same action" in str(raised.value.remedy)


def test_a_seed_alias_shared_by_pseudonyms_gives_one_output(tmp_path: Path, key_in_environment: None) -> None:
    rules = _rules(
        "public.people",
        """
        name: { action: pseudonym, provider: full_name, seed_alias: person }
        token: { action: pseudonym, provider: full_name, seed_alias: person }
        """,
    )
    plan = _plan(tmp_path, rules)
    assert _masker(plan, "public.people", "name")("Jane Doe") == _masker(plan, "public.people", "token")(
        "Jane Doe"
    )
