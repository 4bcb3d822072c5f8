"""Tests of repro_pipeline.embedded.synthetic against a throwaway PostgreSQL server (initdb + pg_ctl)."""

from __future__ import annotations

import importlib
import itertools
import pickle
import pkgutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from psycopg import sql

from repro_pipeline.embedded.stack import Stack
from repro_pipeline.embedded.synthetic import (
    DEMO_ORGANIZATION_ID,
    SCHEMA_SQL_PATH,
    TABLES,
    SourceSpec,
    SourceSummary,
    build_source,
)
from repro_pipeline.embedded.synthetic import generate as gen
from repro_pipeline.embedded.synthetic.__main__ import main

SCALE = 0.05
SPEC = SourceSpec(scale=SCALE)

# The users' contract, verbatim. schema.sql must produce the same catalog.
CONTRACT_DDL = """
CREATE TABLE organizations (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, tenant_slug text NOT NULL UNIQUE, legal_name text NOT NULL, created_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE users (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, organization_id bigint NOT NULL REFERENCES organizations(id), email text NOT NULL, full_name text NOT NULL, role text NOT NULL DEFAULT 'member');
CREATE TABLE subscriptions (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, organization_id bigint NOT NULL REFERENCES organizations(id), plan_code text NOT NULL, status text NOT NULL);
CREATE TABLE invoices (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, subscription_id bigint NOT NULL REFERENCES subscriptions(id), issued_at timestamptz NOT NULL, total_cents bigint NOT NULL, currency char(3) NOT NULL DEFAULT 'USD');
CREATE TABLE invoice_line_items (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, invoice_id bigint NOT NULL REFERENCES invoices(id), sku text NOT NULL, quantity int NOT NULL, unit_cents bigint NOT NULL);
CREATE TABLE payment_methods (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, user_id bigint NOT NULL REFERENCES users(id), last_four char(4) NOT NULL, provider_token text NOT NULL);
CREATE TABLE audit_events (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, organization_id bigint NOT NULL REFERENCES organizations(id), occurred_at timestamptz NOT NULL, payload jsonb NOT NULL);
"""

BUG_QUERY = """
SELECT i.id, i.total_cents, SUM(li.quantity * li.unit_cents) AS computed_cents
FROM invoices i JOIN subscriptions s ON s.id = i.subscription_id JOIN invoice_line_items li ON li.invoice_id = i.id
WHERE s.organization_id = %s GROUP BY i.id, i.total_cents HAVING i.total_cents <> SUM(li.quantity * li.unit_cents)
"""


# --------------------------------------------------------------------------------------------
# a throwaway PostgreSQL server
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PgServer:
    """Scratch databases on the embedded stack's primary."""

    stack: Stack

    def dsn(self, dbname: str = "postgres") -> str:
        return self.stack.dsn("primary", dbname)

    def new_database(self, name: str) -> str:
        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.dsn(name)


@pytest.fixture(scope="module")
def pg(stack: Stack) -> PgServer:
    return PgServer(stack)


@pytest.fixture(scope="module")
def source(pg: PgServer) -> tuple[str, SourceSummary]:
    dsn = pg.new_database("source_a")
    return dsn, build_source(dsn, SPEC)


def _scalar(dsn: str, query: str, params: Sequence[Any] | None = None) -> Any:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(query.encode(), params).fetchone()
        assert row is not None
        return row[0]


def _rows(dsn: str, query: str, params: Sequence[Any] | None = None) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(query.encode(), params).fetchall()


def _content_digests(dsn: str) -> dict[str, str]:
    """md5 of every table's rows ordered by id (audit_events.occurred_at excluded: now()-relative)."""
    columns = {t: "*" for t in TABLES} | {"audit_events": "id, organization_id, payload"}
    return {
        table: str(
            _scalar(
                dsn, f"SELECT md5(string_agg(t::text, '|' ORDER BY t.id)) FROM (SELECT {cols} FROM {table}) t"
            )
        )
        for table, cols in columns.items()
    }


