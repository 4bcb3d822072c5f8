"""Virtual foreign keys held in JSON (``column`` + ``json_path``): followed both ways by the closure, on the
synthetic source's ``audit_events.payload.actor.user_id`` and on a schema of uuid and text keys; a value that
is no key of the referenced type is skipped and counted; the orphan check covers them; what cannot work is
refused in the config, naming the entry."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from repro_pipeline.embedded.stack import Stack
from repro_pipeline.embedded.synthetic import SourceSummary
from repro_pipeline.engine.config import load_config
from repro_pipeline.engine.errors import ConfigError
from repro_pipeline.engine.load.loader import load_repro
from repro_pipeline.engine.load.plan import SubsetPlan, plan_subset
from repro_pipeline.engine.load.report import plan_summary
from repro_pipeline.engine.secrets import Secret
from repro_pipeline.engine.source.catalog import TableName
from repro_pipeline.engine.source.snapshot import open_source_snapshot
from repro_pipeline.engine.verify.checks import zero_fk_orphans
from repro_pipeline_tests.engine.load.databases import empty_target, source_database

USERS, AUDIT_EVENTS = TableName("public", "users"), TableName("public", "audit_events")
ACTOR_REFERENCE = """
virtual_foreign_keys:
  - table: public.audit_events
    column: payload
    json_path: $.actor.user_id
    references: {table: public.users, columns: [id]}
"""
ACTOR = "public.audit_events(payload at $.actor.user_id) -> public.users(id)"
VIA_ACTOR = "virtual public.audit_events(payload at $.actor.user_id)"
# The guide's masking of the payload, which leaves the reference as it is.
GUIDE_JSON_MASK = """
json_mask:
  - column: public.audit_events.payload
    paths:
      - {path: $.actor.email, action: fake, provider: email, seed_alias: user_email}
      - {path: $.actor.ip, action: hash}
      - {path: $.internal.support_notes, action: remove}
"""
TENANT_ROOT = """
version: "1.0"
subset:
  - table: public.organizations
    predicate: "id = :organization_id"
