"""The bug query: each refused form with its message, and its runs on a real database (rows, none, a
timeout, a write stopped by the read-only transaction, errors that never quote a value)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql

from repro_pipeline.embedded.stack import Stack
from repro_pipeline.engine.dsn import with_database
from repro_pipeline.engine.errors import ConfigError
from repro_pipeline.engine.verify.repro_query import (
    ReproQueryResult,
    parse_repro_query,
    record_repro_query,
    recorded_repro_query,
    run_repro_query,
)

SCHEMA = """
CREATE TABLE subscriptions (id int PRIMARY KEY, organization_id int NOT NULL);
CREATE TABLE invoices (id int PRIMARY KEY, subscription_id int REFERENCES subscriptions, total_cents bigint);
CREATE TABLE invoice_line_items (id int PRIMARY KEY, invoice_id int REFERENCES invoices, sku text,
    quantity int, unit_cents bigint);
INSERT INTO subscriptions VALUES (1, 451), (2, 452);
INSERT INTO invoices VALUES (10, 1, 500), (11, 1, 999), (12, 1, 7), (20, 2, 100);
INSERT INTO invoice_line_items VALUES (1, 10, 'SKU-ZORBLAT', 5, 100), (2, 11, 'SKU-QUENWICK', 1, 100),
    (3, 12, 'SKU-A', 1, 8), (4, 20, 'SKU-B', 1, 100);
