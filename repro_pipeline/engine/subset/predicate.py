"""Root predicates: operator-authored SQL with the tenant as a bound parameter, never pasted in."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from pglast import ast, parse_sql
from pglast.parser import ParseError
from psycopg import sql

PLACEHOLDER = "organization_id"

# String literals, quoted identifiers, dollar quotes and comments are copied as they are; a
# ``:organization_id`` (or its alias ``:tenant_id``) outside of them is the placeholder (``::`` casts are not).
_TOKENS = re.compile(
    r"""
    (?P<quoted>'(?:[^']|'')*'|"(?:[^"]|"")*"|\$(?P<tag>[A-Za-z_]*)\$.*?\$(?P=tag)\$|--[^\n]*|/\*.*?\*/)
    | (?P<cast>::)
    | (?P<placeholder>:(?:organization_id|tenant_id)\b)
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


_SHELL = "SELECT 1 WHERE "
# Functions that act (sleep, signal, read files, run SQL given as text, change settings or sequences)
# are refused without a database; any other VOLATILE one by the source's own catalog at plan time.
ACTING_FUNCTIONS = frozenset(
    {
        "pg_sleep", "pg_sleep_for", "pg_sleep_until", "pg_terminate_backend", "pg_cancel_backend",
        "pg_reload_conf", "pg_rotate_logfile", "pg_read_file", "pg_read_binary_file", "pg_ls_dir",
        "pg_stat_file", "lo_import", "lo_export", "lo_get", "set_config", "nextval", "setval",
        "pg_advisory_lock", "pg_advisory_xact_lock", "pg_notify", "dblink", "dblink_exec",
        "query_to_xml", "query_to_xmlschema", "query_to_xml_and_xmlschema", "cursor_to_xml",
        "cursor_to_xmlschema", "pg_switch_wal", "pg_create_restore_point", "txid_current",
    }
)  # fmt: skip
_ALLOWED_CLAUSES = {"targetList", "whereClause", "groupDistinct", "limitOption", "op", "all"}
WRITES = (ast.InsertStmt, ast.UpdateStmt, ast.DeleteStmt, ast.MergeStmt)


def check_predicate(text: str) -> None:
    """Raise ``ValueError`` unless ``text`` is one boolean SQL expression (PostgreSQL's own parser decides).

    Refused: ``;`` and further statements, anything after the expression (ORDER BY, LIMIT, unbalanced
    parentheses that would escape the WHERE), and data-modifying statements in subqueries or CTEs.
    """
    if ";" in Predicate(text).without_quoted_text():
        raise ValueError("';' is not allowed: a predicate is one expression, not statements")
    parsed_text = parsable(text)
    try:
        statements = parse_sql(_SHELL + parsed_text)
    except ParseError as exc:
        message, index = (*exc.args, None)[:2]
        near = f": {parsed_text[max(0, index - len(_SHELL)) :][:30]!r}" if isinstance(index, int) else ""
        raise ValueError(f"not a valid SQL expression: {message}{near}") from None
    (statement,) = statements  # ';' is refused above, so there is one
    select = statement.stmt
    if not isinstance(select, ast.SelectStmt):
        raise ValueError("only a boolean expression is allowed")
    extra_clauses = [
        name
        for name in _fields(select)
        if name not in _ALLOWED_CLAUSES and getattr(select, name) not in (None, (), False)
    ]
    if extra_clauses or select.whereClause is None:
        raise ValueError(
            f"only a boolean expression is allowed, found {', '.join(extra_clauses) or 'nothing'}"
        )
    writes = [node for node in walk(select.whereClause) if isinstance(node, WRITES)]
    if writes:
        raise ValueError(f"data-modifying statement ({type(writes[0]).__name__}) inside the predicate")
    acting = [name for _, name in called_functions(text) if name.lower() in ACTING_FUNCTIONS]
    if acting:
        raise ValueError(
            f"{acting[0]}() is not allowed: a predicate only selects rows, it calls no function that acts"
        )


def called_functions(text: str) -> list[tuple[str | None, str]]:
    """The functions ``text`` calls, as (schema or None, name), at any depth (subqueries too)."""
    parsed_text = parsable(text)
    (statement,) = parse_sql(_SHELL + parsed_text)
    return functions_called_in(statement.stmt)


def functions_called_in(node: object) -> list[tuple[str | None, str]]:
    """The functions a parsed statement or expression calls, as (schema or None, name), at any depth."""
    called = []
    for child in walk(node):
        if isinstance(child, ast.FuncCall):
            parts = [part.sval for part in child.funcname or ()]
            called.append((parts[-2] if len(parts) > 1 else None, parts[-1]))
    return called


def parsable(text: str) -> str:
    """The text as PostgreSQL's parser reads it: the placeholder as a positional parameter, padded to the
    placeholder's length so that the parser's offsets are offsets in ``text``."""
    return _TOKENS.sub(lambda m: "$1".ljust(len(m.group(0))) if m.group("placeholder") else m.group(0), text)


def walk(node: object) -> Iterator[object]:
    """Every node of a pglast tree, ``node`` first, at any depth."""
    yield node
    if isinstance(node, ast.Node):
        for name in _fields(node):
            yield from walk(getattr(node, name))
    elif isinstance(node, tuple):
        for item in node:
            yield from walk(item)


def _fields(node: ast.Node) -> tuple[str, ...]:
    return tuple(getattr(node, "__slots__", ()))


def _escape(text: str) -> str:
    return text.replace("%", "%%")