"""


def _plan(
    source: str, tmp_path: Path, extensions: str, organization_id: int, mask_rules: str = ""
) -> SubsetPlan:
    (tmp_path / "mask-rules.yaml").write_text('version: "1.0"\n' + mask_rules)
    (tmp_path / "commercial-extensions.yaml").write_text(extensions)
    config = load_config(tmp_path / "mask-rules.yaml", tmp_path / "commercial-extensions.yaml")
    with open_source_snapshot(source) as snapshot:
        return plan_subset(snapshot, config, Secret(secrets.token_hex(32)), organization_id)


def _load(source: str, target: str, plan: SubsetPlan) -> None:
    with open_source_snapshot(source) as snapshot:
        load_repro(
            snapshot, target, plan, run_id="json-references", started_at=datetime.now(UTC), batch_size=50
        )


def test_users_named_in_the_payload_are_pulled_up(
    stack: Stack, source: SourceSummary, tmp_path: Path
) -> None:
    organization = source.demo_organization_id
    # Users are not brought down from their organization: only the events' payloads name them.
    skip_users = "foreign_keys:\n  - {table: public.users, columns: [organization_id], down: skip}\n"
    plan = _plan(stack.standby_dsn, tmp_path, TENANT_ROOT + skip_users + ACTOR_REFERENCE, organization)
    with psycopg.connect(stack.standby_dsn) as conn:
        named = {
            int(row[0])
            for row in conn.execute(
                "SELECT DISTINCT payload #>> '{actor,user_id}' FROM audit_events "
                "WHERE organization_id = %s AND payload #>> '{actor,user_id}' IS NOT NULL",
                (organization,),
            )
        }
    assert named and set(plan.closure.keys[USERS]) == named
    assert plan.closure.reasons[USERS] == {f"up from public.audit_events via {VIA_ACTOR}": len(named)}
    assert plan.json_values_not_fitting == {fk: 0 for fk in plan.json_values_not_fitting}
    assert plan_summary(plan)["json_values_not_fitting_their_key"] == {ACTOR: 0}


def test_events_naming_the_tenants_users_come_down_and_are_checked_for_orphans(
    stack: Stack, source: SourceSummary, tmp_path: Path
) -> None:
    organization = source.demo_organization_id
    # Events do not come down from their organization: only through the users their payloads name.
    skip_events = "foreign_keys:\n  - {table: public.audit_events, columns: [organization_id], down: skip}\n"
    extensions = TENANT_ROOT + skip_events + ACTOR_REFERENCE + GUIDE_JSON_MASK
    plan = _plan(stack.standby_dsn, tmp_path, extensions, organization)
    with psycopg.connect(stack.standby_dsn) as conn:
        oracle = {
            row[0]
            for row in conn.execute(
                "SELECT id FROM audit_events WHERE payload #>> '{actor,user_id}' IN "
                "(SELECT id::text FROM users WHERE organization_id = %s)",
                (organization,),
            )
        }
    assert oracle and set(plan.closure.keys[AUDIT_EVENTS]) == oracle
    assert plan.closure.reasons[AUDIT_EVENTS] == {f"down from public.users via {VIA_ACTOR}": len(oracle)}

    with empty_target(stack, "json_references") as target:
        _load(stack.standby_dsn, target, plan)
        with psycopg.connect(target, autocommit=True) as conn:
            clean = zero_fk_orphans(plan, conn)
            assert clean.passed, clean.found
            assert clean.found["json_values_not_fitting_their_key"] == {ACTOR: 0}
            # The actor's email is masked and the reference kept: it still finds its user.
            user, events = conn.execute(
                "SELECT (payload #>> '{actor,user_id}')::bigint, count(*) FROM audit_events "
                "WHERE payload #>> '{actor,user_id}' IS NOT NULL GROUP BY 1 ORDER BY 2 DESC LIMIT 1"
            ).fetchone() or (0, 0)
            conn.execute("DELETE FROM payment_methods WHERE user_id = %s", (user,))
            conn.execute("DELETE FROM users WHERE id = %s", (user,))
            orphaned = zero_fk_orphans(plan, conn)
    assert not orphaned.passed
    assert orphaned.found["failing_foreign_keys"] == {ACTOR: events}


# Members keyed by uuid, items by text; events name both in a jsonb payload, member logs name members in
# a json body. Account 2's events also hold what is no reference: a non-uuid string, a number, an object.
SCHEMA = """
CREATE TABLE accounts (id int PRIMARY KEY, name text NOT NULL);
CREATE TABLE members (id uuid PRIMARY KEY, account_id int NOT NULL REFERENCES accounts, email text NOT NULL);
CREATE TABLE items (sku text PRIMARY KEY, title text NOT NULL);
CREATE TABLE days (day date PRIMARY KEY);
CREATE TABLE events (id int PRIMARY KEY, account_id int NOT NULL REFERENCES accounts, payload jsonb NOT NULL);
CREATE TABLE member_logs (id int PRIMARY KEY, body json);
INSERT INTO accounts SELECT g, 'account ' || g FROM generate_series(1, 3) g;
INSERT INTO members SELECT md5('member' || g)::uuid, 1 + g % 3, 'm' || g || '@app.test' FROM generate_series(1, 12) g;
INSERT INTO items SELECT 'sku-' || g, 'item ' || g FROM generate_series(1, 10) g;
INSERT INTO events SELECT g, 1 + g % 3, jsonb_build_object(  -- a member of the same account
        'member_id', md5('member' || coalesce(nullif(3 * (g % 4) + g % 3, 0), 12))::uuid,
        'item', jsonb_build_object('sku', 'sku-' || (1 + g % 10)))
    FROM generate_series(1, 30) g;
