"""docs/troubleshooting.md quotes messages repro_pipeline really prints: each quoted message's literal parts
(between placeholders: `...` and capitalised names such as N, R, FILE) occur in the package's source."""

from __future__ import annotations

import re
from pathlib import Path

from repro_pipeline_tests.conftest import PROJECT_ROOT

_PLACEHOLDER = re.compile(r"\.\.\.|'?\b[A-Z]{1,4}\b'?")
_MIN_FRAGMENT = 10


def _source_text() -> str:
    source = "\n".join(
        path.read_text(encoding="utf-8") for path in (PROJECT_ROOT / "repro_pipeline").rglob("*.py")
    )
    # messages are written as implicitly concatenated literals over several lines, in either quotes
    return re.sub(r"[\"']\s*\n\s*f?[\"']", "", source).replace("\\'", "'")


def quoted_messages(page: Path) -> list[str]:
    rows = [line for line in page.read_text(encoding="utf-8").splitlines() if line.startswith("| `")]
    return [message for row in rows for message in re.findall(r"`([^`]+)`", row.split(" | ")[0])]


def unknown_fragments(messages: list[str], source: str) -> list[str]:
    fragments = [part.strip(" :") for message in messages for part in _PLACEHOLDER.split(message)]
    return [fragment for fragment in fragments if len(fragment) >= _MIN_FRAGMENT and fragment not in source]


def test_every_quoted_message_is_one_the_code_prints() -> None:
    messages = quoted_messages(PROJECT_ROOT / "docs" / "troubleshooting.md")
    assert len(messages) >= 20
    assert unknown_fragments(messages, _source_text()) == []


def test_a_message_the_code_does_not_print_is_found() -> None:
    assert unknown_fragments(["the standby is on fire: N alarms"], _source_text()) == [
        "the standby is on fire"
    ]
