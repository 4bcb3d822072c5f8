"""Value maskers: deterministic functions from an original text value to its masked form.

Every masker maps NULL to NULL. The empty string stays empty (an empty value carries nothing to hide),
except under ``static`` (gives its value) and ``null`` (gives NULL).
"""

from __future__ import annotations

import hashlib
import hmac
import unicodedata
from collections.abc import Callable, Mapping
from functools import lru_cache

from repro_pipeline.engine.masking.providers import PROVIDERS
from repro_pipeline.engine.secrets import Secret

ValueMasker = Callable[[str | None], str | None]

_CACHE_SIZE = 1 << 16


def fake_seed(salt: Secret, scope: str, value: str) -> bytes:
    """HMAC-SHA256 keyed by the salt over the length-prefixed scope and NFC-normalized value.

    The scope is the column path (``public.users.email``) or a ``seed_alias``: the same value in two
    unaliased columns gets two unrelated fakes, and aliased columns share theirs.
    """
    message = _length_prefixed(scope) + _length_prefixed(unicodedata.normalize("NFC", value))
    return hmac.new(salt.reveal().encode(), message, hashlib.sha256).digest()


def _length_prefixed(text: str) -> bytes:
    data = text.encode()
    return len(data).to_bytes(4, "big") + data


def fake(salt: Secret, scope: str, provider: str, params: Mapping[str, str]) -> ValueMasker:
    generate = PROVIDERS[provider]
    frozen_params = dict(params)

    @lru_cache(maxsize=_CACHE_SIZE)
    def mask(value: str | None) -> str | None:
        if not value:
            return value
        return generate(fake_seed(salt, scope, value), frozen_params)

    return mask


def hashed(salt: Secret) -> ValueMasker:
    """Hex HMAC-SHA256 of the value: the same in every column, so hashed tokens still join across tables."""
    key = salt.reveal().encode()

    @lru_cache(maxsize=_CACHE_SIZE)
    def mask(value: str | None) -> str | None:
        if not value:
            return value
        return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()

    return mask


def static(replacement: str) -> ValueMasker:
    def mask(value: str | None) -> str | None:
        return None if value is None else replacement

    return mask


def null() -> ValueMasker:
    def mask(value: str | None) -> str | None:
        return None

    return mask
