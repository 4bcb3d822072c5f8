"""The bug query as a check: operator-authored SQL run on a repro database, reported by its row count only.

A ticket or the launchpad may carry a query that shows the bug (the guide's invoice totals that disagree
with their line items). It is checked by PostgreSQL's own parser (pglast) before any database is touched:
one plain SELECT (or WITH ... SELECT, or VALUES) that neither writes, locks rows, creates a table nor calls
a function that acts; the organization is bound as ``:organization_id`` (or ``:tenant_id``), never pasted
in. On the repro database, a function it calls that the database's catalog has as VOLATILE is refused too.
It runs as ``SELECT count(*)`` over it, in a READ ONLY transaction with a statement timeout (and without a
superuser's privileges), so a write the parser let through is refused by the server too and a slow query ends;
its rows never leave the server.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass

import psycopg
from pglast import ast, parse_sql
from pglast.parser import ParseError
from psycopg import sql
from psycopg.rows import TupleRow

from repro_pipeline.engine.errors import ConfigError
from repro_pipeline.engine.repro_databases.manifest import SCHEMA as MANIFEST
from repro_pipeline.engine.subset.predicate import (
    ACTING_FUNCTIONS,
    PLACEHOLDER,
    WRITES,
    Predicate,
    functions_called_in,
    parsable,
    walk,
)

DEFAULT_TIMEOUT_SECONDS = 30.0
# statement_timeout is a count of milliseconds the server keeps as a 32-bit int.
LONGEST_TIMEOUT_SECONDS = 2_147_483.0
_HOW_TO_WRITE = (
    "write one read-only SELECT (WITH ... SELECT is fine) that returns the rows showing the bug, "
    "with the organization as :organization_id"
)
_POSITIONAL = re.compile(r"\$[0-9]+")
_QUOTED = re.compile(r'"([^"]*)"|\'([^\']*)\'')
_STATEMENT_KINDS = {
    ast.InsertStmt: "INSERT",
    ast.UpdateStmt: "UPDATE",
    ast.DeleteStmt: "DELETE",
    ast.MergeStmt: "MERGE",
    ast.CreateTableAsStmt: "CREATE TABLE AS",
    ast.ExplainStmt: "EXPLAIN",
    ast.CopyStmt: "COPY",
    ast.VariableSetStmt: "SET",
    ast.TransactionStmt: "a transaction command",
    ast.DoStmt: "DO",
    ast.CallStmt: "CALL",
}


@dataclass(frozen=True)
class ReproQuery:
    """A query that passed ``parse_repro_query``: ``text`` is its one statement, without a trailing ``;``;
    ``names_called`` every name it may call a function by (``f(x)``, and the field notations ``(x).f`` and
    ``t.f``, which PostgreSQL also resolves as calls), for the database's own catalog to judge."""

    text: str
    names_called: frozenset[str] = frozenset()

    def counting_sql(self) -> sql.Composed:
        """``SELECT count(*)`` over the query, taking the ``organization_id`` parameter by name."""
        return sql.Composed(
            [sql.SQL("SELECT count(*) FROM "), Predicate(self.text).as_sql(), sql.SQL(" AS q")]
        )

    def as_sql(self) -> sql.Composed:
        """The query itself, taking the ``organization_id`` parameter by name (for a report of its rows)."""
        return sql.Composed([sql.SQL("SELECT * FROM "), Predicate(self.text).as_sql(), sql.SQL(" AS q")])


@dataclass(frozen=True)
class ReproQueryResult:
    """What the query did: its row count, or why it could not run (never a value of a row)."""

    rows: int | None
    seconds: float
    error: str = ""

    @property
    def ran(self) -> bool:
        return self.rows is not None

    def sentence(self) -> str:
        if self.rows is None:
            return f"the query could not run: {self.error}"
        if self.rows == 0:
            return "the query returns 0 rows: the bug does not reproduce on this copy"
        return f"the query returns {self.rows} row{'' if self.rows == 1 else 's'}: the bug reproduces"


def parse_repro_query(text: str, where: str = "repro_query") -> ReproQuery:
    """The query, or a ``ConfigError`` naming ``where`` it came from and what is refused in it."""
    try:
        statement, select = _checked_statement(text)
    except ValueError as refusal:
        raise ConfigError(f"{where} is refused: {refusal}", _HOW_TO_WRITE) from None
    return ReproQuery(statement, _names_called(select))


