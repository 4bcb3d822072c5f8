"""Foreign keys declared on partitions, as Pagila's payment table has them: the closure follows them as
references of the partitioned table, the load recreates them on each partition, the orphan check covers them."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from repro_pipeline.embedded.stack import Stack
from repro_pipeline.engine.config import load_config
from repro_pipeline.engine.load.loader import load_repro
from repro_pipeline.engine.load.parallel import LoadWorkers
from repro_pipeline.engine.load.plan import plan_subset
from repro_pipeline.engine.secrets import Secret
from repro_pipeline.engine.source.catalog import TableName
from repro_pipeline.engine.source.snapshot import open_source_snapshot
from repro_pipeline.engine.verify.checks import zero_fk_orphans
from repro_pipeline_tests.engine.load.databases import empty_target, source_database

SCHEMA = """
CREATE TABLE stores (id int PRIMARY KEY, name text NOT NULL);
CREATE TABLE customers (id int PRIMARY KEY, store_id int NOT NULL REFERENCES stores (id), email text NOT NULL);
CREATE TABLE payments (
    id int NOT NULL, customer_id int NOT NULL, paid_at date NOT NULL, amount numeric NOT NULL,
    PRIMARY KEY (paid_at, id)
) PARTITION BY RANGE (paid_at);
CREATE TABLE payments_2025 PARTITION OF payments FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE TABLE payments_2026 PARTITION OF payments FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
ALTER TABLE payments_2025 ADD CONSTRAINT payments_2025_customer_id_fkey
    FOREIGN KEY (customer_id) REFERENCES customers (id);
ALTER TABLE payments_2026 ADD CONSTRAINT payments_2026_customer_id_fkey
    FOREIGN KEY (customer_id) REFERENCES customers (id);
INSERT INTO stores SELECT g, 'store ' || g FROM generate_series(1, 2) g;
INSERT INTO customers SELECT g, 1 + g % 2, 'c' || g || '@shop.test' FROM generate_series(1, 6) g;
INSERT INTO payments SELECT g, 1 + g % 6, date '2025-06-01' + g * 8, g FROM generate_series(1, 60) g;
"""
EXTENSIONS = """
version: "1.0"
subset:
  - table: public.stores
    predicate: "id = :organization_id"
"""
STORE = 1
PAYMENTS = TableName("public", "payments")


@pytest.fixture(scope="module")
def partitioned_source(stack: Stack) -> Iterator[str]:
    with source_database(stack, "partition_fks", SCHEMA) as dsn:
        yield dsn


@pytest.fixture
def target(stack: Stack) -> Iterator[str]:
    with empty_target(stack, "partition_fks") as dsn:
        yield dsn


@pytest.mark.parametrize("workers", [1, 2], ids=["one worker", "two workers"])
def test_a_partitioned_table_is_reached_through_the_foreign_keys_of_its_partitions(
    partitioned_source: str, target: str, tmp_path: Path, workers: int
) -> None:
    (tmp_path / "mask-rules.yaml").write_text('version: "1.0"\n')
    (tmp_path / "commercial-extensions.yaml").write_text(EXTENSIONS)
    config = load_config(tmp_path / "mask-rules.yaml", tmp_path / "commercial-extensions.yaml")
    with psycopg.connect(partitioned_source) as conn:
        ((expected,),) = conn.execute(
            "SELECT count(*) FROM payments p JOIN customers c ON c.id = p.customer_id WHERE c.store_id = %s",
            (STORE,),
        ).fetchall()
    with open_source_snapshot(partitioned_source) as snapshot:
        salt = Secret(secrets.token_hex(32))
        plan = plan_subset(snapshot, config, salt, STORE)
        assert plan.closure.row_counts[PAYMENTS] == expected > 0
        load_repro(
            snapshot,
            target,
            plan,
            run_id="partition-fks",
            started_at=datetime.now(UTC),
            batch_size=7,
            # A partitioned table is written through its parent by one worker, without TRUNCATE or FREEZE.
            workers=LoadWorkers(workers, config, salt, min_rows_each=1),
        )
    with psycopg.connect(target, autocommit=True) as conn:
        declared = conn.execute(
            "SELECT conrelid::regclass::text, conname FROM pg_constraint WHERE contype = 'f' "
            "AND conrelid::regclass::text LIKE 'payments%' ORDER BY 1"
        ).fetchall()
        assert declared == [
            ("payments_2025", "payments_2025_customer_id_fkey"),
            ("payments_2026", "payments_2026_customer_id_fkey"),
        ]
        assert conn.execute("SELECT count(*) FROM payments").fetchone() == (expected,)
        clean = zero_fk_orphans(plan, conn)
        assert (
            clean.passed and clean.found["foreign_keys_checked"] == 2
        )  # customers->stores, payments->customers

        conn.execute("SET session_replication_role = replica")  # as a careless restore would
        conn.execute("INSERT INTO payments VALUES (999, 999, '2026-03-01', 1)")
        orphaned = zero_fk_orphans(plan, conn)
    assert not orphaned.passed
    assert orphaned.found["failing_foreign_keys"] == {
        "public.payments(customer_id) -> public.customers(id)": 1
    }