def _catalog_signature(dsn: str) -> dict[str, list[tuple[Any, ...]]]:
    """Tables, columns, constraints and indexes of the public schema, in comparable form."""
    columns = _rows(
        dsn,
        """SELECT table_name, column_name, ordinal_position, data_type, character_maximum_length,
                  is_nullable, column_default, is_identity, identity_generation
           FROM information_schema.columns WHERE table_schema = 'public' ORDER BY 1, 3""",
    )
    constraints = _rows(
        dsn,
        """SELECT conrelid::regclass::text, contype, pg_get_constraintdef(oid)
           FROM pg_constraint WHERE connamespace = 'public'::regnamespace ORDER BY 1, 2, 3""",
    )
    indexes = _rows(
        dsn,
        """SELECT tablename, indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1, 2""",
    )
    tables = _rows(
        dsn,
        """SELECT relname, relkind FROM pg_class
           WHERE relnamespace = 'public'::regnamespace AND relkind NOT IN ('i', 'S') ORDER BY 1""",
    )
    return {"tables": tables, "columns": columns, "constraints": constraints, "indexes": indexes}


# --------------------------------------------------------------------------------------------
# schema
# --------------------------------------------------------------------------------------------


def test_schema_is_the_contract_plus_fk_indexes(pg: PgServer, source: tuple[str, SourceSummary]) -> None:
    dsn, _ = source
    contract_dsn = pg.new_database("contract")
    with psycopg.connect(contract_dsn) as conn:
        conn.execute(CONTRACT_DDL.encode())
    built, contract = _catalog_signature(dsn), _catalog_signature(contract_dsn)

    assert [name for name, _ in built["tables"]] == sorted(TABLES)
    assert all(kind == "r" for _, kind in built["tables"])
    assert built["tables"] == contract["tables"]
    assert built["columns"] == contract["columns"]
    assert built["constraints"] == contract["constraints"]
    fks = {(t, d) for t, kind, d in built["constraints"] if kind == "f"}
    assert fks == {
        ("users", "FOREIGN KEY (organization_id) REFERENCES organizations(id)"),
        ("subscriptions", "FOREIGN KEY (organization_id) REFERENCES organizations(id)"),
        ("invoices", "FOREIGN KEY (subscription_id) REFERENCES subscriptions(id)"),
        ("invoice_line_items", "FOREIGN KEY (invoice_id) REFERENCES invoices(id)"),
        ("payment_methods", "FOREIGN KEY (user_id) REFERENCES users(id)"),
        ("audit_events", "FOREIGN KEY (organization_id) REFERENCES organizations(id)"),
    }
    identity = {(t, c, g) for t, c, _, _, _, _, _, ident, g in built["columns"] if ident == "YES"}
    assert identity == {(t, "id", "ALWAYS") for t in TABLES}

    # Only extra objects: the six plain (non-unique) indexes on FK columns.
    extra = set(built["indexes"]) - set(contract["indexes"])
    assert set(contract["indexes"]) <= set(built["indexes"])
    assert {(t, d.split(" USING btree ")[1]) for t, d in extra} == {
        ("users", "(organization_id)"),
        ("subscriptions", "(organization_id)"),
        ("invoices", "(subscription_id)"),
        ("invoice_line_items", "(invoice_id)"),
        ("payment_methods", "(user_id)"),
        ("audit_events", "(organization_id, occurred_at)"),
    }
    assert not any("UNIQUE" in d for _, d in extra)


def test_schema_sql_file_is_shipped() -> None:
    assert SCHEMA_SQL_PATH.name == "schema.sql" and SCHEMA_SQL_PATH.is_file()
    text = SCHEMA_SQL_PATH.read_text()
    assert text.count("CREATE TABLE") == 7
    assert "CREATE UNIQUE" not in text


def test_identity_sequences_continue_after_the_max_id(source: tuple[str, SourceSummary]) -> None:
    dsn, _ = source
    with psycopg.connect(dsn) as conn:
        max_id = conn.execute("SELECT max(id) FROM organizations").fetchone()
        new = conn.execute(
            "INSERT INTO organizations (tenant_slug, legal_name) VALUES ('x-new', 'X') RETURNING id"
        ).fetchone()
        user = conn.execute(
            "INSERT INTO users (organization_id, email, full_name) VALUES (%s, 'a@b', 'A B') RETURNING id",
            [DEMO_ORGANIZATION_ID],
        ).fetchone()
        max_user = conn.execute("SELECT max(id) FROM users WHERE email <> 'a@b'").fetchone()
        conn.rollback()
    assert max_id is not None and new is not None and new[0] > max_id[0]
    assert user is not None and max_user is not None and user[0] > max_user[0]


