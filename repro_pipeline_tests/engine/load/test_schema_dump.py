"""Schema replication by pg_dump: what a real schema holds arrives on the target, from the load's snapshot,
without what the repro leaves out, and without a trigger firing on the load's rows."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from repro_pipeline.embedded.stack import Stack
from repro_pipeline.engine.config import load_config
from repro_pipeline.engine.errors import ConfigError, StandbyNotReady, TargetError
from repro_pipeline.engine.load.loader import load_repro
from repro_pipeline.engine.load.plan import SubsetPlan, plan_subset
from repro_pipeline.engine.load.schema_dump import _run, find_dump_tools, runnable
from repro_pipeline.engine.secrets import Secret
from repro_pipeline.engine.source.snapshot import open_source_snapshot
from repro_pipeline_tests.engine.load.databases import empty_target, source_database

SCHEMA = """
CREATE SCHEMA app;
CREATE TYPE app.plan AS ENUM ('free', 'pro');
CREATE DOMAIN app.year AS integer CHECK (VALUE BETWEEN 1900 AND 2100);
CREATE TYPE app.money_amount AS (cents bigint, currency char(3));
CREATE TABLE app.accounts (
    id int GENERATED ALWAYS AS IDENTITY (START WITH 1000 INCREMENT BY 10) PRIMARY KEY,
    plan app.plan NOT NULL,
    founded app.year,
    balance app.money_amount,
    tags text[] NOT NULL DEFAULT '{}'
);
CREATE TABLE app.bookings (
    id serial PRIMARY KEY,
    account_id int NOT NULL REFERENCES app.accounts (id),
    during tstzrange NOT NULL,
    EXCLUDE USING gist (during WITH &&)
);
CREATE TABLE app.secrets (id int PRIMARY KEY, account_id int REFERENCES app.accounts (id), token text);
CREATE TABLE app.audit (id int PRIMARY KEY, secret_id int REFERENCES app.secrets (id), note text);
CREATE INDEX bookings_account ON app.bookings (account_id);
CREATE TABLE app.visits (
    id int, account_id int NOT NULL REFERENCES app.accounts (id), at date NOT NULL, PRIMARY KEY (id, at)
) PARTITION BY RANGE (at);
CREATE TABLE app.visits_2025 PARTITION OF app.visits FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE INDEX visits_account ON app.visits (account_id);
COMMENT ON INDEX app.visits_account IS 'left out with its index, and the partition index attached to it';
CREATE TABLE app.logs (id int, at date NOT NULL, PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
CREATE TABLE app.logs_2025 PARTITION OF app.logs FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE VIEW app.pro_accounts AS SELECT id FROM app.accounts WHERE plan = 'pro';
CREATE MATERIALIZED VIEW app.booking_counts AS SELECT account_id, count(*) AS bookings FROM app.bookings GROUP BY 1;
CREATE VIEW app.secret_tokens AS SELECT token FROM app.secrets;
CREATE VIEW app.secret_count AS SELECT count(*) FROM app.secret_tokens;
CREATE FUNCTION app.refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'bookings are read only'; END $$;
CREATE TRIGGER bookings_read_only BEFORE INSERT ON app.bookings FOR EACH ROW EXECUTE FUNCTION app.refuse();
CREATE FUNCTION app.note_ddl() RETURNS event_trigger LANGUAGE plpgsql AS $$ BEGIN END $$;
CREATE EVENT TRIGGER note_ddl ON ddl_command_end EXECUTE FUNCTION app.note_ddl();
ALTER TABLE app.bookings DISABLE TRIGGER bookings_read_only;
INSERT INTO app.accounts (plan, founded, balance, tags)
    SELECT CASE WHEN g % 2 = 0 THEN 'pro' ELSE 'free' END::app.plan, 2000 + g, ROW(g * 100, 'EUR')::app.money_amount, ARRAY['t' || g]
    FROM generate_series(1, 4) g;
INSERT INTO app.bookings (account_id, during)
    SELECT 1000 + 10 * (g % 4), tstzrange(now() + g * interval '1 day', now() + g * interval '1 day' + interval '1 hour')
    FROM generate_series(1, 8) g;
INSERT INTO app.visits SELECT g, 1000 + 10 * (g % 4), date '2025-03-01' + g FROM generate_series(1, 8) g;
INSERT INTO app.secrets SELECT g, 1000 + 10 * (g % 4), 'token' || g FROM generate_series(1, 4) g;
INSERT INTO app.audit SELECT g, 1 + g % 4, 'note' || g FROM generate_series(1, 4) g;
ALTER TABLE app.bookings ENABLE TRIGGER bookings_read_only;
"""
RULES = """
version: "1.0"
tables:
  app.secrets:
    strategy: exclude
  app.logs:
    strategy: exclude
"""
EXTENSIONS = """
version: "1.0"
subset:
  - table: app.accounts
    predicate: "id = :organization_id"
tenant:
  table: app.accounts
  key: id
"""
ACCOUNT = 1010


@pytest.fixture(scope="module")
def app_source(stack: Stack) -> Iterator[str]:
    with source_database(stack, "schema_dump", SCHEMA) as dsn:
        yield dsn


def _plan_and_load(source: str, target: str, tmp_path: Path, rules: str = RULES) -> SubsetPlan:
    (tmp_path / "mask-rules.yaml").write_text(rules)
    (tmp_path / "commercial-extensions.yaml").write_text(EXTENSIONS)
    config = load_config(tmp_path / "mask-rules.yaml", tmp_path / "commercial-extensions.yaml")
    with open_source_snapshot(source) as snapshot:
        plan = plan_subset(snapshot, config, Secret(secrets.token_hex(32)), ACCOUNT)
        load_repro(snapshot, target, plan, run_id="schema-dump", started_at=datetime.now(UTC), batch_size=3)
    return plan


def _one(conn: psycopg.Connection[tuple[object, ...]], query: str) -> object:
    row = conn.execute(query).fetchone()
    return None if row is None else row[0]


def test_the_schema_arrives_as_pg_dump_writes_it_without_what_is_left_out(
    app_source: str, stack: Stack, tmp_path: Path
) -> None:
    with empty_target(stack, "schema_dump") as target:
        _plan_and_load(app_source, target, tmp_path)
        with psycopg.connect(target, autocommit=True) as conn:
            assert _one(conn, "SELECT enum_range(NULL::app.plan)::text") == "{free,pro}"
            assert _one(conn, "SELECT founded FROM app.accounts") == 2002
            assert _one(conn, "SELECT (balance).currency FROM app.accounts") == "EUR"
            assert (
                _one(
                    conn,
                    "SELECT start_value || '/' || increment_by FROM pg_sequences "
                    "WHERE sequencename = 'accounts_id_seq'",
                )
                == "1000/10"
            )
            assert _one(conn, "SELECT count(*) FROM app.pro_accounts") == 1  # account 1010 is a pro one
            # The views over the excluded table are left out with it, and the foreign key to it.
            assert _one(conn, "SELECT count(*) FROM pg_views WHERE schemaname = 'app'") == 1
            assert (
                _one(conn, "SELECT count(*) FROM pg_constraint WHERE conname = 'audit_secret_id_fkey'") == 0
            )
            assert _one(conn, "SELECT to_regclass('app.secrets')") is None
            assert _one(conn, "SELECT to_regclass('app.logs_2025')") is None  # an excluded table's partition
            assert _one(conn, "SELECT count(*) FROM app.visits") == 2
            # The exclusion constraint and the trigger arrive after the rows: the trigger never saw them.
            assert _one(conn, "SELECT count(*) FROM app.bookings") == 2
            assert (
                _one(conn, "SELECT bookings FROM app.booking_counts") == 2
            )  # refreshed over the loaded rows
            assert _one(conn, "SELECT count(*) FROM pg_constraint WHERE contype = 'x'") == 1
            with pytest.raises(psycopg.errors.RaiseException, match="bookings are read only"):
                conn.execute(
                    "INSERT INTO app.bookings (account_id, during) VALUES (1010, tstzrange(now(), now()))"
                )
            assert _one(conn, "SELECT count(*) FROM pg_event_trigger") == 0
            # Indexes backing no constraint come with replicate_all_indexes only.
            assert _one(conn, "SELECT count(*) FROM pg_indexes WHERE indexname = 'bookings_account'") == 0
            assert (
                _one(
                    conn,
                    "SELECT count(*) FROM pg_indexes WHERE tablename LIKE 'visits%' AND indexname NOT LIKE '%pkey'",
                )
                == 0
            )
    with empty_target(stack, "schema_dump") as target:
        _plan_and_load(
            app_source,
            target,
            tmp_path,
            RULES.replace('version: "1.0"', 'version: "1.0"\nreplicate_all_indexes: true'),
        )
        with psycopg.connect(target, autocommit=True) as conn:
            assert _one(conn, "SELECT count(*) FROM pg_indexes WHERE indexname = 'bookings_account'") == 1
            assert _one(conn, "SELECT obj_description('app.visits_account'::regclass)") is not None


def test_a_pg_dump_older_than_the_source_is_never_used(tmp_path: Path) -> None:
    with pytest.raises(TargetError, match="no pg_dump for PostgreSQL 99 or newer was found") as refused:
        find_dump_tools(99, 99)
    assert "REPRO_PG_BIN" in refused.value.remedy
    with pytest.raises(TargetError, match=f"tried {tmp_path} \\(no pg_dump and pg_restore\\)"):
        find_dump_tools(15, 15, {"REPRO_PG_BIN": str(tmp_path)})


def test_the_oldest_pg_dump_that_reads_the_source_is_chosen() -> None:
    tools = find_dump_tools(12, 99)
    assert tools.major >= 12
    assert find_dump_tools(tools.major, 99).major == tools.major


def test_a_script_keeps_its_statements_and_drops_what_the_target_cannot_run() -> None:
    script = (
        "--\n-- dump\n--\n\n\\restrict abc\n\nSET transaction_timeout = 0;\nSET statement_timeout = 0;\n"
        "-- Name: f; Type: FUNCTION\nCREATE FUNCTION f() RETURNS text LANGUAGE sql AS $$\n"
        "SET transaction_timeout = 1;\n\\x\n$$;\n--\n\n\\unrestrict abc\n"
    )
    assert runnable(script, {"statement_timeout"}) == (
        "--\n-- dump\n--\n\n\nSET statement_timeout = 0;\n"
        "-- Name: f; Type: FUNCTION\nCREATE FUNCTION f() RETURNS text LANGUAGE sql AS $$\n"
        "SET transaction_timeout = 1;\n\\x\n$$;\n--\n\n"
    )
    with pytest.raises(TargetError, match=r"a psql command the load cannot run: \\connect"):
        runnable("\\connect other\n", set())


NEEDING_SECRETS = """
CREATE FUNCTION app.all_secrets() RETURNS SETOF app.secrets LANGUAGE sql AS 'SELECT * FROM app.secrets';
ALTER TABLE app.accounts ENABLE ROW LEVEL SECURITY;
CREATE POLICY with_a_secret ON app.accounts USING (EXISTS (SELECT 1 FROM app.secrets s WHERE s.account_id = id));
CREATE TABLE app.archive (id int PRIMARY KEY, kept app.secrets);
"""


def test_what_needs_an_excluded_table_is_refused_at_plan_time_and_strategy_empty_keeps_it(
    stack: Stack, tmp_path: Path
) -> None:
    with source_database(stack, "schema_dump_needs", SCHEMA + NEEDING_SECRETS) as source:
        with pytest.raises(ConfigError, match="objects that need a table with strategy exclude") as refused:
            _plan_and_load(source, "", tmp_path)
        assert str(refused.value).count("depends on") == 3
        for dependent in (
            "function app.all_secrets() depends on type app.secrets",
            "policy with_a_secret on table app.accounts depends on table app.secrets",
            "column kept of table app.archive depends on type app.secrets",
        ):
            assert dependent in str(refused.value)
        assert "strategy empty" in refused.value.remedy
        with empty_target(stack, "schema_dump") as target:
            _plan_and_load(source, target, tmp_path, RULES.replace("strategy: exclude", "strategy: empty", 1))
            with psycopg.connect(target, autocommit=True) as conn:
                assert _one(conn, "SELECT count(*) FROM app.secrets") == 0
                assert _one(conn, "SELECT count(*) FROM pg_policy WHERE polname = 'with_a_secret'") == 1


@pytest.mark.parametrize(
    ("reason", "remedy"),
    [
        (
            "ERROR:  canceling statement due to conflict with recovery DETAIL:  User was holding a relation "
            "lock for too long.",
            "vacuum_truncate = off",
        ),
        ('ERROR:  permission denied for table "invoices"', "its role's privileges"),
    ],
)
def test_a_pg_dump_the_standby_cancelled_says_why_and_what_helps(
    tmp_path: Path, reason: str, remedy: str
) -> None:
    """The standby cancels a read that holds back the replay of a lock the primary took (as pg_dump's
    catalog queries after DDL or VACUUM's truncation on the primary): launching again is the fix."""
    tool = tmp_path / "pg_dump"
    tool.write_text(f"#!/bin/sh\necho 'pg_dump: error: query failed: {reason}' >&2\nexit 1\n")
    tool.chmod(0o755)
    with pytest.raises(StandbyNotReady) as failure:
        _run([tool], "postgresql://reader:s3cret-pw@127.0.0.1:5432/billing")
    assert failure.value.problem.startswith("pg_dump could not read the source's schema: ")
    assert remedy in failure.value.remedy and failure.value.remedy.startswith("nothing was handed off")
    assert "s3cret-pw" not in failure.value.problem + failure.value.remedy