def checked_timeout(seconds: float, setting: str) -> float:
    """``seconds`` as the query's statement timeout, or a ``ConfigError`` naming ``setting``: a timeout is a
    positive, finite number of seconds the server can take."""
    if not (math.isfinite(seconds) and 0 < seconds <= LONGEST_TIMEOUT_SECONDS):
        raise ConfigError(
            f"{setting} is {seconds:g}: it must be a positive number of seconds, at most "
            f"{LONGEST_TIMEOUT_SECONDS:g}",
            f"give a number of seconds, such as {DEFAULT_TIMEOUT_SECONDS:g}, or leave it out",
        )
    return seconds


def run_repro_query(
    conn: psycopg.Connection[TupleRow],
    query: ReproQuery,
    organization_id: int,
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
) -> ReproQueryResult:
    """Count the query's rows on ``conn`` (a repro database, in autocommit mode: the transaction is this
    function's own) in a READ ONLY transaction that is rolled back.

    A timeout or an SQL error is the result, not an exception; the error says what failed without the
    server's DETAIL or any message that can quote a value (a failed cast quotes the value it read).

    READ ONLY stops writes, not what a superuser may do in a read-only transaction (read a server file,
    write one with ``lo_export``, signal backends): a superuser session runs the query as
    ``pg_read_all_data``, and a function VOLATILE in this database's catalog (one that may act, or run SQL
    given as text, such as ``ts_stat``, which could set the role back) is refused before it runs.
    """
    began = time.perf_counter()
    try:
        with conn.transaction(force_rollback=True):
            conn.execute("SET TRANSACTION READ ONLY")
            volatile = _volatile_functions(conn, query.names_called)
            if volatile:
                return ReproQueryResult(
                    None,
                    time.perf_counter() - began,
                    f"it calls {volatile[0]}(), which is VOLATILE in this database (it may act, not only "
                    "read): a repro query calls IMMUTABLE or STABLE functions only",
                )
            if _is_superuser(conn):
                conn.execute("SET LOCAL ROLE pg_read_all_data")
            conn.execute(
                sql.SQL("SET LOCAL statement_timeout = {}").format(
                    sql.Literal(_milliseconds(timeout_seconds))
                )
            )
            row = conn.execute(query.counting_sql(), {PLACEHOLDER: organization_id}).fetchone()
    except psycopg.Error as error:
        return ReproQueryResult(None, time.perf_counter() - began, _reason(error, query, timeout_seconds))
    rows = int(str(row[0])) if row is not None else 0
    return ReproQueryResult(rows, time.perf_counter() - began)


# Created when a query is first recorded, so databases loaded before the bug query existed take one too.
_REPRO_QUERY_DDL = f"""
CREATE TABLE IF NOT EXISTS {MANIFEST}.repro_query (
    one_row boolean PRIMARY KEY DEFAULT true CHECK (one_row),
    rows bigint,
    seconds double precision NOT NULL,
    error text NOT NULL,
    ran_at timestamptz NOT NULL DEFAULT now()
)
"""


def record_repro_query(conn: psycopg.Connection[TupleRow], result: ReproQueryResult) -> None:
    """The bug query's latest result on this database (its row count or why it did not run), for the
    handoff to tell; not a check: it never fails the run."""
    conn.execute(_REPRO_QUERY_DDL)
    conn.execute(
        f"INSERT INTO {MANIFEST}.repro_query (rows, seconds, error) VALUES (%s, %s, %s) "
        "ON CONFLICT (one_row) DO UPDATE SET rows = excluded.rows, seconds = excluded.seconds, "
        "error = excluded.error, ran_at = now()",
        (result.rows, result.seconds, result.error),
    )


def recorded_repro_query(conn: psycopg.Connection[TupleRow]) -> ReproQueryResult | None:
    """The bug query's latest result on this database, or None when no query was run on it."""
    try:
        row = conn.execute(f"SELECT rows, seconds, error FROM {MANIFEST}.repro_query").fetchone()
    except psycopg.errors.UndefinedTable:
        return None
    if row is None:
        return None
    rows, seconds, error = row
    return ReproQueryResult(None if rows is None else int(str(rows)), float(str(seconds)), str(error))


def _checked_statement(text: str) -> tuple[str, ast.SelectStmt]:
    if not text.strip():
        raise ValueError("it is empty")
    if _POSITIONAL.search(Predicate(text).without_quoted_text()):
        raise ValueError("it uses a positional parameter such as $1: name the organization :organization_id")
    try:
        statements = parse_sql(parsable(text))
    except ParseError as error:
        message, index = (*error.args, None)[:2]
        near = f" (at {text[index:][:30]!r})" if isinstance(index, int) else ""
        raise ValueError(f"it is not valid SQL: {message}{near}") from None
    if len(statements) != 1:
        raise ValueError(f"it holds {len(statements)} statements: give one")
    (statement,) = statements
    select = statement.stmt
    if not isinstance(select, ast.SelectStmt):
        kind = _STATEMENT_KINDS.get(type(select), type(select).__name__.removesuffix("Stmt"))
        raise ValueError(f"it is {kind}, not a SELECT: only a query that reads is run")
    _refuse_acting_parts(select)
    start = statement.stmt_location or 0
    return text[start : start + statement.stmt_len if statement.stmt_len else None].strip(), select