# --------------------------------------------------------------------------------------------
# determinism, skip and force
# --------------------------------------------------------------------------------------------


def test_same_spec_gives_identical_content(pg: PgServer, source: tuple[str, SourceSummary]) -> None:
    dsn_a, summary_a = source
    dsn_b = pg.new_database("source_b")
    summary_b = build_source(dsn_b, SPEC)
    assert summary_b.generated
    assert _content_digests(dsn_a) == _content_digests(dsn_b)
    assert dict(summary_a.row_counts) == dict(summary_b.row_counts)
    assert summary_a.planted_invoice_ids == summary_b.planted_invoice_ids

    other_seed = build_source(dsn_b, SourceSpec(seed=8, scale=SCALE))
    assert other_seed.generated
    digests = _content_digests(dsn_b)
    assert all(digests[t] != d for t, d in _content_digests(dsn_a).items())


def test_rebuild_is_skipped_for_the_same_spec_and_forced_on_request(pg: PgServer) -> None:
    dsn = pg.new_database("source_c")
    started = time.monotonic()
    first = build_source(dsn, SPEC)
    build_seconds = time.monotonic() - started
    digests = _content_digests(dsn)
    recorded = _scalar(dsn, "SELECT obj_description('organizations'::regclass, 'pg_class')")
    assert recorded == SPEC.to_json()

    started = time.monotonic()
    again = build_source(dsn, SPEC)
    skip_seconds = time.monotonic() - started
    assert first.generated and not again.generated
    assert skip_seconds < min(1.0, build_seconds / 2)
    assert dict(again.row_counts) == dict(first.row_counts)
    assert again.planted_invoice_ids == first.planted_invoice_ids

    # Marker rows that a rebuild must remove prove that force really regenerates.
    with psycopg.connect(dsn) as conn:
        conn.execute("INSERT INTO organizations (tenant_slug, legal_name) VALUES ('marker', 'Marker')")
    assert not build_source(dsn, SPEC).generated
    assert _scalar(dsn, "SELECT count(*) FROM organizations WHERE tenant_slug = 'marker'") == 1

    forced = build_source(dsn, SPEC, force=True)
    assert forced.generated
    assert _scalar(dsn, "SELECT count(*) FROM organizations WHERE tenant_slug = 'marker'") == 0
    assert _content_digests(dsn) == digests

    # Another spec rebuilds; so does a partial schema.
    demo_users = "SELECT email, full_name, role FROM users WHERE organization_id = 451 ORDER BY id"
    users_at_small_scale = _rows(dsn, demo_users)
    bigger = build_source(dsn, SourceSpec(scale=SCALE * 2))
    assert bigger.generated and bigger.total_rows > first.total_rows
    assert _rows(dsn, demo_users) == users_at_small_scale  # the demo tenant's people do not depend on scale
    with psycopg.connect(dsn) as conn:
        conn.execute("DROP TABLE audit_events")
    rebuilt = build_source(dsn, SPEC)
    assert rebuilt.generated
    assert _content_digests(dsn) == digests


def test_other_tables_in_the_database_are_left_alone(pg: PgServer) -> None:
    dsn = pg.new_database("source_d")
    with psycopg.connect(dsn) as conn:
        conn.execute("CREATE TABLE unrelated (x int); INSERT INTO unrelated VALUES (1)")
    build_source(dsn, SourceSpec(organizations=3, scale=0.01))
    build_source(dsn, SourceSpec(organizations=3, scale=0.01), force=True)
    assert _scalar(dsn, "SELECT count(*) FROM unrelated") == 1


# --------------------------------------------------------------------------------------------
# data shape and the demo tenant
# --------------------------------------------------------------------------------------------


