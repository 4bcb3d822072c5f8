"""The engine without Dagster: closure and masked load on the real standby, straight into a target database."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from repro_pipeline.embedded.stack import Stack
from repro_pipeline.embedded.synthetic import SourceSummary
from repro_pipeline.engine.config import load_config
from repro_pipeline.engine.dsn import with_database
from repro_pipeline.engine.errors import ClosureError, ConfigError
from repro_pipeline.engine.load.loader import load_repro
from repro_pipeline.engine.load.plan import SubsetPlan, plan_subset
from repro_pipeline.engine.secrets import Secret
from repro_pipeline.engine.source.catalog import TableName
from repro_pipeline.engine.source.snapshot import open_source_snapshot
from repro_pipeline_tests.conftest import FIXTURES, PROJECT_ROOT

GUIDE = FIXTURES / "guide"
CONFIG = PROJECT_ROOT / "config"


def _plan(stack: Stack, directory: Path, salt: str, organization_id: int) -> SubsetPlan:
    config = load_config(directory / "mask-rules.yaml", directory / "commercial-extensions.yaml")
    with open_source_snapshot(stack.standby_dsn) as snapshot:
        return plan_subset(snapshot, config, Secret(salt), organization_id)


@pytest.fixture
def build_into(stack: Stack, source: SourceSummary) -> Iterator[Any]:
    """Builds a repro database with the engine alone; drops every database it made afterwards."""
    made: list[str] = []

    def build(
        directory: Path, salt: str, organization_id: int = 451, *, source_dsn: str = "", batch_size: int = 500
    ) -> str:
        name = f"engine_test_{secrets.token_hex(4)}"
        with psycopg.connect(stack.target_admin_dsn, autocommit=True) as admin:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        made.append(name)
        config = load_config(directory / "mask-rules.yaml", directory / "commercial-extensions.yaml")
        target_dsn = with_database(stack.target_admin_dsn, name)
        with open_source_snapshot(source_dsn or stack.standby_dsn) as snapshot:
            plan = plan_subset(snapshot, config, Secret(salt), organization_id)
            load_repro(
                snapshot, target_dsn, plan, run_id=name, started_at=datetime.now(UTC), batch_size=batch_size
            )
        return target_dsn

    yield build
    with psycopg.connect(stack.target_admin_dsn, autocommit=True) as admin:
        for name in made:
            admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def _rows(dsn: str, query: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(query).fetchall()


MASKED = (
    "SELECT u.id, u.email, u.full_name, pm.provider_token FROM users u "
    "LEFT JOIN payment_methods pm ON pm.user_id = u.id ORDER BY u.id, pm.id"
)


def test_guide_files_unchanged_give_the_same_repro_as_the_parameterized_config(build_into: Any) -> None:
    salt = secrets.token_hex(32)
    guide_dsn = build_into(GUIDE, salt)
    ours_dsn = build_into(CONFIG, salt)
    assert _rows(guide_dsn, MASKED) == _rows(ours_dsn, MASKED)
    assert _rows(guide_dsn, "SELECT count(*) FROM audit_events") == _rows(
        ours_dsn, "SELECT count(*) FROM audit_events"
    )


def test_a_different_salt_gives_different_masked_values(build_into: Any) -> None:
    first = _rows(build_into(CONFIG, secrets.token_hex(32)), MASKED)
    second = _rows(build_into(CONFIG, secrets.token_hex(32)), MASKED)
    assert [row[0] for row in first] == [row[0] for row in second]
    for before, after in zip(first, second, strict=True):
        assert before[1] != after[1] and before[2] != after[2]  # email, full_name
        assert before[3] is None or before[3] != after[3]  # provider_token


def test_small_batches_load_the_same_rows_as_one_batch(build_into: Any, stack: Stack) -> None:
    dsn = build_into(CONFIG, secrets.token_hex(32))
    with psycopg.connect(dsn) as conn:
        loaded = dict(conn.execute("SELECT table_name, loaded_rows FROM _repro_pipeline.tables").fetchall())
        closure = dict(conn.execute("SELECT table_name, closure_rows FROM _repro_pipeline.tables").fetchall())
    assert loaded == closure
    assert loaded["public.invoice_line_items"] > 500


def test_identity_sequences_continue_after_the_loaded_rows(build_into: Any) -> None:
    dsn = build_into(CONFIG, secrets.token_hex(32))
    with psycopg.connect(dsn) as conn:
        largest = conn.execute("SELECT max(id) FROM invoices").fetchone()
        new_id = conn.execute(
            "INSERT INTO invoices (subscription_id, issued_at, total_cents) "
            "SELECT id, now(), 1 FROM subscriptions LIMIT 1 RETURNING id"
        ).fetchone()
        conn.rollback()
    assert largest is not None and new_id is not None
    assert new_id[0] > largest[0]


def test_guide_literal_config_refuses_another_organization(stack: Stack, source: SourceSummary) -> None:
    with pytest.raises(ConfigError, match="would copy organization 451"):
        _plan(stack, GUIDE, secrets.token_hex(32), 452)


def test_an_organization_that_does_not_exist_is_an_explicit_error(
    stack: Stack, source: SourceSummary
) -> None:
    with pytest.raises(ClosureError, match=r"matched no rows|no root predicate matched any row"):
        _plan(stack, CONFIG, secrets.token_hex(32), 999_999)


def test_a_broken_predicate_names_its_file_and_line(
    stack: Stack, source: SourceSummary, tmp_path: Path
) -> None:
    text = (CONFIG / "commercial-extensions.yaml").read_text()
    broken = text.replace('"id = :organization_id"', '"idd = :organization_id"')
    with pytest.raises(ClosureError) as error:
        _plan(stack, _configs(tmp_path, extensions=broken), secrets.token_hex(32), 451)
    assert "commercial-extensions.yaml:" in str(error.value) and "idd" in str(error.value)


@pytest.mark.parametrize(
    ("predicate", "says"),
    [
        ("id = :organization_id AND random() < 2", "calls random(), which is VOLATILE on the source"),
        (
            "id = :organization_id AND pg_catalog.clock_timestamp() > now()",
            "calls pg_catalog.clock_timestamp()",
        ),
        (
            "id = :organization_id AND no_such_function(id)",
            "calls no_such_function(), which the source does not have",
        ),
        (
            "id = :organization_id AND public.lower(legal_name) = legal_name",
            "calls public.lower(), which the source does not",
        ),
    ],
)
def test_a_predicate_may_call_only_functions_that_select(
    stack: Stack, source: SourceSummary, tmp_path: Path, predicate: str, says: str
) -> None:
    text = (CONFIG / "commercial-extensions.yaml").read_text()
    acting = text.replace('"id = :organization_id"', f'"{predicate}"')
    with pytest.raises(ConfigError) as error:
        _plan(stack, _configs(tmp_path, extensions=acting), secrets.token_hex(32), 451)
    assert says in str(error.value) and "commercial-extensions.yaml:" in str(error.value)


def test_a_predicate_may_call_stable_and_immutable_functions(
    stack: Stack, source: SourceSummary, tmp_path: Path
) -> None:
    text = (CONFIG / "commercial-extensions.yaml").read_text()
    selecting = text.replace(
        '"id = :organization_id"',
        "\"id = :organization_id AND lower(legal_name) = lower(legal_name) AND now() > 'epoch'\"",
    )
    plan = _plan(stack, _configs(tmp_path, extensions=selecting), secrets.token_hex(32), 451)
    assert plan.closure.total_rows > 0


def test_rules_on_unknown_tables_or_columns_are_refused_before_loading(
    stack: Stack, source: SourceSummary, tmp_path: Path
) -> None:
    rules = (CONFIG / "mask-rules.yaml").read_text()
    misspelled = _configs(tmp_path, rules=rules.replace("      email:", "      emial:"))
    with pytest.raises(
        ConfigError, match=r"mask-rules.yaml:\d+: tables.public.users.columns.emial: unknown column"
    ):
        _plan(stack, misspelled, secrets.token_hex(32), 451)
    unknown = _configs(tmp_path, rules=rules.replace("public.payment_methods:", "public.payment_method:"))
    with pytest.raises(ConfigError, match=r"no table public\.payment_method"):
        _plan(stack, unknown, secrets.token_hex(32), 451)


def test_null_action_on_a_not_null_column_is_refused(
    stack: Stack, source: SourceSummary, tmp_path: Path
) -> None:
    rules = (CONFIG / "mask-rules.yaml").read_text()
    nulled = _configs(
        tmp_path, rules=rules.replace("{ action: fake, provider: full_name }", "{ action: null }")
    )
    with pytest.raises(ConfigError, match="action null on a NOT NULL column"):
        _plan(stack, nulled, secrets.token_hex(32), 451)


def test_the_closure_runs_on_the_read_only_standby(stack: Stack, source: SourceSummary) -> None:
    with psycopg.connect(stack.standby_dsn) as conn:
        assert conn.execute("SELECT pg_is_in_recovery()").fetchone() == (True,)
    plan = _plan(stack, CONFIG, secrets.token_hex(32), 451)
    assert plan.closure.passes >= 2
    assert plan.closure.row_counts[next(t for t in plan.closure.keys if t.name == "organizations")] == 1


EDGE_SCHEMA = """
CREATE SCHEMA "Billing";
CREATE TABLE "Billing"."Tenants" (id serial PRIMARY KEY, code text NOT NULL);
CREATE UNIQUE INDEX tenants_code_key ON "Billing"."Tenants" (code);
CREATE TABLE "Billing".accounts (
    tenant_id int NOT NULL REFERENCES "Billing"."Tenants" (id),
    account_no int NOT NULL,
    parent_no int,
    owner_email text NOT NULL,
    PRIMARY KEY (tenant_id, account_no),
    FOREIGN KEY (tenant_id, parent_no) REFERENCES "Billing".accounts (tenant_id, account_no)
);
CREATE TABLE public.tags (
    id bigserial PRIMARY KEY,
    tenant_code text NOT NULL REFERENCES "Billing"."Tenants" (code),
    label text CHECK (label <> '')
);
CREATE TABLE public.notes (
    id serial PRIMARY KEY,
    tenant_id int NOT NULL REFERENCES "Billing"."Tenants" (id),
    tag_id bigint REFERENCES public.tags (id),
    body text
);
CREATE TABLE public.events (
    id bigserial,
    tenant_id int NOT NULL REFERENCES "Billing"."Tenants" (id),
    at date NOT NULL,
    PRIMARY KEY (id, tenant_id, at)
) PARTITION BY RANGE (at);
CREATE TABLE public.events_2025 PARTITION OF public.events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE TABLE "Billing".events_2026 PARTITION OF public.events
    FOR VALUES FROM ('2026-01-01') TO ('2027-01-01') PARTITION BY LIST (tenant_id);