INSERT INTO events VALUES
    (101, 2, '{"member_id": "not-a-uuid", "item": {"sku": "sku-404"}}'),
    (102, 2, '{"member_id": 17}'),
    (103, 2, jsonb_build_object('member_id', upper(md5('member1')::uuid::text))),
    (104, 2, '{"member_id": "00000000-0000-0000-0000-000000000000"}'),
    (105, 2, '{"member_id": {"id": 1}, "item": {"sku": null}}'),
    (106, 2, '{"item": {}}');
INSERT INTO member_logs SELECT g, json_build_object('member_id', md5('member' || (1 + g % 12))::uuid) FROM generate_series(1, 24) g;
INSERT INTO member_logs VALUES (25, json_build_object('member_id', upper(md5('member4')::uuid::text))),
    (26, '{"member_id": "member4"}'), (27, NULL), (28, '[1, 2]');
"""
ACCOUNT = 2
REFERENCES = """
tenant: {table: public.accounts, key: id}
virtual_foreign_keys:
  - table: public.events
    column: payload
    json_path: $.member_id
    references: {table: public.members, columns: [id]}
  - table: public.events
    column: payload
    json_path: $.item.sku
    references: {table: public.items, columns: [sku]}
  - table: public.member_logs
    column: body
    json_path: $.member_id
    references: {table: public.members, columns: [id]}