def test_summary_matches_the_database(source: tuple[str, SourceSummary]) -> None:
    dsn, summary = source
    assert summary.spec == SPEC
    assert list(summary.row_counts) == list(TABLES)
    for table in TABLES:
        assert summary.row_counts[table] == _scalar(dsn, f"SELECT count(*) FROM {table}")
    assert summary.row_counts["organizations"] == SPEC.organizations
    assert summary.demo_organization_id == DEMO_ORGANIZATION_ID == 451
    assert summary.total_rows == sum(summary.row_counts.values())
    assert pickle.loads(pickle.dumps(summary)) == summary  # e.g. for Dagster's default IO manager
    assert hash(summary) == hash(pickle.loads(pickle.dumps(summary)))
    # Fewer rows at a small scale, but every table is populated.
    assert 20_000 < summary.total_rows < 120_000
    assert all(n > 0 for n in summary.row_counts.values())


def test_demo_organization(source: tuple[str, SourceSummary]) -> None:
    dsn, summary = source
    assert _rows(dsn, "SELECT tenant_slug, legal_name FROM organizations WHERE id = 451") == [
        ("acme-corp", "Acme Corporation")
    ]
    ids = [r[0] for r in _rows(dsn, "SELECT id FROM organizations ORDER BY id")]
    assert ids == list(range(ids[0], ids[0] + SPEC.organizations)) and 451 in ids
    users = _scalar(dsn, "SELECT count(*) FROM users WHERE organization_id = 451")
    assert isinstance(users, int) and 50 <= users <= 70
    assert 2 <= int(str(_scalar(dsn, "SELECT count(*) FROM subscriptions WHERE organization_id = 451"))) <= 6
    assert 2000 <= summary.demo_invoice_count <= 4000
    per_invoice = _rows(
        dsn,
        """SELECT min(n), max(n) FROM (
               SELECT count(li.id) AS n FROM invoices i JOIN subscriptions s ON s.id = i.subscription_id
               LEFT JOIN invoice_line_items li ON li.invoice_id = i.id
               WHERE s.organization_id = 451 GROUP BY i.id) x""",
    )
    assert per_invoice == [(1, 5)]
    with_pm = _scalar(
        dsn,
        """SELECT count(DISTINCT u.id) FROM users u JOIN payment_methods p ON p.user_id = u.id
           WHERE u.organization_id = 451""",
    )
    assert isinstance(with_pm, int) and with_pm > users / 2
    assert _scalar(dsn, "SELECT max(n) FROM (SELECT count(*) n FROM payment_methods GROUP BY user_id) x") == 2


def test_bug_query_returns_exactly_the_planted_invoices(source: tuple[str, SourceSummary]) -> None:
    dsn, summary = source
    planted = summary.planted_invoice_ids
    assert 5 <= len(planted) <= 15
    assert list(planted) == sorted(set(planted))
    found = _rows(dsn, BUG_QUERY, [DEMO_ORGANIZATION_ID])
    assert sorted(int(str(r[0])) for r in found) == list(planted)
    assert all(r[1] != r[2] for r in found)

    biggest_other = _scalar(
        dsn,
        "SELECT organization_id FROM users WHERE organization_id <> 451"
        " GROUP BY 1 ORDER BY count(*) DESC LIMIT 1",
    )
    assert _rows(dsn, BUG_QUERY, [biggest_other]) == []
    # No other organization has a mismatch at all, and every invoice has line items.
    mismatched_orgs = _rows(
        dsn,
        """SELECT DISTINCT s.organization_id FROM invoices i JOIN subscriptions s ON s.id = i.subscription_id
           WHERE i.total_cents <> (SELECT coalesce(sum(quantity * unit_cents), -1)
                                   FROM invoice_line_items li WHERE li.invoice_id = i.id)""",
    )
    assert mismatched_orgs == [(451,)]