CREATE TABLE "Billing".events_2026_t2 PARTITION OF "Billing".events_2026 FOR VALUES IN (2);
CREATE TABLE "Billing".events_2026_rest PARTITION OF "Billing".events_2026 DEFAULT;
CREATE TABLE public.events_other PARTITION OF public.events DEFAULT;
CREATE TABLE public.audit_trail (
    tenant_id int REFERENCES "Billing"."Tenants" (id),
    tag_id bigint REFERENCES public.tags (id),
    message text
);
INSERT INTO "Billing"."Tenants" (code) SELECT 'T' || g FROM generate_series(1, 3) g;
INSERT INTO "Billing".accounts SELECT t, a, CASE WHEN a > 1 THEN a - 1 END, 'owner' || t || '.' || a || '@corp.test'
    FROM generate_series(1, 3) t, generate_series(1, 5) a;
INSERT INTO public.tags (tenant_code, label) SELECT 'T' || (1 + g % 3), 'tag' || g FROM generate_series(1, 12) g;
INSERT INTO public.notes (tenant_id, tag_id, body) SELECT 1 + g % 3, g, 'note' || g FROM generate_series(1, 12) g;
INSERT INTO public.events (tenant_id, at) SELECT 1 + g % 3, date '2025-06-01' + g * 7 FROM generate_series(1, 90) g;
INSERT INTO public.audit_trail  -- each row's tag belongs to the row's tenant; every 4th row names no tenant
    SELECT CASE WHEN g % 4 = 0 THEN NULL ELSE 1 + g % 3 END, 3 + g % 3 + 3 * ((g / 3) % 3), 'm' || g
    FROM generate_series(1, 48) g;
