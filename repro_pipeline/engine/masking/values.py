"""Value maskers: deterministic functions from an original text value to its masked form.

Every masker maps NULL to NULL. The empty string stays empty (an empty value carries nothing to hide),
except under ``static`` (gives its value) and ``null`` (gives NULL).

Determinism: a fake's seed is HMAC-SHA256 keyed by the salt over the length-prefixed scope (column path or
``seed_alias``) and the NFC-normalized value, so outputs depend on nothing but (salt, scope, value, rule).
``normalize: lower`` seeds with the lowercased value instead (off by default: the default keeps every
output byte for byte).

Uniqueness tag: on a column under a primary key, unique constraint or unique index, a fake or regex mask
gets a tag: 16 characters of lowercase base32 holding 80 bits of the value's seed (``local+tag@domain``
for emails, ``value-tag`` otherwise). Distinct values get distinct seeds (HMAC-SHA256 is collision-
resistant), so a collision needs two of them to agree on 80 bits: for a million distinct values the
chance that any two do is about 4e-13 (n^2 / 2^81). A truly injective tag cannot be shorter than the
value itself and would have to be decryptable by whoever holds the salt (it would be an encryption of
the PII), so the tag is a truncated HMAC on purpose.
"""

from __future__ import annotations

import base64
import hmac
import re
import unicodedata
import uuid
from collections.abc import Callable, Mapping
from functools import lru_cache

from repro_pipeline.engine.masking.providers import PROVIDERS
from repro_pipeline.engine.masking.regex import MAX_VALUE_LENGTH
from repro_pipeline.engine.secrets import Secret

ValueMasker = Callable[[str | None], str | None]

NORMALIZATIONS = ("lower",)
TAG_LENGTH = 16  # characters of lowercase base32: 80 bits
TAG_SEPARATOR_LENGTH = 1  # "+" before an email's @, "-" otherwise
UNTAGGED_PROVIDERS = frozenset({"uuid"})  # 122 random bits already: unique without a tag
HASH_HEX_LENGTH = 64
HMAC_BASE64URL_LENGTH = 43  # 256 bits, unpadded

_CACHE_SIZE = 1 << 12
_CACHED_LENGTH = 1024  # longer values are masked every time rather than kept in the cache


def fake_seed(salt: Secret, scope: str, value: str, normalize: str | None = None) -> bytes:
    """HMAC-SHA256 keyed by the salt over the length-prefixed scope and NFC-normalized value.

    The scope is the column path (``public.users.email``) or a ``seed_alias``: the same value in two
    unaliased columns gets two unrelated fakes, and aliased columns share theirs. With
    ``normalize="lower"`` the value is lowercased first, so ``Jane@Acme.com`` and ``jane@acme.com`` share
    a seed.
    """
    return _seeder(salt, scope, normalize)(value)


def _seeder(salt: Secret, scope: str, normalize: str | None, *, nfc: bool = True) -> Callable[[str], bytes]:
    # The keyed state after the scope is computed once; each value continues a copy of it.
    keyed = hmac.new(salt.reveal().encode(), _length_prefixed(scope), "sha256")
    normalized = unicodedata.normalize

    def seed(value: str) -> bytes:
        state = keyed.copy()
        if normalize is not None:
            value = _normalized(value, normalize)
        elif nfc:
            value = normalized("NFC", value)
        state.update(_length_prefixed(value))
        return state.digest()

    return seed


def _tag_seeder(salt: Secret, scope: str, normalize: str | None) -> Callable[[str], bytes]:
    """Seeds for uniqueness tags: of the value as stored (no NFC), since a unique index tells apart
    canonically equivalent texts ('José' composed and decomposed) that share a fake's seed."""
    return _seeder(salt, scope, normalize, nfc=False)


def _hexdigester(salt: Secret) -> Callable[[str], str]:
    """Hex HMAC-SHA256 of a value keyed by the salt (no scope, no normalization)."""
    keyed = hmac.new(salt.reveal().encode(), digestmod="sha256")

    def hexdigest(text: str) -> str:
        state = keyed.copy()
        state.update(text.encode())
        return state.hexdigest()

    return hexdigest


def _normalized(value: str, normalize: str) -> str:
    if normalize != "lower":
        raise ValueError(f"unknown normalization {normalize!r}; use one of {', '.join(NORMALIZATIONS)}")
    return unicodedata.normalize("NFC", unicodedata.normalize("NFC", value).lower())


def _length_prefixed(text: str) -> bytes:
    data = text.encode()
    return len(data).to_bytes(4, "big") + data


def uniqueness_tag(seed: bytes) -> str:
    """80 bits of the seed (its last 10 bytes) as 16 characters of lowercase base32."""
    return base64.b32encode(seed[22:32]).decode("ascii").lower()


def _tagged(provider: str, output: str, seed: bytes) -> str:
    if provider == "email":
        local, _, domain = output.rpartition("@")
        return f"{local}+{uniqueness_tag(seed)}@{domain}"
    return f"{output}-{uniqueness_tag(seed)}"


