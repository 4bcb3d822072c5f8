"""A pg_dump script read as its entries: each entry's statements under its name, without the comments and
session settings between them, which say nothing of a schema. The schema check compares two scripts by
them; ``on_existing_data: truncate`` checks a target's definitions against the source's with them."""

from __future__ import annotations

import re

_ENTRY_NAME = re.compile(r"^-- (?:Data for )?Name: (?P<name>.*?)(?:; Owner: .*)?$")
_SETTING = re.compile(r"^SET [a-z_]+ = .*;$")


def schema_lines(script: str) -> list[str]:
    """The lines of a pg_dump script that state the schema: its header's settings, then each entry's
    statements, entries in the order of their names."""
    header, entries = _parsed(script)
    return header + [line for _, lines in sorted(entries) for line in lines]


def schema_entries(script: str) -> dict[str, list[str]]:
    """The statements of each entry of a pg_dump script, by the entry's name (``users; Type: TABLE; Schema:
    public``), without comments and session settings."""
    entries: dict[str, list[str]] = {}
    for name, lines in _parsed(script)[1]:
        entries.setdefault(name, []).extend(lines)
    return entries


def _parsed(script: str) -> tuple[list[str], list[tuple[str, list[str]]]]:
    header: list[str] = []
    entries: list[tuple[str, list[str]]] = []
    for line in script.splitlines():
        named = _ENTRY_NAME.match(line)
        if named:
            entries.append((named["name"], []))
        elif not line.strip() or line.startswith(("--", "\\restrict ", "\\unrestrict ")):
            continue
        elif not entries:
            header.append(line)
        elif not _SETTING.match(line):
            entries[-1][1].append(line)
    return header, entries