"""
# audit_trail has no primary key: its rows of tenant 2 are those with tenant_id 2 or a tag of tenant 2.
TRAIL_OF_TENANT_2 = sum(1 for g in range(1, 49) if g % 3 == 1)
EDGE_RULES = """
version: "1.0"
tables:
  Billing.accounts:
    columns:
      owner_email: { action: fake, provider: email }
"""
EDGE_EXTENSIONS = """
version: "1.0"
subset:
  - table: Billing.Tenants
    predicate: "id = :organization_id -- the tenant"
"""


@pytest.fixture(scope="module")
def edge_source(stack: Stack) -> Iterator[str]:
    """A schema unlike the guide's: quoted names, a non-public schema, serial keys, a composite
    self-referencing FK, and an FK to a unique index."""
    with psycopg.connect(stack.primary_dsn, autocommit=True) as admin:
        admin.execute("DROP DATABASE IF EXISTS edge")
        admin.execute("CREATE DATABASE edge")
    with psycopg.connect(stack.dsn("primary", "edge"), autocommit=True) as conn:
        conn.execute(EDGE_SCHEMA)
    from repro_pipeline.embedded.stack import wait_for_standby_replay

    wait_for_standby_replay(stack, timeout=30)
    yield stack.dsn("standby", "edge")
    with psycopg.connect(stack.primary_dsn, autocommit=True) as admin:
        admin.execute("DROP DATABASE edge WITH (FORCE)")


def test_another_schema_is_copied_with_its_keys_indexes_and_sequences(
    edge_source: str, tmp_path: Path, build_into: Any
) -> None:
    counts = _edge_closure(edge_source, tmp_path, EDGE_RULES, EDGE_EXTENSIONS, 2)
    target = build_into(tmp_path, secrets.token_hex(32), 2, source_dsn=edge_source, batch_size=2)
    assert counts == {
        "Billing.Tenants": 1,
        "Billing.accounts": 5,
        "public.audit_trail": TRAIL_OF_TENANT_2,
        "public.events": 30,
        "public.notes": 4,
        "public.tags": 4,
    }
    with psycopg.connect(target) as conn:
        assert conn.execute('SELECT code FROM "Billing"."Tenants"').fetchall() == [("T2",)]
        emails = [row[0] for row in conn.execute('SELECT owner_email FROM "Billing".accounts')]
        assert len(emails) == 5 and not any(email.endswith("@corp.test") for email in emails)
        constraints = {
            row[0]
            for row in conn.execute("SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE contype = 'f'")
        }
        assert (
            'FOREIGN KEY (tenant_id, parent_no) REFERENCES "Billing".accounts(tenant_id, account_no)'
            in constraints
        )
        assert 'FOREIGN KEY (tenant_code) REFERENCES "Billing"."Tenants"(code)' in constraints
        assert conn.execute(
            "SELECT count(*) FROM pg_indexes WHERE indexname = 'tenants_code_key'"
        ).fetchone() == (1,)
        new_id = conn.execute(
            """INSERT INTO "Billing"."Tenants" (code) VALUES ('T9') RETURNING id"""
        ).fetchone()
        by_partition = dict(conn.execute("SELECT tableoid::regclass::text, count(*) FROM events GROUP BY 1"))
        assert sum(by_partition.values()) == 30
        assert (
            set(by_partition) <= {"events_2025", '"Billing".events_2026_t2', "events_other"}
            and '"Billing".events_2026_t2' in by_partition
        )
        largest_tag = conn.execute("SELECT max(id) FROM tags").fetchone()
        new_tag = conn.execute(
            "INSERT INTO tags (tenant_code, label) VALUES ('T2', 'x') RETURNING id"
        ).fetchone()
        assert new_id is not None and new_id[0] > 2
        assert largest_tag is not None and new_tag is not None and new_tag[0] > largest_tag[0]
        conn.rollback()


def _configs(tmp_path: Path, *, rules: str | None = None, extensions: str | None = None) -> Path:
    (tmp_path / "mask-rules.yaml").write_text(rules or (CONFIG / "mask-rules.yaml").read_text())
    (tmp_path / "commercial-extensions.yaml").write_text(
        extensions or (CONFIG / "commercial-extensions.yaml").read_text()
    )
    return tmp_path


def test_a_root_written_for_another_organization_is_refused(
    stack: Stack, source: SourceSummary, tmp_path: Path
) -> None:
    mixed = (
        (CONFIG / "commercial-extensions.yaml")
        .read_text()
        .replace("organization_id = :organization_id AND", "organization_id = 451 AND")
    )
    with pytest.raises(ClosureError, match=r"reaches other tenant\(s\) 451 of public.organizations"):
        _plan(stack, _configs(tmp_path, extensions=mixed), secrets.token_hex(32), 452)


def test_a_copied_table_referencing_an_empty_one_is_refused(
    stack: Stack, source: SourceSummary, tmp_path: Path
) -> None:
    rules = (CONFIG / "mask-rules.yaml").read_text() + "  public.subscriptions:\n    strategy: empty\n"
    with pytest.raises(
        ConfigError,
        match=r"public\.subscriptions has strategy empty, but public\.invoices is copied and its NOT NULL "
        r"subscription_id references it",
    ):
        _plan(stack, _configs(tmp_path, rules=rules), secrets.token_hex(32), 451)


def test_a_column_rule_and_json_paths_on_the_same_column_are_refused(
    stack: Stack, source: SourceSummary, tmp_path: Path
) -> None:
    rules = (CONFIG / "mask-rules.yaml").read_text() + (
        "  public.audit_events:\n    columns:\n      payload: { action: hash }\n"
    )
    with pytest.raises(ConfigError, match="a column rule and json_mask paths both apply"):
        _plan(stack, _configs(tmp_path, rules=rules), secrets.token_hex(32), 451)


def test_tables_with_strategy_empty_are_created_without_rows_and_are_no_roots(
    stack: Stack, source: SourceSummary, tmp_path: Path, build_into: Any
) -> None:
    rules = (CONFIG / "mask-rules.yaml").read_text() + "  public.audit_events:\n    strategy: empty\n"
    with pytest.raises(ConfigError, match=r"public\.audit_events is a subset root but its strategy is empty"):
        _plan(stack, _configs(tmp_path, rules=rules), secrets.token_hex(32), 451)
    extensions = (CONFIG / "commercial-extensions.yaml").read_text()
    extensions = (
        extensions[: extensions.index("  - table: public.audit_events")]
        + extensions[extensions.index("json_mask:") :]
    )
    dsn = build_into(_configs(tmp_path, rules=rules, extensions=extensions), secrets.token_hex(32))
    assert _rows(dsn, "SELECT count(*) FROM audit_events") == [(0,)]
    assert _rows(dsn, "SELECT count(*) FROM invoices")[0][0] == 3000


def _edge_plan(edge_source: str, tmp_path: Path, rules: str, extensions: str, tenant: int) -> SubsetPlan:
    (tmp_path / "mask-rules.yaml").write_text(rules)
    (tmp_path / "commercial-extensions.yaml").write_text(extensions)
    config = load_config(tmp_path / "mask-rules.yaml", tmp_path / "commercial-extensions.yaml")
    with open_source_snapshot(edge_source) as snapshot:
        return plan_subset(snapshot, config, Secret(secrets.token_hex(32)), tenant)


def _edge_closure(
    edge_source: str, tmp_path: Path, rules: str, extensions: str, tenant: int
) -> dict[str, int]:
    plan = _edge_plan(edge_source, tmp_path, rules, extensions, tenant)
    return {str(table): rows for table, rows in plan.closure.row_counts.items()}


ACCOUNT_ROOT = """
version: "1.0"
subset:
  - table: Billing.accounts
    predicate: "tenant_id = :organization_id AND account_no = 3"