def test_audit_events_span_more_than_a_year_around_the_90_day_bound(
    source: tuple[str, SourceSummary],
) -> None:
    dsn, summary = source
    total, recent, oldest_days = _rows(
        dsn,
        """SELECT count(*), count(*) FILTER (WHERE occurred_at >= now() - interval '90 days'),
                  extract(day FROM now() - min(occurred_at))::int
           FROM audit_events WHERE organization_id = 451""",
    )[0]
    assert total == summary.demo_audit_event_count and isinstance(total, int) and total >= 3000
    assert recent == summary.demo_recent_audit_event_count
    assert isinstance(recent, int) and 0 < recent < total / 3
    assert isinstance(oldest_days, int) and 400 < oldest_days <= 500
    assert _scalar(dsn, "SELECT max(occurred_at) <= now() FROM audit_events") is True


def test_audit_payloads(source: tuple[str, SourceSummary]) -> None:
    dsn, _ = source
    stats = _rows(
        dsn,
        """SELECT a.organization_id = 451 AS demo,
                  count(*) AS events,
                  count(*) FILTER (WHERE a.payload->'actor'->>'email' IS NOT NULL) AS with_email,
                  count(*) FILTER (WHERE u.id IS NOT NULL) AS user_email,
                  count(*) FILTER (WHERE u.id IS NOT NULL AND (a.payload->'actor'->>'user_id')::bigint = u.id)
                      AS user_id_matches,
                  count(*) FILTER (WHERE jsonb_typeof(a.payload->'actor') = 'null') AS actor_null,
                  count(*) FILTER (WHERE jsonb_typeof(a.payload->'actor') = 'object'
                                     AND NOT a.payload->'actor' ? 'email') AS actor_without_email,
                  count(*) FILTER (WHERE a.payload->'actor'->>'email' LIKE 'support@%') AS support,
                  count(*) FILTER (WHERE NOT a.payload ? 'internal') AS without_internal,
                  count(*) FILTER (
                      WHERE a.payload->'internal'->>'support_notes' LIKE '%' || o.legal_name || '%'
                  ) AS notes_naming_customer,
                  count(*) FILTER (WHERE a.payload ? 'internal') AS with_internal,
                  count(*) FILTER (WHERE a.payload ? 'invoice_id') AS with_invoice,
                  count(*) FILTER (WHERE inv_org.organization_id = a.organization_id) AS invoice_same_org,
                  count(*) FILTER (WHERE a.payload->'actor'->>'ip' ~ '^\\d+(\\.\\d+){3}$') AS with_ip,
                  count(*) FILTER (WHERE a.payload->'request'->>'id' ~ '^[0-9a-f]{32}$') AS with_request_id
           FROM audit_events a
           JOIN organizations o ON o.id = a.organization_id
           LEFT JOIN users u
                ON u.organization_id = a.organization_id AND u.email = a.payload->'actor'->>'email'
           LEFT JOIN (
             SELECT i.id, s.organization_id FROM invoices i JOIN subscriptions s ON s.id = i.subscription_id
           ) inv_org ON inv_org.id = (a.payload->>'invoice_id')::bigint
           GROUP BY 1 ORDER BY 1""",
    )
    for row in stats:
        (_, events, with_email, user_email, user_id_matches, actor_null, no_email, support, without_internal,
         naming, with_internal, with_invoice, invoice_same_org, with_ip, with_request_id) = row  # fmt: skip
        assert isinstance(events, int) and isinstance(with_email, int) and isinstance(user_email, int)
        # Present actor emails are copies of a same-org user's email, except the support@ ones.
        assert user_email + support == with_email
        assert user_email > 0.75 * events and user_email == user_id_matches
        assert min(actor_null, no_email, support, without_internal) > 0
        assert naming == with_internal  # every support note names the customer's legal name
        assert with_invoice == invoice_same_org and with_invoice > 0
        assert with_request_id == events
        assert isinstance(with_ip, int) and with_ip > 0.9 * (events - actor_null)


