"""Root predicates: operator-authored SQL with the tenant as a bound parameter, never pasted in."""

from __future__ import annotations

import re
from dataclasses import dataclass

from psycopg import sql

PLACEHOLDER = "organization_id"

# String literals, quoted identifiers, dollar quotes and comments are copied as they are; a
# ``:organization_id`` outside of them is the placeholder (``::`` casts are not).
_TOKENS = re.compile(
    r"""
    (?P<quoted>'(?:[^']|'')*'|"(?:[^"]|"")*"|\$(?P<tag>[A-Za-z_]*)\$.*?\$(?P=tag)\$|--[^\n]*|/\*.*?\*/)
    | (?P<cast>::)
    | (?P<placeholder>:organization_id\b)
    | (?P<percent>%)
    """,
    re.VERBOSE | re.DOTALL,
)


@dataclass(frozen=True)
class Predicate:
    text: str

    @property
    def uses_placeholder(self) -> bool:
        return any(match.group("placeholder") for match in _TOKENS.finditer(self.text))

    def as_sql(self) -> sql.Composed:
        """The predicate as a psycopg query fragment taking the ``organization_id`` parameter by name."""
        parts: list[sql.Composable] = []
        position = 0
        for match in _TOKENS.finditer(self.text):
            parts.append(sql.SQL(_escape(self.text[position : match.start()])))
            if match.group("placeholder"):
                parts.append(sql.Placeholder(PLACEHOLDER))
            else:
                parts.append(sql.SQL(_escape(match.group(0))))
            position = match.end()
        parts.append(sql.SQL(_escape(self.text[position:])))
        # The newline keeps a trailing -- comment from swallowing the closing parenthesis.
        return sql.Composed([sql.SQL("("), *parts, sql.SQL("\n)")])

    def without_quoted_text(self) -> str:
        """The predicate with its literals, quoted identifiers and comments taken out."""
        return _TOKENS.sub(lambda match: "" if match.group("quoted") else match.group(0), self.text)


def _escape(text: str) -> str:
    return text.replace("%", "%%")
