"""Secrets in a store: vault:// against a real HTTP server speaking Vault's KV v2 API on 127.0.0.1, and the
optional AWS and Azure extras' message when they are not installed. No error or log line holds a secret."""

from __future__ import annotations

import logging
import secrets
import socket
import sys
from collections.abc import Iterator

import pytest

from repro_pipeline.engine.errors import SecretError
from repro_pipeline.engine.secrets import resolve_salt, resolve_secret
from repro_pipeline_tests.vault_api import VaultApi

WHAT = "global_salt in mask-rules.yaml"


@pytest.fixture
def salt_value() -> str:
    return secrets.token_hex(32)


@pytest.fixture
def token() -> str:
    return f"hvs.{secrets.token_urlsafe(24)}"


@pytest.fixture
def vault(
    token: str, salt_value: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> Iterator[VaultApi]:
    caplog.set_level(logging.DEBUG)  # every library's debug lines, to show none holds a secret
    with VaultApi(token, {"secret/repro/billing": {"salt": salt_value, "other": "x" * 40}}) as api:
        monkeypatch.setenv("VAULT_ADDR", api.address)
        monkeypatch.setenv("VAULT_TOKEN", token)
        yield api


def test_vault_reference_reads_the_field_of_the_kv2_secret(vault: VaultApi, salt_value: str) -> None:
    assert resolve_secret("vault://secret/repro/billing#salt", what=WHAT).reveal() == salt_value
    assert vault.requests == ["/v1/secret/data/repro/billing"]


def test_the_salt_can_come_from_vault(vault: VaultApi, salt_value: str) -> None:
    assert resolve_salt("vault://secret/repro/billing#salt", what=WHAT).reveal() == salt_value


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


VAULT_ERRORS = [
    (
        "no-such-path",
        "vault://secret/repro/nothing#salt",
        {},
        "Vault secret secret/repro/nothing does not exist",
    ),
    ("not-a-kv-mount", "vault://kv/repro/billing#salt", {}, "Vault secret kv/repro/billing does not exist"),
    ("no-such-field", "vault://secret/repro/billing#pepper", {}, "has no field 'pepper'"),
    (
        "no-field-given",
        "vault://secret/repro/billing",
        {},
        "a Vault reference is vault://<mount>/<path>#<key>",
    ),
    ("no-path-given", "vault://secret#salt", {}, "a Vault reference is vault://<mount>/<path>#<key>"),
    ("wrong-token", "vault://secret/repro/billing#salt", {"VAULT_TOKEN": "hvs.wrong"}, "refused the token"),
    ("no-token", "vault://secret/repro/billing#salt", {"VAULT_TOKEN": ""}, "VAULT_TOKEN is not set or empty"),
    ("no-address", "vault://secret/repro/billing#salt", {"VAULT_ADDR": ""}, "VAULT_ADDR is not set or empty"),
    (
        "address-with-a-bad-port",
        "vault://secret/repro/billing#salt",
        {"VAULT_ADDR": "http://admin:hunter2-secret@127.0.0.1:notaport"},
        "VAULT_ADDR is not an http(s)://host[:port] address",
    ),
    (
        "address-without-a-scheme",
        "vault://secret/repro/billing#salt",
        {"VAULT_ADDR": "127.0.0.1:{port}"},
        "VAULT_ADDR is not an http(s)://host[:port] address",
    ),
    (
        "unreachable",
        "vault://secret/repro/billing#salt",
        {"VAULT_ADDR": "http://admin:hunter2-secret@127.0.0.1:{port}"},
        "cannot reach Vault at http://127.0.0.1:{port} (ConnectionError)",
    ),
]


@pytest.mark.parametrize(
    ("reference", "environment", "says"),
    [case[1:] for case in VAULT_ERRORS],
    ids=[case[0] for case in VAULT_ERRORS],
)
def test_vault_errors_name_the_reference_and_never_a_secret(
    vault: VaultApi,
    token: str,
    salt_value: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    reference: str,
    environment: dict[str, str],
    says: str,
) -> None:
    port = _closed_port()
    for name, value in environment.items():
        monkeypatch.setenv(name, value.format(port=port))
    with pytest.raises(SecretError) as raised:
        resolve_secret(reference, what=WHAT)
    message = str(raised.value)
    assert message.startswith(f"{WHAT}: ")
    assert says.format(port=port) in message
    for secret in (token, salt_value, "hunter2-secret", "x" * 40):
        assert secret not in message
        assert secret not in caplog.text


def test_a_sealed_vault_is_named_by_its_error_not_its_answer(vault: VaultApi) -> None:
    vault.answer_status = 503
    with pytest.raises(SecretError, match=r"Vault answered with an error \(VaultDown\)") as raised:
        resolve_secret("vault://secret/repro/billing#salt", what=WHAT)
    assert "sealed" not in str(raised.value)


@pytest.mark.parametrize(
    ("reference", "hidden_module", "extra"),
    [
        ("aws-sm://prod/repro-salt?region=eu-west-1&key=salt", "boto3", "aws"),
        ("azure-kv://repro-vault/repro-salt", "azure", "azure"),
    ],
)
def test_a_cloud_store_without_its_extra_names_the_extra_to_install(
    monkeypatch: pytest.MonkeyPatch, reference: str, hidden_module: str, extra: str
) -> None:
    monkeypatch.setitem(sys.modules, hidden_module, None)  # as if the extra were not installed
    with pytest.raises(SecretError) as raised:
        resolve_secret(reference, what=WHAT)
    scheme = reference.split("://")[0]
    assert f"{WHAT}: {scheme}:// secrets need the optional '{extra}' extra, which is not installed" in str(
        raised.value
    )
    assert raised.value.remedy == f"pip install 'repro_pipeline[{extra}]'"
    assert raised.value.exit_code == 4