def test_value_formats(source: tuple[str, SourceSummary]) -> None:
    dsn, _ = source
    assert _scalar(dsn, "SELECT bool_and(last_four ~ '^[0-9]{4}$') FROM payment_methods") is True
    assert _scalar(dsn, "SELECT bool_and(provider_token ~ '^tok_[0-9a-f]{24}$') FROM payment_methods") is True
    assert _scalar(dsn, "SELECT count(DISTINCT provider_token) = count(*) FROM payment_methods") is True
    assert {r[0] for r in _rows(dsn, "SELECT DISTINCT role FROM users")} == {
        "owner",
        "admin",
        "member",
        "billing",
    }
    assert {r[0] for r in _rows(dsn, "SELECT DISTINCT status FROM subscriptions")} == {
        "active",
        "canceled",
        "past_due",
    }
    assert (
        _scalar(dsn, "SELECT count(*) FILTER (WHERE currency = 'USD') > 0.7 * count(*) FROM invoices") is True
    )
    span = _scalar(dsn, "SELECT extract(day FROM max(issued_at) - min(issued_at))::int FROM invoices")
    assert isinstance(span, int) and 700 <= span <= 730
    bad_emails = _scalar(
        dsn,
        """SELECT count(*) FROM users u JOIN organizations o ON o.id = u.organization_id
           WHERE lower(u.email) <> lower(replace(u.full_name, ' ', '.')) || substring(u.email from '[0-9]+@')
                                    || o.tenant_slug || '.example.com'""",
    )
    assert bad_emails == 0
    # A few casing variants (Jane@ vs jane@) in the bigger tenants.
    variants = _scalar(
        dsn, "SELECT count(*) FROM (SELECT lower(email) FROM users GROUP BY 1 HAVING count(*) > 1) x"
    )
    assert isinstance(variants, int) and variants >= 1
    # Tenant sizes are skewed: the biggest non-demo tenant is much bigger than the median one.
    sizes = sorted(
        int(str(r[0]))
        for r in _rows(
            dsn,
            "SELECT count(*) FROM invoices i JOIN subscriptions s ON s.id = i.subscription_id"
            " WHERE s.organization_id <> 451 GROUP BY s.organization_id",
        )
    )
    assert sizes[-1] > 10 * sizes[len(sizes) // 2]


def _faker_names() -> set[str]:
    import faker.providers.person

    names: set[str] = set()
    for module_info in pkgutil.iter_modules(faker.providers.person.__path__):
        module = importlib.import_module(f"faker.providers.person.{module_info.name}")
        provider = getattr(module, "Provider", None)
        for attribute in dir(provider) if provider is not None else ():
            value = getattr(provider, attribute)
            if "name" in attribute and isinstance(value, list | tuple | set | frozenset | dict):
                for name in value:
                    if isinstance(name, str):
                        names.update(part.lower() for part in name.replace("-", " ").split())
    return names


def test_synthetic_names_are_never_faker_names(source: tuple[str, SourceSummary]) -> None:
    faker_names = _faker_names()
    assert len(faker_names) > 10_000
    pools = [
        (gen.FIRST_NAME_HEADS, gen.FIRST_NAME_TAILS),
        (gen.LAST_NAME_HEADS, gen.LAST_NAME_TAILS),
    ]
    for heads, tails in pools:
        candidates = {(h + t).lower() for h, t in itertools.product(heads, tails)}
        assert candidates.isdisjoint(faker_names)
    dsn, _ = source
    used = {
        str(p).lower() for (n,) in _rows(dsn, "SELECT DISTINCT full_name FROM users") for p in str(n).split()
    }
    assert used and used.isdisjoint(faker_names)


# --------------------------------------------------------------------------------------------
# spec and CLI
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"scale": 0},
        {"scale": -1.0},
        {"scale": float("nan")},
        {"organizations": 0},
        {"seed": -1},
        {"seed": True},
    ],
)
def test_invalid_specs_are_rejected(kwargs: dict[str, Any]) -> None:
    with pytest.raises((ValueError, TypeError)):
        SourceSpec(**kwargs)


def test_spec_defaults_and_marker() -> None:
    spec = SourceSpec()
    assert (spec.seed, spec.organizations, spec.scale) == (7, 200, 1.0)
    assert SourceSpec(scale=1) == spec and isinstance(SourceSpec(scale=1).scale, float)
    assert SourceSpec(seed=8).to_json() != spec.to_json()