CREATE FUNCTION mark_paid() RETURNS int LANGUAGE sql AS 'UPDATE invoices SET total_cents = 0 RETURNING 1';
"""

# The guide's invoice-total query, with the organization bound by name instead of $1.
INVOICE_TOTALS = """
-- The bug: invoice totals vs line items
SELECT i.id, i.total_cents, SUM(li.quantity * li.unit_cents) AS computed_cents
FROM invoices i
JOIN subscriptions s ON s.id = i.subscription_id
JOIN invoice_line_items li ON li.invoice_id = i.id
WHERE s.organization_id = :organization_id
GROUP BY i.id, i.total_cents
HAVING i.total_cents <> SUM(li.quantity * li.unit_cents);
"""


@pytest.fixture
def repro(stack: Stack) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    name = f"repro_query_test_{secrets.token_hex(4)}"
    with psycopg.connect(stack.target_admin_dsn, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        try:
            with psycopg.connect(with_database(stack.target_admin_dsn, name), autocommit=True) as conn:
                conn.execute(SCHEMA)
                yield conn
        finally:
            admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.mark.parametrize(
    ("text", "refusal"),
    [
        ("", "it is empty"),
        ("SELECT 1; SELECT 2", "it holds 2 statements: give one"),
        ("SELECT 1; DROP TABLE invoices", "it holds 2 statements"),
        ("DELETE FROM invoices", "it is DELETE, not a SELECT"),
        ("UPDATE invoices SET total_cents = 0", "it is UPDATE, not a SELECT"),
        ("INSERT INTO invoices VALUES (1)", "it is INSERT, not a SELECT"),
        ("CREATE TABLE copy AS SELECT * FROM invoices", "it is CREATE TABLE AS, not a SELECT"),
        ("EXPLAIN ANALYZE SELECT 1", "it is EXPLAIN, not a SELECT"),
        ("SET statement_timeout = 0", "it is SET, not a SELECT"),
        ("COMMIT", "it is a transaction command, not a SELECT"),
        ("WITH gone AS (DELETE FROM invoices RETURNING id) SELECT * FROM gone", "a data-modifying DELETE"),
        (
            "SELECT * FROM (WITH x AS (UPDATE invoices SET id = 1 RETURNING 1) SELECT 1) q",
            "data-modifying UPDATE",
        ),
        ("SELECT * INTO stolen FROM invoices", "SELECT ... INTO creates a table"),
        ("SELECT * FROM invoices FOR UPDATE", "FOR UPDATE / FOR SHARE locks rows"),
        ("SELECT * FROM (SELECT * FROM invoices FOR SHARE) q", "FOR UPDATE / FOR SHARE locks rows"),
        ("SELECT pg_sleep(5)", "it calls pg_sleep(), a function that acts"),
        ("SELECT 1 WHERE pg_catalog.pg_terminate_backend(1)", "it calls pg_terminate_backend()"),
        ("SELECT * FROM invoices WHERE id IN (SELECT nextval('s'))", "it calls nextval()"),
        ("SELECT * FROM invoices WHERE id = $1", "positional parameter such as $1"),
        (
            "SELEC * FROM invoices",
            "it is not valid SQL: syntax error at or near \"SELEC\" (at 'SELEC * FROM invoices')",
        ),
        ("SELECT (1", "it is not valid SQL"),
    ],
)
def test_a_query_that_does_not_only_read_is_refused_naming_what(text: str, refusal: str) -> None:
    with pytest.raises(ConfigError) as refused:
        parse_repro_query(text, where="the ticket's repro_query")
    assert refused.value.problem.startswith("the ticket's repro_query is refused: ")
    assert refusal in refused.value.problem
    assert ":organization_id" in refused.value.remedy


@pytest.mark.parametrize(
    "text",
    [
        "SELECT 1",
        "VALUES (1), (2)",
        "WITH totals AS (SELECT 1 AS n) SELECT n FROM totals",
        "SELECT ';' AS semicolon, '$1' AS dollar -- FOR UPDATE; DELETE",
        "SELECT lower(sku), now() FROM invoice_line_items",
    ],
)
def test_a_query_that_reads_passes(text: str) -> None:
    assert parse_repro_query(text).text


def test_a_trailing_semicolon_and_comment_are_left_out() -> None:
    assert parse_repro_query("SELECT 1 ; -- done\n").text == "SELECT 1"


def test_the_guide_query_counts_the_organizations_mismatched_invoices(
    repro: psycopg.Connection[tuple[object, ...]],
) -> None:
    result = run_repro_query(repro, parse_repro_query(INVOICE_TOTALS), 451)
    assert (result.rows, result.error) == (2, "")
    assert result.sentence() == "the query returns 2 rows: the bug reproduces"


def test_no_row_says_the_bug_does_not_reproduce(repro: psycopg.Connection[tuple[object, ...]]) -> None:
    result = run_repro_query(repro, parse_repro_query(INVOICE_TOTALS), 452)
    assert result.rows == 0
    assert result.sentence() == "the query returns 0 rows: the bug does not reproduce on this copy"


def test_a_query_past_its_timeout_is_cancelled_and_reported(
    repro: psycopg.Connection[tuple[object, ...]],
) -> None:
    heavy = parse_repro_query("SELECT 1 FROM generate_series(1, 100000) a, generate_series(1, 100000) b")
    result = run_repro_query(repro, heavy, 451, timeout_seconds=0.2)
    assert result.rows is None
    assert result.error == "it ran past its timeout of 0.2 s (statement_timeout) and was cancelled"
    assert result.sentence().startswith("the query could not run: it ran past its timeout")
    # The timeout was the transaction's own: the session keeps its setting, and works.
    assert repro.execute("SHOW statement_timeout").fetchone() == ("0",)
    assert run_repro_query(repro, parse_repro_query("SELECT 1"), 451).rows == 1


def test_a_function_of_the_copy_that_may_write_is_refused_by_its_catalog(
    repro: psycopg.Connection[tuple[object, ...]],
) -> None:
    writing = parse_repro_query("SELECT mark_paid()")  # not known to act by name: VOLATILE in the copy
    result = run_repro_query(repro, writing, 451)
    assert result.rows is None
    assert result.error.startswith("it calls mark_paid(), which is VOLATILE in this database")
    assert repro.execute("SELECT count(*) FROM invoices WHERE total_cents = 0").fetchone() == (0,)


@pytest.mark.parametrize(
    ("text", "function"),
    [
        # SQL given as text runs outside the parser's sight, as the session's superuser: it reads a server
        # file (and could set the role back, or lo_export a file) inside a READ ONLY transaction.
        ("SELECT * FROM ts_stat('SELECT to_tsvector(pg_read_file(''PG_VERSION''))')", "ts_stat"),
        # The field notation is a call too, which the parse tree shows as no FuncCall.
        ("SELECT 1 WHERE length(('PG_VERSION'::text).pg_read_file) > 0", "pg_read_file"),
        ("SELECT 1 FROM lower('PG_VERSION') AS f WHERE length(f.pg_read_file) > 0", "pg_read_file"),
    ],
)
def test_a_call_the_name_list_misses_is_refused_when_volatile(
    repro: psycopg.Connection[tuple[object, ...]], text: str, function: str
) -> None:
    result = run_repro_query(repro, parse_repro_query(text), 451)
    assert result.rows is None
    assert result.error.startswith(f"it calls {function}(), which is VOLATILE in this database")


def test_a_superuser_session_runs_the_query_without_its_privileges(
    repro: psycopg.Connection[tuple[object, ...]],
) -> None:
    assert repro.execute("SELECT current_setting('is_superuser')").fetchone() == ("on",)
    as_reader = parse_repro_query(
        "SELECT 1 WHERE current_user = 'pg_read_all_data' AND NOT EXISTS "
        "(SELECT 1 FROM pg_roles WHERE rolname = current_user AND rolsuper)"
    )
    assert run_repro_query(repro, as_reader, 451).rows == 1
    assert repro.execute("SELECT current_user").fetchone() != (
        "pg_read_all_data",
    )  # for its transaction only


def test_an_error_names_the_query_object_at_fault(repro: psycopg.Connection[tuple[object, ...]]) -> None:
    result = run_repro_query(repro, parse_repro_query("SELECT missing_column FROM invoices"), 451)
    assert result == ReproQueryResult(None, result.seconds, result.error)
    assert result.error == 'column "missing_column" does not exist (SQLSTATE 42703)'


def test_an_error_on_a_value_never_quotes_it(repro: psycopg.Connection[tuple[object, ...]]) -> None:
    result = run_repro_query(
        repro, parse_repro_query("SELECT id FROM invoice_line_items WHERE sku::int > 0"), 451
    )
    assert result.error == "invalid text representation (SQLSTATE 22P02)"
    assert "SKU" not in result.sentence()


@pytest.mark.parametrize(
    ("cast", "condition"),
    [
        # A value read as a name: 'relation "sku-zorblat" does not exist', 'operator does not exist: SKU-ZORBLAT'.
        ("regclass", "undefined table (SQLSTATE 42P01)"),
        ("regoper", "undefined function (SQLSTATE 42883)"),
    ],
)
def test_a_name_error_built_from_a_value_never_quotes_it(
    repro: psycopg.Connection[tuple[object, ...]], cast: str, condition: str
) -> None:
    text = f"SELECT 1 FROM invoice_line_items WHERE sku::{cast} IS NOT NULL"
    result = run_repro_query(repro, parse_repro_query(text), 451)
    assert result.error == condition
    assert "sku-" not in result.sentence().lower()


def test_a_name_error_in_the_querys_own_text_is_shown(repro: psycopg.Connection[tuple[object, ...]]) -> None:
    result = run_repro_query(repro, parse_repro_query("SELECT 1 WHERE 'abc'::regoper IS NOT NULL"), 451)
    assert result.error == "operator does not exist: abc (SQLSTATE 42883)"


def test_percent_signs_and_placeholder_lookalikes_in_literals_are_the_querys_own(
    repro: psycopg.Connection[tuple[object, ...]],
) -> None:
    query = parse_repro_query(
        "SELECT id FROM invoice_line_items WHERE sku LIKE 'SKU-%' AND sku <> ':organization_id' "
        "AND id::text <> '%s'"
    )
    assert run_repro_query(repro, query, 451).rows == 4


def test_a_single_row_is_one_row() -> None:
    assert ReproQueryResult(1, 0.1).sentence() == "the query returns 1 row: the bug reproduces"


def test_the_latest_result_is_kept_in_the_manifest_and_read_back(
    repro: psycopg.Connection[tuple[object, ...]],
) -> None:
    assert recorded_repro_query(repro) is None  # a database made before the bug query existed
    repro.execute("CREATE SCHEMA _repro_pipeline")
    record_repro_query(repro, ReproQueryResult(12, 0.5))
    timed_out = ReproQueryResult(
        None, 30.0, "it ran past its timeout of 30 s (statement_timeout) and was cancelled"
    )
    record_repro_query(repro, timed_out)
    assert recorded_repro_query(repro) == timed_out


def test_a_table_under_row_level_security_is_named_not_counted_short(
    repro: psycopg.Connection[tuple[object, ...]],
) -> None:
    # pg_read_all_data does not bypass row-level security: in a session that refuses to filter
    # (row_security = off, as the target's sessions are) the query fails naming the table, never counts less.
    repro.execute("ALTER TABLE invoices ENABLE ROW LEVEL SECURITY")
    repro.execute("SET row_security = off")
    result = run_repro_query(repro, parse_repro_query("SELECT * FROM invoices"), 451)
    assert result.rows is None
    assert result.error == (
        'query would be affected by row-level security policy for table "invoices" (SQLSTATE 42501)'
    )
