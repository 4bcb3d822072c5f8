"""Finding, extending and dropping one repro database on the real target server, and the guards that keep
those away from databases repro_pipeline did not make."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from psycopg import sql

from repro_pipeline.embedded.stack import Stack
from repro_pipeline.engine.errors import TargetError
from repro_pipeline.engine.repro_databases import lifecycle

LONGEST = timedelta(days=90)
NOT_OURS = "repro_org451_0badc0de"  # shaped like ours, made by someone else


@pytest.fixture
def admin(stack: Stack) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    with psycopg.connect(stack.target_admin_dsn, autocommit=True) as conn:
        yield conn


@pytest.fixture
def database(admin: psycopg.Connection[tuple[object, ...]]) -> Iterator[lifecycle.ReproDatabase]:
    made = lifecycle.create_repro_database(
        admin, organization_id=451, run_id=uuid.uuid4().hex, ttl=timedelta(hours=48), now=datetime.now(UTC)
    )
    yield made
    lifecycle.drop_repro_database(admin, made.name)


@pytest.fixture
def not_ours(admin: psycopg.Connection[tuple[object, ...]]) -> Iterator[str]:
    admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(NOT_OURS)))
    yield NOT_OURS
    admin.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(NOT_OURS)))


def _listed(admin: psycopg.Connection[tuple[object, ...]], name: str) -> lifecycle.ReproDatabase:
    (found,) = [db for db in lifecycle.list_repro_databases(admin) if db.name == name]
    return found


def test_extend_moves_the_expiry_later_as_the_list_shows(
    admin: psycopg.Connection[tuple[object, ...]], database: lifecycle.ReproDatabase
) -> None:
    extended = lifecycle.extend_ttl(admin, database.name, timedelta(hours=24), LONGEST, datetime.now(UTC))
    assert extended.expires_at == database.expires_at + timedelta(hours=24)
    assert _listed(admin, database.name) == extended
    assert extended.status == database.status and extended.created_at == database.created_at


def test_an_expired_database_is_extended_from_now(
    admin: psycopg.Connection[tuple[object, ...]], database: lifecycle.ReproDatabase
) -> None:
    now = datetime.now(UTC)
    expired = lifecycle.mark(admin, database, "ready", expires_at=now - timedelta(hours=1))
    extended = lifecycle.extend_ttl(admin, expired.name, timedelta(hours=2), LONGEST, now)
    assert extended.expires_at == now + timedelta(hours=2)


def test_an_extension_past_the_maximum_is_refused_naming_it(
    admin: psycopg.Connection[tuple[object, ...]], database: lifecycle.ReproDatabase
) -> None:
    with pytest.raises(TargetError) as refused:
        lifecycle.extend_ttl(admin, database.name, timedelta(days=90), LONGEST, datetime.now(UTC))
    assert "longer than the maximum of 2160 hours" in refused.value.problem
    assert "extend it by at most 2112 hours" in refused.value.remedy
    assert _listed(admin, database.name).expires_at == database.expires_at  # unchanged
    # The longest extension the remedy names is taken.
    longest = database.created_at + LONGEST - database.expires_at
    assert lifecycle.extend_ttl(admin, database.name, longest, LONGEST, datetime.now(UTC)).expires_at == (
        database.created_at + LONGEST
    )


@pytest.mark.parametrize("hours", [0, -5])
def test_an_extension_that_is_not_positive_is_refused(
    admin: psycopg.Connection[tuple[object, ...]], database: lifecycle.ReproDatabase, hours: int
) -> None:
    with pytest.raises(TargetError, match="is not one"):
        lifecycle.extend_ttl(admin, database.name, timedelta(hours=hours), LONGEST, datetime.now(UTC))


def test_a_retired_database_is_not_extended(
    admin: psycopg.Connection[tuple[object, ...]], database: lifecycle.ReproDatabase
) -> None:
    lifecycle.retire(admin, database, datetime.now(UTC))
    with pytest.raises(TargetError, match="was retired"):
        lifecycle.extend_ttl(admin, database.name, timedelta(hours=1), LONGEST, datetime.now(UTC))


def test_drop_now_removes_the_database(
    admin: psycopg.Connection[tuple[object, ...]], database: lifecycle.ReproDatabase
) -> None:
    assert lifecycle.drop_now(admin, database.name) == database
    assert database.name not in {db.name for db in lifecycle.list_repro_databases(admin)}
    assert admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database.name,)).fetchone() is None


@pytest.mark.parametrize("touch", ["extend", "drop"])
def test_a_database_without_our_record_is_never_touched(
    admin: psycopg.Connection[tuple[object, ...]], not_ours: str, touch: str
) -> None:
    for name in (not_ours, "postgres"):
        with pytest.raises(TargetError, match="has no repro_pipeline record"):
            if touch == "extend":
                lifecycle.extend_ttl(admin, name, timedelta(hours=1), LONGEST, datetime.now(UTC))
            else:
                lifecycle.drop_now(admin, name)
        assert admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()


def test_a_record_edited_by_hand_is_refused_with_what_is_wrong(
    admin: psycopg.Connection[tuple[object, ...]], not_ours: str
) -> None:
    record = {"created_by": "repro_pipeline", "organization_id": 451}  # no run, no times
    admin.execute(
        sql.SQL("COMMENT ON DATABASE {} IS {}").format(
            sql.Identifier(not_ours), sql.Literal(json.dumps(record))
        )
    )
    with pytest.raises(TargetError, match=r"its record cannot be read .* refusing to touch it"):
        lifecycle.drop_now(admin, not_ours)
    assert admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (not_ours,)).fetchone()


def test_an_unknown_database_is_named(admin: psycopg.Connection[tuple[object, ...]]) -> None:
    with pytest.raises(TargetError, match="the target server has no database 'repro_org451_00000000'"):
        lifecycle.drop_now(admin, "repro_org451_00000000")
    with pytest.raises(TargetError, match="no database"):
        lifecycle.extend_ttl(admin, "nope", timedelta(hours=1), LONGEST, datetime.now(UTC))
