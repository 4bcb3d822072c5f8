"""Pagila, a real public schema, end to end with the engine alone: for a customer and for a store as the
tenant, the closure holds exactly the rows an independent in-memory oracle finds, the target's schema is the
source's as pg_dump writes it, and the checks pass (zero orphans, counts, zero leaks)."""

from __future__ import annotations

import gzip
import secrets
import subprocess
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from repro_pipeline.embedded.stack import Stack, wait_for_standby_replay
from repro_pipeline.engine.config import load_config
from repro_pipeline.engine.errors import ClosureError
from repro_pipeline.engine.load.loader import ReplicatedSchema
from repro_pipeline.engine.load.plan import SubsetPlan, plan_subset
from repro_pipeline.engine.secrets import Secret
from repro_pipeline.engine.source.catalog import TableName
from repro_pipeline.engine.source.snapshot import open_source_snapshot
from repro_pipeline.engine.verify.checks import Verdict, schema_matches_source
from repro_pipeline_tests.conftest import FIXTURES
from repro_pipeline_tests.engine.load.databases import copy_of, empty_target, load_and_verify

PAGILA = FIXTURES / "pagila"
RULES = """
version: "1.0"
replicate_all_indexes: true
tables:
  public.customer:
    columns:
      first_name: { action: fake, provider: first_name }
      last_name: { action: fake, provider: last_name }
      email: { action: fake, provider: email }
  public.staff:
    columns:
      email: { action: fake, provider: email }
      password: { action: "null" }
"""
# A store's rentals reach customers who rent at other stores too: the store tenant allows those references.
TENANTS = {
    "customer": ("public.customer", "customer_id", 1, "refuse"),
    "store": ("public.store", "store_id", 1, "allow"),
}


@pytest.fixture(scope="module")
def pagila(stack: Stack) -> Iterator[str]:
    with psycopg.connect(stack.primary_dsn, autocommit=True) as admin:
        admin.execute("DROP DATABASE IF EXISTS pagila")
        admin.execute("CREATE DATABASE pagila")
    try:
        script = (PAGILA / "pagila-schema.sql").read_bytes() + gzip.decompress(
            (PAGILA / "pagila-data.sql.gz").read_bytes()
        )
        subprocess.run(
            [
                stack.binaries.tool("psql"),
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
                "-d",
                stack.dsn("primary", "pagila"),
            ],
            input=script,
            check=True,
            capture_output=True,
            timeout=300,
        )
        wait_for_standby_replay(stack, timeout=60)
        yield stack.dsn("standby", "pagila")
    finally:
        with psycopg.connect(stack.primary_dsn, autocommit=True) as admin:
            admin.execute("DROP DATABASE IF EXISTS pagila WITH (FORCE)")


@dataclass(frozen=True)
class Reference:
    child: TableName
    columns: tuple[str, ...]
    parent: TableName
    parent_columns: tuple[str, ...]


