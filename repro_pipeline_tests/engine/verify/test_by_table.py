"""The database's orphan and leak verdicts split per table (no server), and tables' sizes on a real one."""

from __future__ import annotations

import psycopg

from repro_pipeline.embedded.stack import Stack
from repro_pipeline.engine.dsn import with_database
from repro_pipeline.engine.source.catalog import Catalog, Column, ForeignKey, Table, TableName
from repro_pipeline.engine.verify.by_table import (
    TABLE_NO_ORIGINAL_PII,
    TABLE_ZERO_FK_ORPHANS,
    table_bytes,
    verdicts_by_table,
)
from repro_pipeline.engine.verify.checks import NO_ORIGINAL_PII, ZERO_FK_ORPHANS, Verdict

USERS = TableName("public", "users")
INVOICES = TableName("public", "invoices")
LINE_ITEMS = TableName("public", "invoice_line_items")
GONE = TableName("public", "gone")
TO_INVOICE = ForeignKey("to_invoice", LINE_ITEMS, ("invoice_id",), INVOICES, ("id",), "")
TO_USER = ForeignKey("to_user", INVOICES, ("user_id",), USERS, ("id",), "")


def _table(name: TableName, *columns: str) -> Table:
    return Table(name, tuple(Column(column, "text", False, None, "", "") for column in columns), ("id",))


CATALOG = Catalog(
    tables={
        USERS: _table(USERS, "id", "email"),
        INVOICES: _table(INVOICES, "id", "user_id", "memo"),
        LINE_ITEMS: _table(LINE_ITEMS, "id", "invoice_id"),
    },
    foreign_keys=(TO_INVOICE, TO_USER),
    unique_indexes=(),
)


def _verdicts(
    failing: dict[str, int], missing: list[str], leaking: dict[str, int], common: dict[str, int] | None = None
) -> list[Verdict]:
    return [
        Verdict(
            ZERO_FK_ORPHANS,
            passed=not failing and not missing,
            found={"failing_foreign_keys": failing, "missing_foreign_keys": missing},
        ),
        Verdict(
            NO_ORIGINAL_PII,
            passed=not leaking,
            found={"leaking_columns": leaking, "one_word_originals_found": common or {}},
        ),
    ]


def test_an_orphan_fails_the_child_table_alone() -> None:
    by_table = verdicts_by_table(
        CATALOG, [USERS, INVOICES, LINE_ITEMS], _verdicts({str(TO_INVOICE): 3}, [], {})
    )
    orphans = by_table[LINE_ITEMS].orphans
    assert orphans.check == TABLE_ZERO_FK_ORPHANS and not orphans.passed
    assert orphans.found["orphans"] == 3 and orphans.found["failing_foreign_keys"] == {str(TO_INVOICE): 3}
    assert by_table[INVOICES].orphans.passed and by_table[USERS].orphans.passed
    assert by_table[INVOICES].orphans.found["foreign_keys_checked"] == 1


def test_a_missing_foreign_key_fails_its_child_table() -> None:
    by_table = verdicts_by_table(CATALOG, [USERS, INVOICES], _verdicts({}, [str(TO_USER)], {}))
    assert not by_table[INVOICES].orphans.passed
    assert by_table[INVOICES].orphans.found["missing_foreign_keys"] == [str(TO_USER)]
    assert by_table[USERS].orphans.passed


def test_a_leak_fails_the_table_holding_it_and_a_one_word_original_is_only_reported() -> None:
    by_table = verdicts_by_table(
        CATALOG,
        [USERS, INVOICES],
        _verdicts({}, [], {"public.users.email": 2}, common={"public.invoices.memo": 1}),
    )
    assert by_table[USERS].leaks.check == TABLE_NO_ORIGINAL_PII and not by_table[USERS].leaks.passed
    assert by_table[USERS].leaks.found["leaking_columns"] == {"public.users.email": 2}
    assert by_table[INVOICES].leaks.passed
    assert by_table[INVOICES].leaks.found["one_word_originals_found"] == {"public.invoices.memo": 1}


def test_a_table_the_catalog_lacks_passes_with_nothing_checked() -> None:
    by_table = verdicts_by_table(
        CATALOG, [GONE], _verdicts({str(TO_INVOICE): 1}, [], {"public.users.email": 1})
    )
    assert by_table[GONE].orphans.passed and by_table[GONE].orphans.found["foreign_keys_checked"] == 0
    assert by_table[GONE].leaks.passed and by_table[GONE].leaks.found["columns_searched"] == 0


def test_table_bytes_counts_a_partitioned_tables_partitions_and_nothing_for_an_absent_one(
    stack: Stack,
) -> None:
    with psycopg.connect(stack.target_admin_dsn, autocommit=True) as admin:
        admin.execute("DROP DATABASE IF EXISTS table_bytes_check")
        admin.execute("CREATE DATABASE table_bytes_check")
    try:
        with psycopg.connect(
            with_database(stack.target_admin_dsn, "table_bytes_check"), autocommit=True
        ) as conn:
            conn.execute("CREATE TABLE events (id int, at date) PARTITION BY RANGE (at)")
            conn.execute(
                "CREATE TABLE events_2020 PARTITION OF events FOR VALUES FROM ('2020-01-01') TO ('2021-01-01')"
            )
            conn.execute("INSERT INTO events SELECT g, '2020-02-01' FROM generate_series(1, 1000) g")
            conn.execute("CREATE TABLE plain (id int PRIMARY KEY)")
            conn.execute("INSERT INTO plain VALUES (1)")
            conn.execute("CREATE TABLE empty (id int)")
            events, plain, empty, absent = (
                TableName("public", n) for n in ("events", "plain", "empty", "absent")
            )
            sizes = table_bytes(conn, [events, plain, empty, absent])
            (partition, own) = conn.execute(  # type: ignore[misc]
                "SELECT pg_total_relation_size('events_2020'), pg_total_relation_size('plain')"
            ).fetchone()
        assert sizes == {events: partition, plain: own, empty: 0, absent: 0} and partition > 0 and own > 0
    finally:
        with psycopg.connect(stack.target_admin_dsn, autocommit=True) as admin:
            admin.execute("DROP DATABASE table_bytes_check")