@pytest.mark.parametrize(
    "argv",
    [[], ["--dsn", "x", "--scale", "abc"], ["--dsn", "x", "--scale", "-1"], ["--dsn", "x", "--bogus"],
     ["--dsn", "x", "--seed", "1.5"], ["--dsn", "nonsense=1"]],
)  # fmt: skip
def test_cli_bad_arguments(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1 and captured.err.startswith(
        "python -m repro_pipeline.embedded.synthetic: error:"
    )
    assert "Traceback" not in captured.err


def test_cli_builds_and_reports(pg: PgServer, capsys: pytest.CaptureFixture[str]) -> None:
    dsn = pg.new_database("source_cli")
    assert main(["--dsn", dsn, "--scale", "0.02", "--seed", "3", "--organizations", "20"]) == 0
    out = capsys.readouterr().out
    assert "source generated" in out and "elapsed:" in out
    for table in TABLES:
        assert table in out
    assert main(["--dsn", dsn, "--scale", "0.02", "--seed", "3", "--organizations", "20"]) == 0
    assert "reused" in capsys.readouterr().out
    assert _scalar(dsn, "SELECT count(*) FROM organizations") == 20


def test_cli_unreachable_server(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--dsn", "host=127.0.0.1 port=1 connect_timeout=2"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "error:" in err


# --------------------------------------------------------------------------------------------
# the whale
# --------------------------------------------------------------------------------------------

WHALE_SPEC = SourceSpec(scale=SCALE, whale_scale=0.002)


def _whale_digests(dsn: str, whale: int) -> dict[str, str]:
    """md5 of the whale's rows of each table (audit_events.occurred_at excluded: now()-relative)."""
    selections = {
        "organizations": f"SELECT * FROM organizations WHERE id = {whale}",
        "users": f"SELECT * FROM users WHERE organization_id = {whale}",
        "subscriptions": f"SELECT * FROM subscriptions WHERE organization_id = {whale}",
        "invoices": f"SELECT i.* FROM invoices i JOIN subscriptions s ON s.id = i.subscription_id "
        f"WHERE s.organization_id = {whale}",
        "invoice_line_items": "SELECT li.* FROM invoice_line_items li JOIN invoices i ON i.id = li.invoice_id "
        f"JOIN subscriptions s ON s.id = i.subscription_id WHERE s.organization_id = {whale}",
        "payment_methods": "SELECT p.* FROM payment_methods p JOIN users u ON u.id = p.user_id "
        f"WHERE u.organization_id = {whale}",
        "audit_events": f"SELECT id, organization_id, payload FROM audit_events WHERE organization_id = {whale}",
    }
    return {
        table: str(_scalar(dsn, f"SELECT md5(string_agg(t::text, '|' ORDER BY t.id)) FROM ({query}) t"))
        for table, query in selections.items()
    }


@pytest.fixture(scope="module")
def whale_source(pg: PgServer) -> tuple[str, SourceSummary]:
    dsn = pg.new_database("source_whale")
    return dsn, build_source(dsn, WHALE_SPEC)


def test_whale_has_its_sizes_and_every_row_hangs_off_it(whale_source: tuple[str, SourceSummary]) -> None:
    dsn, summary = whale_source
    whale = WHALE_SPEC.whale_organization_id
    sizes = WHALE_SPEC.whale_sizes()
    assert whale == 501
    assert (sizes.users, sizes.subscriptions, sizes.invoices, sizes.audit_events) == (4, 20, 400, 300)
    digests = _whale_digests(dsn, whale)
    assert all(digest != "None" for digest in digests.values())  # every table has whale rows
    counts = _rows(
        dsn,
        """SELECT (SELECT count(*) FROM users WHERE organization_id = %(w)s),
                  (SELECT count(*) FROM subscriptions WHERE organization_id = %(w)s),
                  (SELECT count(*) FROM invoices i JOIN subscriptions s ON s.id = i.subscription_id
                    WHERE s.organization_id = %(w)s),
                  (SELECT count(*) FROM invoice_line_items li JOIN invoices i ON i.id = li.invoice_id
                    JOIN subscriptions s ON s.id = i.subscription_id WHERE s.organization_id = %(w)s),
                  (SELECT count(*) FROM payment_methods p JOIN users u ON u.id = p.user_id
                    WHERE u.organization_id = %(w)s),
                  (SELECT count(*) FROM audit_events WHERE organization_id = %(w)s
                    AND occurred_at >= now() - interval '90 days')""",
        {"w": whale},
    )[0]
    assert counts[:3] == (4, 20, 400) and counts[4:] == (4, 300)
    assert 400 <= counts[3] <= 2400  # 1..6 line items per invoice
    # References inside the payloads point at the whale's own users and invoices; totals add up.
    strays = _scalar(
        dsn,
        """SELECT count(*) FROM audit_events ae
           WHERE ae.organization_id = %(w)s
             AND ((payload->'actor'->>'user_id')::bigint NOT IN (SELECT id FROM users WHERE organization_id = %(w)s)
               OR (payload->>'invoice_id')::bigint NOT IN (
                   SELECT i.id FROM invoices i JOIN subscriptions s ON s.id = i.subscription_id
                   WHERE s.organization_id = %(w)s))""",
        {"w": whale},
    )
    assert strays == 0
    wrong_totals = _scalar(
        dsn,
        """SELECT count(*) FROM invoices i JOIN subscriptions s ON s.id = i.subscription_id
           WHERE s.organization_id = %s
             AND i.total_cents <> (SELECT sum(quantity::bigint * unit_cents) FROM invoice_line_items
                                   WHERE invoice_id = i.id)""",
        [whale],
    )
    assert wrong_totals == 0
    smallest, largest = _rows(
        dsn,
        "SELECT min(octet_length(payload::text)), max(octet_length(payload::text)) FROM audit_events "
        "WHERE organization_id = %s",
        [whale],
    )[0]
    assert smallest >= 450 and largest <= 2100  # 0.5-2 KB
    assert summary.row_counts["organizations"] == WHALE_SPEC.organizations + 1


def test_whale_leaves_the_other_tenants_as_they_were_and_is_deterministic(
    pg: PgServer, source: tuple[str, SourceSummary], whale_source: tuple[str, SourceSummary]
) -> None:
    dsn, _ = whale_source
    whale = WHALE_SPEC.whale_organization_id
    assert whale is not None
    without_whale = _content_digests(source[0])
    again = pg.new_database("source_whale_again")
    build_source(again, WHALE_SPEC)
    assert _whale_digests(again, whale) == _whale_digests(dsn, whale)
    # Without the whale's rows, the others are byte for byte those of the same spec without a whale.
    with psycopg.connect(again, autocommit=True) as conn:
        for statement in (
            "DELETE FROM audit_events WHERE organization_id = %(w)s",
            "DELETE FROM payment_methods WHERE user_id IN (SELECT id FROM users WHERE organization_id = %(w)s)",
            "DELETE FROM invoice_line_items WHERE invoice_id IN (SELECT i.id FROM invoices i "
            "JOIN subscriptions s ON s.id = i.subscription_id WHERE s.organization_id = %(w)s)",
            "DELETE FROM invoices WHERE subscription_id IN (SELECT id FROM subscriptions WHERE organization_id = %(w)s)",
            "DELETE FROM subscriptions WHERE organization_id = %(w)s",
            "DELETE FROM users WHERE organization_id = %(w)s",
            "DELETE FROM organizations WHERE id = %(w)s",
        ):
            conn.execute(statement, {"w": whale})
    assert _content_digests(again) == without_whale


def test_whale_spec_marker_and_bounds() -> None:
    assert SourceSpec().whale_organization_id is None
    assert SourceSpec(whale_scale=0).to_json() == (
        '{"repro_pipeline.embedded.synthetic": {"generator_version": 1, "organizations": 200, "scale": 1.0, '
        '"seed": 7}}'
    )
    assert SourceSpec(whale_scale=1).to_json() != SourceSpec().to_json()
    assert SourceSpec(whale_scale=1).whale_sizes().invoices == 200_000
    for bad in (-0.1, float("inf"), 11):
        with pytest.raises(ValueError, match="whale_scale"):
            SourceSpec(whale_scale=bad)
    with pytest.raises(TypeError, match="whale_scale"):
        SourceSpec(whale_scale=True)