def oracle(
    conn: psycopg.Connection[Any], root: TableName, key: str, tenant: int
) -> dict[TableName, set[Any]]:
    """docs/closure.md's rules over whole tables held in memory, with the references read from
    pg_constraint here (a partition's as its partitioned table's): the closure's code is not used."""
    references = [
        Reference(TableName(*child), tuple(columns), TableName(*parent), tuple(parent_columns))
        for child, columns, parent, parent_columns in conn.execute(
            """
            SELECT ARRAY[cn.nspname, cc.relname],
                   ARRAY(SELECT attname FROM unnest(con.conkey) WITH ORDINALITY k(n, i)
                         JOIN pg_attribute ON attrelid = con.conrelid AND attnum = k.n ORDER BY k.i),
                   ARRAY[pn.nspname, pc.relname],
                   ARRAY(SELECT attname FROM unnest(con.confkey) WITH ORDINALITY k(n, i)
                         JOIN pg_attribute ON attrelid = con.confrelid AND attnum = k.n ORDER BY k.i)
            FROM pg_constraint con
            JOIN pg_class cc ON cc.oid = coalesce(pg_partition_root(con.conrelid), con.conrelid)
            JOIN pg_namespace cn ON cn.oid = cc.relnamespace
            JOIN pg_class pc ON pc.oid = con.confrelid JOIN pg_namespace pn ON pn.oid = pc.relnamespace
            WHERE con.contype = 'f' AND con.conparentid = 0 AND cn.nspname = 'public'
            """
        )
    ]
    primary_keys = dict(
        (TableName("public", str(name)), tuple(columns))
        for name, columns in conn.execute(
            """
            SELECT c.relname, ARRAY(SELECT attname FROM unnest(con.conkey) WITH ORDINALITY k(n, i)
                                    JOIN pg_attribute ON attrelid = con.conrelid AND attnum = k.n ORDER BY k.i)
            FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid
            WHERE con.contype = 'p' AND c.relnamespace = 'public'::regnamespace AND NOT c.relispartition
            """
        )
    )
    rows = {
        table: [dict(zip([d.name for d in cur.description or ()], row, strict=True)) for row in cur]
        for table in primary_keys
        for cur in [conn.execute(sql.SQL("SELECT * FROM {}").format(table.identifier))]
    }

    def key_of(table: TableName, row: dict[str, Any]) -> Any:
        return tuple(row[column] for column in primary_keys[table])

    def values(row: dict[str, Any], columns: tuple[str, ...]) -> tuple[Any, ...] | None:
        found = tuple(row[column] for column in columns)
        return None if None in found else found

    down: dict[TableName, set[Any]] = defaultdict(set)
    down[root] = {key_of(root, row) for row in rows[root] if row[key] == tenant}
    included: dict[TableName, set[Any]] = defaultdict(set, {root: set(down[root])})
    changed = True
    while changed:
        changed = False
        for ref in references:
            parents: dict[tuple[Any, ...], list[dict[str, Any]]] = defaultdict(list)
            for parent in rows[ref.parent]:
                parents[tuple(parent[column] for column in ref.parent_columns)].append(parent)
            for child in rows[ref.child]:
                wanted = values(child, ref.columns)
                if wanted is None:
                    continue
                child_key = key_of(ref.child, child)
                for parent in parents.get(wanted, []):
                    parent_key = key_of(ref.parent, parent)
                    if (
                        ref.child != root
                        and parent_key in down[ref.parent]
                        and child_key not in down[ref.child]
                    ):
                        down[ref.child].add(child_key)
                        included[ref.child].add(child_key)
                        changed = True
                    if child_key in included[ref.child] and parent_key not in included[ref.parent]:
                        included[ref.parent].add(parent_key)
                        changed = True
    return {table: set(included[table]) for table in primary_keys}


def _plan(
    source: str, tmp_path: Path, table: str, key: str, tenant: int, policy: str, rules: str = RULES
) -> tuple[SubsetPlan, Any]:
    (tmp_path / "mask-rules.yaml").write_text(rules)
    (tmp_path / "commercial-extensions.yaml").write_text(
        f'version: "1.0"\nsubset:\n  - table: {table}\n    predicate: "{key} = :organization_id"\n'
        f"tenant:\n  table: {table}\n  key: {key}\n  cross_tenant_references: {policy}\n"
    )
    config = load_config(tmp_path / "mask-rules.yaml", tmp_path / "commercial-extensions.yaml")
    with open_source_snapshot(source) as snapshot:
        return plan_subset(snapshot, config, Secret(secrets.token_hex(32)), tenant), config


