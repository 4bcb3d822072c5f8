"""Secret values (salt, tokens): where they come from, and a wrapper that never prints them."""

from __future__ import annotations

import errno
import hashlib
import os
import re
import stat
from collections.abc import Callable, Mapping
from pathlib import Path

from repro_pipeline.engine import secret_stores
from repro_pipeline.engine.errors import SecretError

MIN_SALT_BYTES = 32
_MAX_SECRET_FILE_BYTES = 64 * 1024
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_WHOLE_VALUE_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_STORES: Mapping[str, Callable[..., str]] = {
    "vault": secret_stores.read_vault,
    "aws-sm": secret_stores.read_aws_secrets_manager,
    "azure-kv": secret_stores.read_azure_key_vault,
}
SUPPORTED_SCHEMES = ("env", "file", *_STORES)
_KNOWN_UNSUPPORTED_SCHEMES = (
    "gcp-sm",
    "http",
    "https",
    "s3",
    "postgres",
    "postgresql",
)
_KERNEL_FILESYSTEMS = (Path("/proc"), Path("/sys"))  # regular-looking files that are process state


class Secret:
    """A secret string: ``str()``, ``repr()`` and formatting show a placeholder, never the value."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def fingerprint(self) -> str:
        """A short non-reversible identifier, safe to log: tells two secrets apart without showing either."""
        return hashlib.sha256(self._value.encode()).hexdigest()[:16]

    def __repr__(self) -> str:
        return "Secret(<redacted>)"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


def resolve_secret(reference: str, *, what: str) -> Secret:
    """Resolve ``env://VAR``, a whole-value ``${VAR}``, ``file:///path``, a secret store's reference
    (``vault://``, ``aws-sm://``, ``azure-kv://``) or a literal into a ``Secret``.

    ``what`` names the setting in error messages (for example ``global_salt in config/mask-rules.yaml``).
    """
    whole_var = _WHOLE_VALUE_VAR.fullmatch(reference)
    if whole_var:
        reference = f"env://{whole_var.group(1)}"
    elif reference.startswith("${"):
        raise SecretError(
            f"{what}: a ${{...}} reference must be the whole value and name a valid environment variable",
            "write ${VARIABLE} or env://VARIABLE, with letters, digits and _ only",
        )
    if reference.startswith("env://"):
        return Secret(_from_environment(reference.removeprefix("env://"), what=what))
    if reference.startswith("file://"):
        return Secret(_from_file(Path(reference.removeprefix("file://")), what=what))
    scheme = reference.split("://", 1)[0]
    if "://" in reference and scheme in _STORES:
        return Secret(_STORES[scheme](reference, what=what))
    if "://" in reference:
        # Name the scheme only when it is a known one: the text may be a literal secret that holds "://".
        shown = f"scheme {scheme!r}" if scheme in _KNOWN_UNSUPPORTED_SCHEMES else "this scheme"
        raise SecretError(
            f"{what}: secret {shown} is not supported",
            "use env://VARIABLE, ${VARIABLE}, file:///absolute/path, vault://, aws-sm://, azure-kv:// or a "
            "literal value without '://'",
        )
    return Secret(reference)


def resolve_salt(reference: str | None, *, what: str) -> Secret:
    """The masking salt: from the config reference, else from ``ANONYMIZATION_SALT``; at least 32 bytes."""
    if not reference:
        reference, what = "env://ANONYMIZATION_SALT", "ANONYMIZATION_SALT (no global_salt in the config)"
    salt = resolve_secret(reference, what=what)
    length = len(salt.reveal().encode())
    if length < MIN_SALT_BYTES:
        raise SecretError(
            f"{what}: the salt is {length} bytes long; at least {MIN_SALT_BYTES} are required",
            "generate one with `python -c 'import secrets; print(secrets.token_hex(32))'` and keep it "
            "with your other production credentials",
        )
    return salt


MIN_PSEUDONYM_KEY_BYTES = 32


def resolve_pseudonym_key(reference: str | None, *, what: str, salt: Secret) -> Secret:
    """The key of ``pseudonym`` and ``hmac_hash``: from the config reference, else from ``PSEUDONYM_KEY``; at
    least 32 bytes, and not the salt (a key of its own, so a salt that leaks does not give the pseudonyms)."""
    if not reference:
        reference, what = "env://PSEUDONYM_KEY", "PSEUDONYM_KEY (no pseudonym_key in the config)"
    key = resolve_secret(reference, what=what)
    length = len(key.reveal().encode())
    if length < MIN_PSEUDONYM_KEY_BYTES:
        raise SecretError(
            f"{what}: the pseudonym key is {length} bytes long; at least {MIN_PSEUDONYM_KEY_BYTES} are required",
            "generate one with `python -c 'import secrets; print(secrets.token_hex(32))'`",
        )
    if key == salt:
        raise SecretError(
            f"{what}: the pseudonym key is the salt", "generate a key of its own for pseudonym and hmac_hash"
        )
    return key


def _from_environment(name: str, *, what: str) -> str:
    if not _ENV_NAME.fullmatch(name):
        raise SecretError(f"{what}: {name!r} is not a valid environment variable name")
    value = os.environ.get(name)
    if not value:
        raise SecretError(f"{what}: environment variable {name} is not set or empty", f"export {name}=...")
    return value


def _from_file(path: Path, *, what: str) -> str:
    if not path.is_absolute():
        raise SecretError(f"{what}: file:// secrets need an absolute path, got {str(path)!r}")
    resolved = path.resolve()
    if any(resolved == root or root in resolved.parents for root in _KERNEL_FILESYSTEMS):
        raise SecretError(
            f"{what}: secret file {path} is under /proc or /sys", "keep the secret in a file of its own"
        )
    try:
        # O_NOFOLLOW and fstat: what is checked is the file that is read, not one swapped in between.
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise SecretError(
                f"{what}: secret file {path} is not a regular file (symlinks are refused)"
            ) from None
        raise SecretError(f"{what}: cannot read secret file {path}: {exc.strerror}") from None
    try:
        info = os.fstat(descriptor)
        if not stat.S_ISREG(info.st_mode):
            raise SecretError(f"{what}: secret file {path} is not a regular file (symlinks are refused)")
        if info.st_mode & (stat.S_IRGRP | stat.S_IROTH):
            raise SecretError(
                f"{what}: secret file {path} is readable by group or others (mode {stat.S_IMODE(info.st_mode):o})",
                f"chmod 600 {path}",
            )
        if info.st_size > _MAX_SECRET_FILE_BYTES:
            raise SecretError(f"{what}: secret file {path} is larger than {_MAX_SECRET_FILE_BYTES} bytes")
        raw = os.read(descriptor, _MAX_SECRET_FILE_BYTES + 1)
    finally:
        os.close(descriptor)
    try:
        value = raw.decode("utf-8").rstrip("\r\n")
    except UnicodeDecodeError:
        raise SecretError(f"{what}: secret file {path} is not UTF-8 text") from None
    if not value:
        raise SecretError(f"{what}: secret file {path} is empty")
    return value