"""
ROOT = 'version: "1.0"\nsubset:\n  - table: public.accounts\n    predicate: "id = :organization_id"\n'
MEMBER = "public.events(payload at $.member_id) -> public.members(id)"
ITEM = "public.events(payload at $.item.sku) -> public.items(sku)"
LOGGED = "public.member_logs(body at $.member_id) -> public.members(id)"


@pytest.fixture(scope="module")
def app_source(stack: Stack) -> Iterator[str]:
    with source_database(stack, "json_references", SCHEMA) as dsn:
        yield dsn


def test_uuid_and_text_keys_in_json_are_followed_and_values_of_another_type_counted(
    app_source: str, stack: Stack, tmp_path: Path
) -> None:
    with psycopg.connect(app_source) as conn:
        members = {row[0] for row in conn.execute("SELECT id FROM members WHERE account_id = %s", (ACCOUNT,))}
        events = {row[0] for row in conn.execute("SELECT id FROM events WHERE account_id = %s", (ACCOUNT,))}
        items = {
            row[0]
            for row in conn.execute(
                "SELECT sku FROM items WHERE sku IN (SELECT payload #>> '{item,sku}' FROM events "
                "WHERE account_id = %s)",
                (ACCOUNT,),
            )
        }
        logs = {
            row[0]
            for row in conn.execute(
                "SELECT id FROM member_logs WHERE lower(body ->> 'member_id') IN "
                "(SELECT id::text FROM members WHERE account_id = %s)",
                (ACCOUNT,),
            )
        }
    plan = _plan(app_source, tmp_path, ROOT + REFERENCES, ACCOUNT)
    keys = {table.name: set(found) for table, found in plan.closure.keys.items()}
    assert keys["members"] == members and keys["events"] == events
    assert keys["items"] == items and "sku-404" not in items
    assert keys["member_logs"] == logs and 25 in logs  # an upper-case uuid is a uuid
    counted = {str(fk): rows for fk, rows in plan.json_values_not_fitting.items()}
    assert counted == {MEMBER: 3, ITEM: 0, LOGGED: 0}  # events 101, 102 and 105
    warnings = " ".join(plan.warnings)
    assert (
        "3 row(s) of public.events hold a value in payload at $.member_id that is not a public.members key"
        in (warnings)
    )
    assert (
        "1 value(s) of public.events via virtual public.events(payload at $.item.sku) reference no row"
        in (warnings)
    )

    with empty_target(stack, "json_references") as target:
        _load(app_source, target, plan)
        with psycopg.connect(target, autocommit=True) as conn:
            clean = zero_fk_orphans(plan, conn)
            assert clean.passed, clean.found
            assert clean.found["foreign_keys_checked"] == 5
            assert clean.found["json_values_not_fitting_their_key"] == {MEMBER: 3, ITEM: 0, LOGGED: 0}
            assert clean.found["dangling_on_source"] == {MEMBER: 1, ITEM: 1}  # events 104 and 101
            member = conn.execute("SELECT id FROM members ORDER BY id LIMIT 1").fetchone()
            assert member is not None
            named = conn.execute(
                "SELECT (SELECT count(*) FROM events WHERE lower(payload ->> 'member_id') = %(m)s), "
                "(SELECT count(*) FROM member_logs WHERE lower(body ->> 'member_id') = %(m)s)",
                {"m": str(member[0])},
            ).fetchone()
            conn.execute("DELETE FROM members WHERE id = %s", member)
            orphaned = zero_fk_orphans(plan, conn)
    assert named is not None and named[0] and named[1]
    assert not orphaned.passed
    assert orphaned.found["failing_foreign_keys"] == {MEMBER: named[0], LOGGED: named[1]}


@pytest.mark.parametrize(
    ("extensions", "mask_rules", "says"),
    [
        (
            REFERENCES.replace("column: body", "column: notes"),
            "",
            r"column: public\.member_logs has no column notes",
        ),
        (
            REFERENCES.replace("column: body", "column: id"),
            "",
            r"column: public\.member_logs\.id is integer, not json or jsonb",
        ),
        (
            REFERENCES.replace(
                "{table: public.items, columns: [sku]}", "{table: public.days, columns: [day]}"
            ),
            "",
            r"public\.days\.day is date; a reference held in JSON is read as a smallint, integer, bigint, uuid",
        ),
        (
            REFERENCES.replace(
                "{table: public.items, columns: [sku]}", "{table: public.items, columns: [title]}"
            ),
            "",
            r"references\.columns title are not the primary key or a unique constraint of public\.items",
        ),
        (
            REFERENCES
            + "json_mask:\n  - column: public.events.payload\n    paths: [{path: $.member_id, action: hash}]\n",
            "",
            r"public\.events\.payload is masked \(json:1 paths\) in a way that changes or removes the value at "
            r"\$\.member_id, which references public\.members\(id\)",
        ),
        (
            REFERENCES
            + "json_mask:\n  - column: public.events.payload\n    paths: [{path: $.item, action: remove}]\n",
            "",
            r"changes or removes the value at \$\.item\.sku",
        ),
        (
            REFERENCES
            + "json_mask:\n  - column: public.events.payload\n    paths: [{path: '$..sku', action: hash}]\n",
            "",
            r"changes or removes the value at \$\.item\.sku",
        ),
        (
            REFERENCES,
            "tables:\n  public.members:\n    columns:\n      id: {action: hash}\n",
            r"public\.members\.id is masked, but the references to it in public\.events\.payload at \$\.member_id",
        ),
        (
            REFERENCES,
            "tables:\n  public.items:\n    strategy: empty\n",
            r"public\.items has strategy empty, but public\.events is copied and its payload at \$\.item\.sku "
            "references it",
        ),
    ],
    ids=[
        "unknown-column",
        "not-json",
        "key-type",
        "not-a-key",
        "path-masked",
        "parent-removed",
        "masked-by-descent",
        "key-masked",
        "parent-empty",
    ],
)
def test_a_json_reference_that_cannot_hold_is_refused_naming_its_entry(
    app_source: str, tmp_path: Path, extensions: str, mask_rules: str, says: str
) -> None:
    with pytest.raises(ConfigError, match=says) as refused:
        _plan(app_source, tmp_path, ROOT + extensions, ACCOUNT, mask_rules)
    assert f"{tmp_path / 'commercial-extensions.yaml'}:" in str(refused.value)