def _schema(dsn: str, tools_dir: str) -> list[str]:
    dump = subprocess.run(
        [
            f"{tools_dir}/pg_dump",
            "--schema-only",
            "--no-owner",
            "--no-privileges",
            "--exclude-schema=_repro_pipeline",
            f"--dbname={dsn}",
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    return [
        line
        for line in dump.splitlines()
        if line and not line.startswith(("--", "\\restrict", "\\unrestrict"))
    ]


@pytest.mark.parametrize("tenant", sorted(TENANTS))
def test_pagila_is_copied_for_one_tenant_exactly_with_its_schema(
    pagila: str, stack: Stack, tmp_path: Path, tenant: str
) -> None:
    table, key, tenant_id, policy = TENANTS[tenant]
    plan, config = _plan(pagila, tmp_path, table, key, tenant_id, policy)
    with psycopg.connect(pagila) as conn:
        expected = oracle(conn, TableName.parse(table), key, tenant_id)
    for name, keys in expected.items():
        got = {key if isinstance(key, tuple) else (key,) for key in plan.closure.keys.get(name, ())}
        assert got == keys, name
    assert (
        plan.closure.row_counts[TableName("public", "payment")]
        == len(expected[TableName("public", "payment")])
        > 0
    )

    with empty_target(stack, "pagila") as target:
        _, verdicts = load_and_verify(pagila, target, plan, config, batch_size=1000)
        assert all(verdict.passed for verdict in verdicts), [v.found for v in verdicts if not v.passed]
        assert verdicts[2].found["original_values_checked"] > 0
        tools = str(Path(stack.binaries.tool("pg_dump")).parent)
        assert _schema(target, tools) == _schema(pagila, tools)


def test_a_store_is_refused_by_default_and_with_null_since_its_rentals_need_their_customers(
    pagila: str, tmp_path: Path
) -> None:
    with pytest.raises(
        ClosureError, match=r"reaches other tenant\(s\) 2, [0-9, ]+ of public\.store: "
    ) as refused:
        _plan(pagila, tmp_path, "public.store", "store_id", 1, "refuse")
    assert "-> public.customer(store_id) -> public.store 2" in str(refused.value)
    with pytest.raises(ClosureError, match=r"\.customer_id lead to other tenants' rows .* NOT NULL"):
        _plan(pagila, tmp_path, "public.store", "store_id", 1, '"null"')


# The default: indexes that back no constraint are left out; payment is left out too, with the views that
# read it (sales_by_film_category, sales_by_store), and the foreign keys of its partitions.
DEFAULT_RULES = (
    RULES.replace("replicate_all_indexes: true\n", "") + "  public.payment:\n    strategy: exclude\n"
)
SCHEMA_CHANGES = {
    "trigger dropped": (
        "DROP TRIGGER last_updated ON public.film",
        "-CREATE TRIGGER last_updated BEFORE UPDATE ON public.film FOR EACH ROW "
        "EXECUTE FUNCTION public.last_updated();",
        1,
    ),
    "foreign key dropped": (
        "ALTER TABLE public.rental DROP CONSTRAINT rental_customer_id_fkey",
        "-    ADD CONSTRAINT rental_customer_id_fkey FOREIGN KEY (customer_id) "
        "REFERENCES public.customer(customer_id) ON UPDATE CASCADE ON DELETE RESTRICT;",
        2,  # its ALTER TABLE line too
    ),
    "default changed": (
        "ALTER TABLE public.customer ALTER COLUMN active SET DEFAULT 7",
        "+    active integer DEFAULT 7",
        2,  # the line as it was, and as it is
    ),
    "index added": (
        "CREATE INDEX film_title_idx ON public.film (title)",
        "+CREATE INDEX film_title_idx ON public.film USING btree (title);",
        1,
    ),
}


@dataclass(frozen=True)
class Loaded:
    dsn: str
    schema: ReplicatedSchema
    verdicts: tuple[Verdict, ...]


@pytest.fixture(scope="module")
def default_load(pagila: str, stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Loaded]:
    """The customer tenant loaded with the default rules, checked in the load's snapshot."""
    plan, config = _plan(
        pagila, tmp_path_factory.mktemp("default"), *TENANTS["customer"], rules=DEFAULT_RULES
    )
    assert TableName("public", "payment") not in plan.created_tables
    with empty_target(stack, "pagila_default") as target:
        report, verdicts = load_and_verify(pagila, target, plan, config, batch_size=1000)
        yield Loaded(target, report.schema, verdicts)


def test_the_schema_check_passes_on_pagila_with_what_the_default_leaves_out(default_load: Loaded) -> None:
    assert all(verdict.passed for verdict in default_load.verdicts), [
        v.found for v in default_load.verdicts if not v.passed
    ]
    schema = default_load.verdicts[3]
    assert schema.check == "schema_matches_source"
    assert schema.found["lines_compared"] > 500 and schema.found["differing_lines"] == 0
    assert "CREATE TABLE public.payment " not in default_load.schema.scripts.pre_data  # no difference
    assert "CREATE INDEX idx_fk_" not in default_load.schema.scripts.post_data


@pytest.mark.parametrize("change", sorted(SCHEMA_CHANGES))
def test_the_schema_check_fails_with_the_diff_when_the_loaded_schema_is_changed(
    default_load: Loaded, stack: Stack, change: str
) -> None:
    statement, diff_line, differing_lines = SCHEMA_CHANGES[change]
    with copy_of(stack, default_load.dsn) as changed:
        with psycopg.connect(changed, autocommit=True) as conn:
            conn.execute(statement)
        verdict = schema_matches_source(default_load.schema, changed)
    assert not verdict.passed
    assert diff_line in verdict.found["diff"].splitlines(), verdict.found["diff"]
    assert verdict.found["differing_lines"] == differing_lines
    assert stack.password not in verdict.found["diff"]