def _names_called(select: ast.SelectStmt) -> frozenset[str]:
    names = {name for _, name in functions_called_in(select)}
    for node in walk(select):
        if isinstance(node, ast.A_Indirection):
            names.update(
                part.sval for part in node.indirection or () if isinstance(part, ast.String) and part.sval
            )
        elif (
            isinstance(node, ast.ColumnRef)
            and len(fields := node.fields or ()) > 1
            and isinstance(last := fields[-1], ast.String)
            and last.sval
        ):
            names.add(last.sval)
    return frozenset(names)


def _volatile_functions(conn: psycopg.Connection[TupleRow], names: frozenset[str]) -> list[str]:
    """The names among ``names`` that some VOLATILE function of this database has, sorted."""
    if not names:
        return []
    rows = conn.execute(
        "SELECT DISTINCT proname FROM pg_catalog.pg_proc WHERE provolatile = 'v' AND proname = ANY(%s) "
        "ORDER BY proname",
        (sorted(names),),
    ).fetchall()
    return [str(name) for (name,) in rows]


def _is_superuser(conn: psycopg.Connection[TupleRow]) -> bool:
    row = conn.execute("SELECT current_setting('is_superuser')").fetchone()
    return row is not None and row[0] == "on"


def _refuse_acting_parts(select: ast.SelectStmt) -> None:
    """A write in a CTE, SELECT ... INTO, FOR UPDATE / SHARE or a function that acts, at any depth."""
    for node in walk(select):
        if isinstance(node, WRITES):
            kind = _STATEMENT_KINDS.get(type(node), type(node).__name__)
            raise ValueError(f"it holds a data-modifying {kind}: a repro query only reads")
        if isinstance(node, ast.SelectStmt):
            if node.intoClause is not None:
                raise ValueError("SELECT ... INTO creates a table: a repro query only reads")
            if node.lockingClause:
                raise ValueError("FOR UPDATE / FOR SHARE locks rows: a repro query only reads, without locks")
    acting = [name for _, name in functions_called_in(select) if name.lower() in ACTING_FUNCTIONS]
    if acting:
        raise ValueError(f"it calls {acting[0]}(), a function that acts: a repro query only reads")


def _reason(error: psycopg.Error, query: ReproQuery, timeout_seconds: float) -> str:
    code = error.sqlstate or ""
    if isinstance(error, psycopg.errors.QueryCanceled):
        return f"it ran past its timeout of {timeout_seconds:g} s (statement_timeout) and was cancelled"
    if isinstance(error, psycopg.errors.ReadOnlySqlTransaction):
        return f"it tried to write, and its read-only transaction refused it (SQLSTATE {code})"
    message = error.diag.message_primary or ""
    if code.startswith("42") and _names_only_the_query(error, query):
        return f"{message} (SQLSTATE {code})"
    # Any other message can quote a row's value (an invalid cast, a value out of range): its condition only.
    words = re.sub(r"(?<!^)(?=[A-Z])", " ", type(error).__name__).lower()
    return f"{words} (SQLSTATE {code})" if code else words


def _names_only_the_query(error: psycopg.Error, query: ReproQuery) -> bool:
    """Whether a syntax or access rule's message names the query's own objects, not a value read at run time.

    An error with a position in the query is its parse analysis: what it names is written there. Without
    one it was raised while rows were read, where a value can become a name: ``email::regclass`` gives
    'relation "<email>" does not exist', ``email::regoper`` 'operator does not exist: <email>'. Such a
    message is shown only when every quoted part is written in the query (case aside: PostgreSQL folds
    unquoted names) and nothing follows a colon unquoted."""
    if error.diag.statement_position:
        return True
    message = error.diag.message_primary or ""
    written = query.text.lower()
    quoted = [match.group(1) or match.group(2) or "" for match in _QUOTED.finditer(message)]
    return ": " not in _QUOTED.sub("", message) and all(part.lower() in written for part in quoted)


def _milliseconds(seconds: float) -> int:
    return max(1, round(seconds * 1000))
