"""The tenant key: a numeric organization id, validated before it reaches any database."""

from __future__ import annotations

import re

from repro_pipeline.engine.errors import TenantError

_MAX_BIGINT = 2**63 - 1
_DIGITS = re.compile(r"[1-9][0-9]{0,18}")


def parse_organization_id(key: object) -> int:
    """Return the organization id that ``key`` spells, or raise ``TenantError``.

    Only plain decimal digits without sign, spaces or leading zeros are accepted, so that a partition key
    maps to exactly one organization and one database name.
    """
    text = key if isinstance(key, str) else str(key)
    if not _DIGITS.fullmatch(text) or int(text) > _MAX_BIGINT:
        shown = text if len(text) <= 40 else text[:40] + "..."
        raise TenantError(
            f"organization id {shown!r} is not a positive integer",
            "use the numeric id of the organization (for example 451): digits only, without sign, leading "
            "zeros, slug or quotes",
        )
    return int(text)