"""


def test_pulled_up_parents_do_not_expand_down_unless_an_fk_rule_says_so(
    edge_source: str, tmp_path: Path
) -> None:
    # Account 3 pulls up accounts 2 and 1 (self-reference) and its tenant; the tenant's tags and notes are
    # cousins, left out by default.
    counts = _edge_closure(edge_source, tmp_path, 'version: "1.0"\n', ACCOUNT_ROOT, 2)
    assert counts == {
        "Billing.Tenants": 1,
        "Billing.accounts": 3,
        "public.audit_trail": 0,
        "public.events": 0,
        "public.notes": 0,
        "public.tags": 0,
    }
    eager = ACCOUNT_ROOT + "foreign_keys:\n  - table: public.tags\n    from_pulled_up_parents: true\n"
    counts = _edge_closure(edge_source, tmp_path, 'version: "1.0"\n', eager, 2)
    # The tags come down from the pulled-up tenant; the notes and trail rows on those tags come down too.
    assert counts == {
        "Billing.Tenants": 1,
        "Billing.accounts": 3,
        "public.audit_trail": TRAIL_OF_TENANT_2,
        "public.events": 0,
        "public.notes": 4,
        "public.tags": 4,
    }


def test_an_fk_rule_can_skip_or_cap_the_way_down(edge_source: str, tmp_path: Path) -> None:
    skip = (
        EDGE_EXTENSIONS
        + "foreign_keys:\n  - table: Billing.accounts\n    columns: [tenant_id]\n    down: skip\n"
    )
    assert _edge_closure(edge_source, tmp_path, EDGE_RULES, skip, 2)["Billing.accounts"] == 0
    cap = EDGE_EXTENSIONS + (
        "foreign_keys:\n  - table: public.notes\n    columns: [tenant_id]\n    max_rows_per_parent: 2\n"
        "  - table: public.notes\n    columns: [tag_id]\n    down: skip\n"
    )
    plan = _edge_plan(edge_source, tmp_path, EDGE_RULES, cap, 2)
    notes = next(table for table in plan.closure.keys if str(table) == "public.notes")
    assert sorted(plan.closure.keys[notes]) == [
        7,
        10,
    ]  # the two newest (highest id) of the tenant's 1, 4, 7, 10
    ambiguous = EDGE_EXTENSIONS + "foreign_keys:\n  - table: Billing.accounts\n    down: skip\n"
    with pytest.raises(ConfigError, match=r"matches 2 foreign keys of Billing\.accounts, not one"):
        _edge_closure(edge_source, tmp_path, EDGE_RULES, ambiguous, 2)


def test_a_nullable_reference_to_a_table_without_rows_is_written_as_null(
    edge_source: str, tmp_path: Path, build_into: Any
) -> None:
    (tmp_path / "mask-rules.yaml").write_text(EDGE_RULES + "  public.tags:\n    strategy: empty\n")
    (tmp_path / "commercial-extensions.yaml").write_text(EDGE_EXTENSIONS)
    target = build_into(tmp_path, secrets.token_hex(32), 2, source_dsn=edge_source, batch_size=100)
    assert _rows(target, "SELECT count(*), count(tag_id) FROM notes") == [(4, 0)]
    assert _rows(target, "SELECT count(*) FROM tags") == [(0,)]
    assert _rows(target, "SELECT count(*) FROM audit_trail WHERE tag_id IS NOT NULL") == [(0,)]


def test_a_table_without_primary_key_can_be_a_root_and_pulls_up_its_parents(
    edge_source: str, tmp_path: Path
) -> None:
    root = 'version: "1.0"\nsubset:\n  - table: public.audit_trail\n    predicate: "tenant_id = :organization_id"\n'
    counts = _edge_closure(edge_source, tmp_path, 'version: "1.0"\n', root, 2)
    with psycopg.connect(edge_source) as conn:
        expected_tags = conn.execute(
            "SELECT count(DISTINCT tag_id) FROM audit_trail WHERE tenant_id = 2"
        ).fetchone()
        expected_trail = conn.execute("SELECT count(*) FROM audit_trail WHERE tenant_id = 2").fetchone()
    assert expected_tags is not None and expected_trail is not None
    assert counts["public.audit_trail"] == expected_trail[0]
    assert counts["public.tags"] == expected_tags[0] == 3
    assert counts["Billing.Tenants"] == 1


def test_a_masked_key_must_be_masked_alike_where_it_is_referenced(
    edge_source: str, tmp_path: Path, build_into: Any
) -> None:
    one_side = (
        EDGE_RULES + "  Billing.Tenants:\n    columns:\n      code: { action: fake, provider: username }\n"
    )
    with pytest.raises(
        ConfigError, match=r"public\.tags\.tenant_code and Billing\.Tenants\.code are masked differently"
    ):
        _edge_closure(edge_source, tmp_path, one_side, EDGE_EXTENSIONS, 2)

    both = EDGE_RULES + (
        "  Billing.Tenants:\n    columns:\n      code: { action: fake, provider: username, seed_alias: tenant }\n"
        "  public.tags:\n    columns:\n      tenant_code: { action: fake, provider: username, seed_alias: tenant }\n"
    )
    (tmp_path / "mask-rules.yaml").write_text(both)
    (tmp_path / "commercial-extensions.yaml").write_text(EDGE_EXTENSIONS)
    target = build_into(tmp_path, secrets.token_hex(32), 2, source_dsn=edge_source, batch_size=100)
    (code,) = _rows(target, 'SELECT code FROM "Billing"."Tenants"')
    assert code[0] != "T2"
    assert _rows(target, "SELECT DISTINCT tenant_code FROM tags") == [code]


def test_hmac_hash_on_a_key_and_its_reference_is_refused_pointing_to_hash(
    edge_source: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """hmac_hash is scoped to its column, so a key and its reference cannot share it, and it takes no
    seed_alias: the message says which action keeps them joined instead, and that one is accepted."""
    monkeypatch.setenv("PSEUDONYM_KEY", secrets.token_hex(32))

    def rules(action: str) -> str:
        return EDGE_RULES + (
            f"  Billing.Tenants:\n    columns:\n      code: {{ action: {action} }}\n"
            f"  public.tags:\n    columns:\n      tenant_code: {{ action: {action} }}\n"
        )

    with pytest.raises(ConfigError) as raised:
        _edge_closure(edge_source, tmp_path, rules("hmac_hash"), EDGE_EXTENSIONS, 2)
    assert "public.tags.tenant_code and Billing.Tenants.code are masked differently" in raised.value.problem
    assert "hmac_hash is scoped to its column" in raised.value.remedy
    assert "use hash on both" in raised.value.remedy
    assert _edge_closure(edge_source, tmp_path, rules("hash"), EDGE_EXTENSIONS, 2)["public.tags"] == 4


def test_replicate_all_indexes_brings_the_other_indexes(build_into: Any, tmp_path: Path) -> None:
    rules = (
        (CONFIG / "mask-rules.yaml")
        .read_text()
        .replace('version: "1.0"\n', 'version: "1.0"\nreplicate_all_indexes: true\n')
    )
    dsn = build_into(_configs(tmp_path, rules=rules), secrets.token_hex(32))
    indexes = {row[0] for row in _rows(dsn, "SELECT indexname FROM pg_indexes WHERE schemaname = 'public'")}
    assert {"users_organization_id_idx", "invoices_subscription_id_idx"} <= indexes
    plain = build_into(CONFIG, secrets.token_hex(32))
    assert not any(
        "organization_id" in row[0]
        for row in _rows(plain, "SELECT indexname FROM pg_indexes WHERE schemaname = 'public'")
    )


TENANTS = """
tenant:
  table: Billing.Tenants
  key: id
