"""Repro databases on the target server, and their time to live.

Each repro database carries its own record as a JSON comment (``COMMENT ON DATABASE``): organization,
run, creation and expiry time, status. The TTL sweep needs no other state, and a database not created by
repro_pipeline (no such comment) is never dropped.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import psycopg
from psycopg import sql
from psycopg.rows import TupleRow

from repro_pipeline.engine.errors import TargetError

_MARKER = "repro_pipeline"
_NAME = re.compile(r"repro_org[0-9]{1,19}_[0-9a-f]{8}")


@dataclass(frozen=True)
class ReproDatabase:
    name: str
    organization_id: int
    run_id: str
    created_at: datetime
    expires_at: datetime
    status: str  # loading, loaded (checks pending), ready (handed off), failed

    def comment(self) -> str:
        return json.dumps(
            {
                "created_by": _MARKER,
                "organization_id": self.organization_id,
                "run_id": self.run_id,
                "created_at": self.created_at.isoformat(),
                "expires_at": self.expires_at.isoformat(),
                "status": self.status,
            },
            sort_keys=True,
        )


def repro_database_name(organization_id: int, run_id: str) -> str:
    name = f"repro_org{organization_id}_{run_id.replace('-', '')[:8].lower()}"
    if not _NAME.fullmatch(name):
        raise TargetError(f"cannot derive a database name from run id {run_id!r}")
    return name


def create_repro_database(
    admin: psycopg.Connection[TupleRow],
    *,
    organization_id: int,
    run_id: str,
    ttl: timedelta,
    now: datetime,
) -> ReproDatabase:
    database = ReproDatabase(
        name=repro_database_name(organization_id, run_id),
        organization_id=organization_id,
        run_id=run_id,
        created_at=now,
        expires_at=now + ttl,
        status="loading",
    )
    exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database.name,)).fetchone()
    if exists:
        raise TargetError(
            f"the target server already has a database {database.name}",
            "launch a new run (each run gets its own database), or drop the old one",
        )
    try:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database.name)))
    except psycopg.errors.InsufficientPrivilege:
        raise TargetError(
            f"the target role may not create databases (CREATE DATABASE {database.name} was refused)",
            "grant it: ALTER ROLE <role> CREATEDB, or use a role that has it in REPRO_TARGET_DSN",
        ) from None
    try:
        _write_comment(admin, database)
    except psycopg.Error:
        # Without its record the sweep would never find it: do not keep it.
        drop_repro_database(admin, database.name)
        raise
    return database


def mark(
    admin: psycopg.Connection[TupleRow],
    database: ReproDatabase,
    status: str,
    *,
    expires_at: datetime | None = None,
) -> ReproDatabase:
    updated = replace(database, status=status, expires_at=expires_at or database.expires_at)
    _write_comment(admin, updated)
    return updated


def retire(admin: psycopg.Connection[TupleRow], database: ReproDatabase, now: datetime) -> ReproDatabase:
    """Mark a database that must not be used as failed and already expired: the next sweep drops it.

    Not dropped here: other checks of the same run may still be reading it.
    """
    return mark(admin, database, "failed", expires_at=now)


def list_repro_databases(admin: psycopg.Connection[TupleRow]) -> list[ReproDatabase]:
    found = []
    for name, comment in admin.execute(
        "SELECT datname, shobj_description(oid, 'pg_database') FROM pg_database ORDER BY datname"
    ):
        record = _parse_comment(comment)
        if record is None or not _NAME.fullmatch(str(name)):
            continue
        try:
            found.append(
                ReproDatabase(
                    name=str(name),
                    organization_id=int(record["organization_id"]),
                    run_id=str(record["run_id"]),
                    created_at=datetime.fromisoformat(record["created_at"]),
                    expires_at=datetime.fromisoformat(record["expires_at"]),
                    status=str(record["status"]),
                )
            )
        except (KeyError, TypeError, ValueError):
            continue  # a record edited by hand: not ours to interpret, so not ours to drop
    return found


def drop_repro_database(admin: psycopg.Connection[TupleRow], name: str) -> None:
    if not _NAME.fullmatch(name):
        raise TargetError(f"{name!r} is not a repro database name; refusing to drop it")
    admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def drop_expired(admin: psycopg.Connection[TupleRow], now: datetime) -> list[ReproDatabase]:
    expired = [database for database in list_repro_databases(admin) if database.expires_at <= now]
    for database in expired:
        drop_repro_database(admin, database.name)
    return expired


def _write_comment(admin: psycopg.Connection[TupleRow], database: ReproDatabase) -> None:
    admin.execute(
        sql.SQL("COMMENT ON DATABASE {} IS {}").format(
            sql.Identifier(database.name), sql.Literal(database.comment())
        )
    )


def _parse_comment(comment: object) -> dict[str, str] | None:
    if not isinstance(comment, str):
        return None
    try:
        record = json.loads(comment)
    except ValueError:
        return None
    if not isinstance(record, dict) or record.get("created_by") != _MARKER:
        return None
    return record
