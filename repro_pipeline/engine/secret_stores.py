"""Secrets kept in a secret store: HashiCorp Vault (KV v2), AWS Secrets Manager, Azure Key Vault.

Each reads one secret through the store's own client and returns its text. Errors name the reference and what
went wrong (the store's status, the client's exception class), never the store's answer: a body may quote
what it holds. The AWS and Azure clients are optional extras, imported only when a reference needs them.
"""

from __future__ import annotations

import json
import os
from typing import Any
from urllib.parse import parse_qs, urlsplit

from repro_pipeline.engine.errors import SecretError

TIMEOUT_SECONDS = 10  # connect and read: a store that does not answer fails the run, it never hangs it


def read_vault(reference: str, *, what: str) -> str:
    """``vault://<mount>/<path>#<key>``: field ``key`` of the latest version of ``path`` in the KV v2 engine
    mounted at ``mount``, at ``$VAULT_ADDR`` with the token ``$VAULT_TOKEN``."""
    import hvac
    import requests

    mount, path, key = _vault_parts(reference, what=what)
    address, token = _vault_address(what=what), _required_env("VAULT_TOKEN", what=what)
    named = f"{what}: Vault secret {mount}/{path}"
    client = hvac.Client(url=address, token=token, timeout=TIMEOUT_SECONDS)
    try:
        answer = client.secrets.kv.v2.read_secret_version(
            path=path, mount_point=mount, raise_on_deleted_version=True
        )
    except hvac.exceptions.InvalidPath:
        raise SecretError(
            f"{named} does not exist (or its latest version is deleted)",
            f"check the mount ({mount}) and the path ({path}); the mount must be a KV version 2 engine",
        ) from None
    except (hvac.exceptions.Unauthorized, hvac.exceptions.Forbidden):
        raise SecretError(
            f"{named}: Vault refused the token in VAULT_TOKEN",
            f"give the token a policy with read on {mount}/data/{path}, or renew it",
        ) from None
    except hvac.exceptions.VaultError as exc:
        raise SecretError(f"{named}: Vault answered with an error ({type(exc).__name__})") from None
    except requests.exceptions.RequestException as exc:
        raise SecretError(
            f"{what}: cannot reach Vault at {_origin(address)} ({type(exc).__name__})",
            "check VAULT_ADDR and that Vault is up",
        ) from None
    fields = _dig(answer, "data", "data")
    if not isinstance(fields, dict):
        raise SecretError(
            f"{named}: the answer is not a KV version 2 secret", "check that the mount is KV v2"
        )
    return _field(fields, key, named=named)


def read_aws_secrets_manager(reference: str, *, what: str) -> str:
    """``aws-sm://<secret-id>[?region=...&key=<json-key>&version=<version-id>]`` through boto3's default
    credentials (the task role, the environment, the shared config)."""
    try:
        import boto3
        import botocore.config
        import botocore.exceptions
    except ImportError:
        raise _missing_extra("aws-sm", "aws", what=what) from None
    parts = urlsplit(reference)
    secret_id = (parts.netloc + parts.path).strip("/")
    options = {name: values[-1] for name, values in parse_qs(parts.query).items()}
    if not secret_id:
        raise SecretError(
            f"{what}: aws-sm:// needs a secret id", "write aws-sm://<secret-id>[?key=<json-key>]"
        )
    named = f"{what}: AWS secret {secret_id}"
    config = botocore.config.Config(connect_timeout=TIMEOUT_SECONDS, read_timeout=TIMEOUT_SECONDS)
    request: dict[str, str] = {"SecretId": secret_id}
    if "version" in options:
        request["VersionId"] = options["version"]
    try:
        client = boto3.client("secretsmanager", region_name=options.get("region"), config=config)
        answer = client.get_secret_value(**request)
    except botocore.exceptions.ClientError as exc:
        code = _dig(exc.response, "Error", "Code")
        raise SecretError(
            f"{named}: AWS answered {code}", "check the id, the region and the role's access"
        ) from None
    except botocore.exceptions.BotoCoreError as exc:
        raise SecretError(f"{named}: cannot read it ({type(exc).__name__})") from None
    text = answer.get("SecretString")
    if not isinstance(text, str):
        raise SecretError(f"{named} holds binary data, not text")
    return _field(_json_object(text, named=named), options["key"], named=named) if "key" in options else text