"""
OTHER_TENANTS_ACCOUNT = """
  - table: Billing.accounts
    predicate: "tenant_id = 1 AND account_no = 1"
"""


def test_the_tenant_table_is_configuration_and_guards_the_closure(edge_source: str, tmp_path: Path) -> None:
    unguarded = _edge_plan(edge_source, tmp_path, 'version: "1.0"\n', EDGE_EXTENSIONS, 2)
    assert any("the source has no public.organizations" in warning for warning in unguarded.warnings)

    aliased = EDGE_EXTENSIONS.replace(":organization_id", ":tenant_id") + TENANTS
    guarded = _edge_plan(edge_source, tmp_path, 'version: "1.0"\n', aliased, 2)
    assert not any("other tenant" in w or "has no public.organizations" in w for w in guarded.warnings)
    assert guarded.closure.keys[TableName("Billing", "Tenants")] == (2,)

    leaking = EDGE_EXTENSIONS + OTHER_TENANTS_ACCOUNT + TENANTS
    with pytest.raises(ClosureError, match=r"reaches other tenant\(s\) 1 of Billing.Tenants") as refused:
        _edge_plan(edge_source, tmp_path, 'version: "1.0"\n', leaking, 2)
    assert "tenant.cross_tenant_references" in refused.value.remedy and "allow" in refused.value.remedy

    allowed = _edge_plan(
        edge_source, tmp_path, 'version: "1.0"\n', leaking + "  cross_tenant_references: allow\n", 2
    )
    assert sorted(allowed.closure.keys[TableName("Billing", "Tenants")]) == [1, 2]
    assert any("other tenant(s) 1 of Billing.Tenants" in warning for warning in allowed.warnings)


@pytest.mark.parametrize(
    ("tenant", "says"),
    [
        ("tenant:\n  table: Billing.Missing\n", "tenant.table: the source has no table Billing.Missing"),
        ("tenant:\n  table: Billing.Tenants\n  key: code\n", "tenant.key: code is not the primary key"),
    ],
)
def test_a_tenant_table_or_key_the_source_lacks_is_refused(
    edge_source: str, tmp_path: Path, tenant: str, says: str
) -> None:
    with pytest.raises(ConfigError, match=says):
        _edge_plan(edge_source, tmp_path, 'version: "1.0"\n', EDGE_EXTENSIONS + tenant, 2)
