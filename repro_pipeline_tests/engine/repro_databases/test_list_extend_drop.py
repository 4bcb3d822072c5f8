"""Finding, extending and dropping one repro database on the real target server, and the guards that keep
those away from databases repro_pipeline did not make."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from psycopg import sql

from repro_pipeline.engine.errors import TargetError
from repro_pipeline.engine.repro_databases import lifecycle
from repro_pipeline_tests.repro_databases import new_repro_database

LONGEST = timedelta(days=90)
NOT_OURS = "repro_org451_0badc0de"  # shaped like ours, made by someone else


@pytest.fixture
def database(target_admin: psycopg.Connection[tuple[object, ...]]) -> Iterator[lifecycle.ReproDatabase]:
    made = new_repro_database(target_admin, now=datetime.now(UTC))
    yield made
    lifecycle.drop_repro_database(target_admin, made.name)


@pytest.fixture
def not_ours(target_admin: psycopg.Connection[tuple[object, ...]]) -> Iterator[str]:
    target_admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(NOT_OURS)))
    yield NOT_OURS
    target_admin.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(NOT_OURS)))


def _listed(target_admin: psycopg.Connection[tuple[object, ...]], name: str) -> lifecycle.ReproDatabase:
    (found,) = [db for db in lifecycle.list_repro_databases(target_admin) if db.name == name]
    return found


def test_extend_moves_the_expiry_later_as_the_list_shows(
    target_admin: psycopg.Connection[tuple[object, ...]], database: lifecycle.ReproDatabase
) -> None:
    extended = lifecycle.extend_ttl(
        target_admin, database.name, timedelta(hours=24), LONGEST, datetime.now(UTC)
    )
    assert extended.expires_at == database.expires_at + timedelta(hours=24)
    assert _listed(target_admin, database.name) == extended
    assert extended.status == database.status and extended.created_at == database.created_at


def test_an_expired_database_is_extended_from_now(
    target_admin: psycopg.Connection[tuple[object, ...]], database: lifecycle.ReproDatabase
) -> None:
    now = datetime.now(UTC)
    expired = lifecycle.mark(target_admin, database, "ready", expires_at=now - timedelta(hours=1))
    extended = lifecycle.extend_ttl(target_admin, expired.name, timedelta(hours=2), LONGEST, now)
    assert extended.expires_at == now + timedelta(hours=2)


def test_an_extension_past_the_maximum_is_refused_naming_it(
    target_admin: psycopg.Connection[tuple[object, ...]], database: lifecycle.ReproDatabase
) -> None:
    with pytest.raises(TargetError) as refused:
        lifecycle.extend_ttl(target_admin, database.name, timedelta(days=90), LONGEST, datetime.now(UTC))
    assert "longer than the maximum of 2160 hours" in refused.value.problem
    assert "extend it by at most 2112 hours" in refused.value.remedy
    assert _listed(target_admin, database.name).expires_at == database.expires_at  # unchanged
    # The longest extension the remedy names is taken.
    longest = database.created_at + LONGEST - database.expires_at
    assert lifecycle.extend_ttl(
        target_admin, database.name, longest, LONGEST, datetime.now(UTC)
    ).expires_at == (database.created_at + LONGEST)


@pytest.mark.parametrize("hours", [0, -5])
def test_an_extension_that_is_not_positive_is_refused(
    target_admin: psycopg.Connection[tuple[object, ...]], database: lifecycle.ReproDatabase, hours: int
) -> None:
    with pytest.raises(TargetError, match="is not one"):
        lifecycle.extend_ttl(target_admin, database.name, timedelta(hours=hours), LONGEST, datetime.now(UTC))


def test_a_retired_database_is_not_extended(
    target_admin: psycopg.Connection[tuple[object, ...]], database: lifecycle.ReproDatabase
) -> None:
    lifecycle.retire(target_admin, database, datetime.now(UTC))
    with pytest.raises(TargetError, match="was retired"):
        lifecycle.extend_ttl(target_admin, database.name, timedelta(hours=1), LONGEST, datetime.now(UTC))


def test_drop_now_removes_the_database(
    target_admin: psycopg.Connection[tuple[object, ...]], database: lifecycle.ReproDatabase
) -> None:
    assert lifecycle.drop_now(target_admin, database.name) == database
    assert database.name not in {db.name for db in lifecycle.list_repro_databases(target_admin)}
    assert (
        target_admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database.name,)).fetchone()
        is None
    )


@pytest.mark.parametrize("touch", ["extend", "drop"])
def test_a_database_without_our_record_is_never_touched(
    target_admin: psycopg.Connection[tuple[object, ...]], not_ours: str, touch: str
) -> None:
    for name in (not_ours, "postgres"):
        with pytest.raises(TargetError, match="has no repro_pipeline record"):
            if touch == "extend":
                lifecycle.extend_ttl(target_admin, name, timedelta(hours=1), LONGEST, datetime.now(UTC))
            else:
                lifecycle.drop_now(target_admin, name)
        assert target_admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()


def test_a_record_edited_by_hand_is_refused_with_what_is_wrong(
    target_admin: psycopg.Connection[tuple[object, ...]], not_ours: str
) -> None:
    record = {"created_by": "repro_pipeline", "organization_id": 451}  # no run, no times
    target_admin.execute(
        sql.SQL("COMMENT ON DATABASE {} IS {}").format(
            sql.Identifier(not_ours), sql.Literal(json.dumps(record))
        )
    )
    with pytest.raises(TargetError, match=r"its record cannot be read .* refusing to touch it"):
        lifecycle.drop_now(target_admin, not_ours)
    assert target_admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (not_ours,)).fetchone()


def test_an_unknown_database_is_named(target_admin: psycopg.Connection[tuple[object, ...]]) -> None:
    with pytest.raises(TargetError, match="the target server has no database 'repro_org451_00000000'"):
        lifecycle.drop_now(target_admin, "repro_org451_00000000")
    with pytest.raises(TargetError, match="no database"):
        lifecycle.extend_ttl(target_admin, "nope", timedelta(hours=1), LONGEST, datetime.now(UTC))