def read_azure_key_vault(reference: str, *, what: str) -> str:
    """``azure-kv://<vault>/<secret>[?version=...]`` through azure-identity's DefaultAzureCredential."""
    try:
        from azure.core.exceptions import AzureError, ResourceNotFoundError
        from azure.identity import DefaultAzureCredential
        from azure.keyvault.secrets import SecretClient
    except ImportError:
        raise _missing_extra("azure-kv", "azure", what=what) from None
    parts = urlsplit(reference)
    vault, name = parts.netloc, parts.path.strip("/")
    if not vault or not name or "/" in name:
        raise SecretError(
            f"{what}: azure-kv:// needs a vault and a secret name", "write azure-kv://<vault>/<secret>"
        )
    version = parse_qs(parts.query).get("version", [None])[-1]
    named = f"{what}: Azure Key Vault secret {name} in {vault}"
    try:
        client = SecretClient(
            vault_url=f"https://{vault}.vault.azure.net",
            credential=DefaultAzureCredential(),
            connection_timeout=TIMEOUT_SECONDS,
            read_timeout=TIMEOUT_SECONDS,
        )
        value = client.get_secret(name, version).value
    except ResourceNotFoundError:
        raise SecretError(f"{named} does not exist", "check the vault and the secret's name") from None
    except AzureError as exc:
        raise SecretError(f"{named}: cannot read it ({type(exc).__name__})") from None
    if not isinstance(value, str) or not value:
        raise SecretError(f"{named} is empty")
    return value


def _missing_extra(scheme: str, extra: str, *, what: str) -> SecretError:
    return SecretError(
        f"{what}: {scheme}:// secrets need the optional '{extra}' extra, which is not installed",
        f"pip install 'repro_pipeline[{extra}]'",
    )


def _vault_parts(reference: str, *, what: str) -> tuple[str, str, str]:
    location, _, key = reference.removeprefix("vault://").partition("#")
    mount, _, path = location.strip("/").partition("/")
    if not mount or not path or not key:
        raise SecretError(
            f"{what}: a Vault reference is vault://<mount>/<path>#<key>",
            "name the KV v2 mount, the secret's path and the field, e.g. vault://secret/repro#salt",
        )
    return mount, path, key


def _required_env(name: str, *, what: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise SecretError(f"{what}: environment variable {name} is not set or empty", f"export {name}=...")
    return value


def _vault_address(*, what: str) -> str:
    """``$VAULT_ADDR``, checked to be an http(s) address before hvac reads it (its value is never shown:
    an address may hold a user and password)."""
    address = _required_env("VAULT_ADDR", what=what)
    parts = urlsplit(address)
    try:
        valid = parts.scheme in ("http", "https") and bool(parts.hostname) and parts.port != 0
    except ValueError:  # a port that is no number, or out of range
        valid = False
    if not valid:
        raise SecretError(
            f"{what}: VAULT_ADDR is not an http(s)://host[:port] address",
            "export VAULT_ADDR=https://<vault host>:8200 (Vault's API address)",
        )
    return address


def _origin(address: str) -> str:
    """The scheme, host and port of an address: never a user or password written in it."""
    parts = urlsplit(address)
    host = parts.hostname or "?"
    return f"{parts.scheme}://{host}" + (f":{parts.port}" if parts.port else "")


def _dig(data: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


def _json_object(text: str, *, named: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise SecretError(
            f"{named} is not a JSON object, so it has no fields", "remove key= from the reference"
        )
    return data


def _field(fields: dict[str, Any], key: str, *, named: str) -> str:
    value = fields.get(key)
    if value is None:
        raise SecretError(
            f"{named} has no field {key!r}", f"its fields: {', '.join(sorted(map(str, fields))) or 'none'}"
        )
    if not isinstance(value, str) or not value:
        raise SecretError(f"{named}: field {key!r} is not a non-empty string")
    return value
