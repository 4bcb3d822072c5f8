"""The mark repro_pipeline leaves in the comment of what it creates on the target server (a repro database, its
login): a JSON object whose ``created_by`` is ``repro_pipeline``. What has no such comment is never dropped."""

from __future__ import annotations

import json
from typing import Any

MARKER = "repro_pipeline"


def marked_record(comment: object) -> dict[str, Any] | None:
    """The JSON object of ``comment`` when repro_pipeline wrote it; None for any other comment, or none."""
    if not isinstance(comment, str):
        return None
    try:
        record = json.loads(comment)
    except ValueError:
        return None
    if not isinstance(record, dict) or record.get("created_by") != MARKER:
        return None
    return record