def _cached(compute: Callable[[str], str]) -> ValueMasker:
    """``compute`` for non-empty values, with repeated values served from a cache (NULL and '' as is)."""
    cached = lru_cache(maxsize=_CACHE_SIZE)(compute)

    def mask(value: str | None) -> str | None:
        if not value:
            return value
        return cached(value) if len(value) <= _CACHED_LENGTH else compute(value)

    return mask


def fake(
    salt: Secret,
    scope: str,
    provider: str,
    params: Mapping[str, str],
    *,
    normalize: str | None = None,
    tagged: bool = False,
) -> ValueMasker:
    """A provider's fake of each value; ``tagged`` adds the uniqueness tag (except to uuids)."""
    generate = PROVIDERS[provider]
    frozen_params = dict(params)
    seed_of = _seeder(salt, scope, normalize)
    if normalize is not None:
        _normalized("", normalize)  # an unknown normalization fails here, not at the first value
    if tagged and provider not in UNTAGGED_PROVIDERS:
        tag_seed_of = _tag_seeder(salt, scope, normalize)

        def compute(value: str) -> str:
            return _tagged(provider, generate(seed_of(value), frozen_params), tag_seed_of(value))

    else:

        def compute(value: str) -> str:
            return generate(seed_of(value), frozen_params)

    return _cached(compute)


def hashed(
    salt: Secret, *, normalize: str | None = None, length: int = HASH_HEX_LENGTH, uuid_shaped: bool = False
) -> ValueMasker:
    """Hex HMAC-SHA256 of the value: the same in every column, so hashed tokens still join across tables.

    ``length`` keeps the first ``length`` hex digits (for a varchar(n) column); ``uuid_shaped`` writes
    the first 128 bits as a uuid (for a uuid column). With ``normalize="lower"`` the NFC-normalized,
    lowercased value is hashed.
    """
    hexdigest_of = _hexdigester(salt)
    if normalize is not None:
        _normalized("", normalize)

    def compute(value: str) -> str:
        hexdigest = hexdigest_of(value if normalize is None else _normalized(value, normalize))
        if uuid_shaped:
            return (
                f"{hexdigest[:8]}-{hexdigest[8:12]}-{hexdigest[12:16]}-{hexdigest[16:20]}-{hexdigest[20:32]}"
            )
        return hexdigest[:length]

    return _cached(compute)


def hmac_hashed(
    key: Secret, scope: str, *, encoding: str = "hex", length: int | None = None, uuid_shaped: bool = False
) -> ValueMasker:
    """``hmac_hash``: HMAC-SHA256 keyed by the pseudonym key over the length-prefixed column path and value, as
    hex or unpadded base64url. Scoped to the column: the same value hashes differently elsewhere.

    ``length`` keeps the first ``length`` characters (for a varchar(n) column); ``uuid_shaped`` writes the
    first 128 bits as a uuid (for a uuid column).
    """
    if encoding not in ("hex", "base64url"):
        raise ValueError(f"unknown encoding {encoding!r}; use hex or base64url")
    keyed = hmac.new(key.reveal().encode(), _length_prefixed(scope), "sha256")

    def compute(value: str) -> str:
        state = keyed.copy()
        state.update(_length_prefixed(value))
        digest = state.digest()
        if uuid_shaped:
            return str(uuid.UUID(bytes=digest[:16]))
        text = digest.hex() if encoding == "hex" else base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
        return text[:length]

    return _cached(compute)


def regex_mask(
    salt: Secret, scope: str, pattern: re.Pattern[str], replace: str, *, tagged: bool = False
) -> ValueMasker:
    """``pattern.sub(replace, value)``; ``tagged`` adds the uniqueness tag (``masked-tag``).

    A value longer than ``MAX_VALUE_LENGTH`` characters is never given to the regex engine: it is
    withheld whole and written as its ``hash`` (64 hex digits, which fit any column that held the value,
    and stay unique).
    """
    hexdigest_of, seed_of = _hexdigester(salt), _tag_seeder(salt, scope, None)
    substitute = pattern.sub

    def compute(value: str) -> str:
        if len(value) > MAX_VALUE_LENGTH:
            return hexdigest_of(value)
        masked = substitute(replace, value)
        return f"{masked}-{uniqueness_tag(seed_of(value))}" if tagged else masked

    return _cached(compute)


def static(replacement: str) -> ValueMasker:
    def mask(value: str | None) -> str | None:
        return None if value is None else replacement

    return mask


def null() -> ValueMasker:
    def mask(value: str | None) -> str | None:
        return None

    return mask


def unpadded(masker: ValueMasker) -> ValueMasker:
    """For character(n) columns: the value without its blank padding, as PostgreSQL compares it."""

    def mask(value: str | None) -> str | None:
        return masker(value if value is None else value.rstrip(" "))

    return mask
