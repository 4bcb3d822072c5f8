"""Repro databases on the target server, and their time to live.

Each repro database carries its own record as a JSON comment (``COMMENT ON DATABASE``): organization,
run, creation and expiry time, status. The TTL sweep needs no other state, and a database not created by
repro_pipeline (no such comment) is never dropped.

Whatever changes or drops a record (a status, an extension, a retirement, a drop, the sweep's decision) holds
the database's advisory lock on the target server and reads the record again under it, so two of them never
undo one another: an extension made while a handoff runs survives it, and a database extended after the
sweep listed it is not dropped.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Literal

import psycopg
from psycopg import sql
from psycopg.rows import TupleRow

from repro_pipeline.engine.errors import RequestRefused, TargetError
from repro_pipeline.engine.repro_databases import logins
from repro_pipeline.engine.repro_databases.marker import MARKER, marked_record

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
                "created_by": MARKER,
                "organization_id": self.organization_id,
                "run_id": self.run_id,
                "created_at": self.created_at.isoformat(),
                "expires_at": self.expires_at.isoformat(),
                "status": self.status,
            },
            sort_keys=True,
        )


def is_repro_database_name(name: str) -> bool:
    """Whether ``name`` is shaped like the name of a repro database (``repro_org<id>_<8 hex digits>``)."""
    return _NAME.fullmatch(name) is not None


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
    except psycopg.errors.ReadOnlySqlTransaction:
        raise TargetError(
            f"the target server is read-only (CREATE DATABASE {database.name} was refused): a standby, or "
            "default_transaction_read_only is on",
            "point REPRO_TARGET_DSN at a writable server for repro databases",
        ) from None
    try:
        logins.close_to_public(admin, database.name)
        _write_comment(admin, database)
    except psycopg.Error:
        # Without its record the sweep would never find it; open to all, it must not be kept either.
        drop_repro_database(admin, database.name)
        raise
    return database


@contextmanager
def record_lock(admin: psycopg.Connection[TupleRow], name: str) -> Iterator[None]:
    """Hold the advisory lock of the repro database ``name`` on ``admin``'s session, waiting for whoever holds
    it. A session lock, not a transaction's: ``DROP DATABASE`` cannot run inside a transaction. Taken again by
    the same session it nests; a session that ends (a crash) releases it. Advisory locks belong to the database
    the session is connected to: every writer connects to the target server's admin database."""
    key = record_lock_key(name)
    admin.execute("SELECT pg_advisory_lock(%s)", (key,))
    try:
        yield
    finally:
        if not admin.broken:
            admin.execute("SELECT pg_advisory_unlock(%s)", (key,))


def record_lock_key(name: str) -> int:
    """The advisory lock key of a repro database: 64 bits of a hash of its name, in repro_pipeline's own
    namespace so it meets no other application's keys."""
    digest = hashlib.blake2b(f"repro_pipeline record {name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def update_record(
    admin: psycopg.Connection[TupleRow], name: str, change: Callable[[ReproDatabase], ReproDatabase]
) -> ReproDatabase:
    """Write ``change`` of the record of ``name`` as it is now, read under the database's lock; the login's
    ``VALID UNTIL`` follows a changed expiry. A retired database stays retired."""
    with record_lock(admin, name):
        current = find_repro_database(admin, name)
        updated = change(current)
        if current.status == "failed" and updated.status != "failed":
            raise TargetError(
                f"{name} was retired meanwhile (its load or a check failed, or its run no longer ran): "
                f"it is not marked {updated.status}",
                f"materialize repro_database for organization {current.organization_id} again",
            )
        _write_comment(admin, updated)
        if updated.expires_at != current.expires_at:
            logins.set_login_expiry(admin, name, updated.expires_at)
    return updated


def mark(
    admin: psycopg.Connection[TupleRow],
    database: ReproDatabase,
    status: str,
    *,
    expires_at: datetime | None = None,
) -> ReproDatabase:
    """Give ``database`` the status ``status`` (and the expiry ``expires_at``, when given), keeping the rest of
    its record as it is now: an extension made since ``database`` was read is kept."""
    return update_record(
        admin,
        database.name,
        lambda current: replace(current, status=status, expires_at=expires_at or current.expires_at),
    )


def retire(admin: psycopg.Connection[TupleRow], database: ReproDatabase, now: datetime) -> ReproDatabase:
    """Mark a database that must not be used as failed and already expired: the next sweep drops it.

    Not dropped here: other checks of the same run may still be reading it.
    """
    return mark(admin, database, "failed", expires_at=now)


@dataclass(frozen=True)
class Registry:
    """The repro databases on the target server, and those whose record could not be read."""

    databases: list[ReproDatabase]
    unreadable: list[str]  # "name: why", for the operator; such a database is never dropped by the sweep


def read_registry(admin: psycopg.Connection[TupleRow]) -> Registry:
    found, unreadable = [], []
    for name, comment in admin.execute(
        "SELECT datname, shobj_description(oid, 'pg_database') FROM pg_database ORDER BY datname"
    ):
        record = marked_record(comment)
        if record is None or not _NAME.fullmatch(str(name)):
            continue
        try:
            found.append(
                ReproDatabase(
                    name=str(name),
                    organization_id=int(record["organization_id"]),
                    run_id=str(record["run_id"]),
                    created_at=_timestamp(record["created_at"]),
                    expires_at=_timestamp(record["expires_at"]),
                    status=str(record["status"]),
                )
            )
        except (KeyError, TypeError, ValueError) as exc:
            # A record edited by hand: not ours to interpret, so not ours to drop; said, never fatal.
            problem = f"no {exc.args[0]!r}" if isinstance(exc, KeyError) else str(exc)
            unreadable.append(f"{name}: its record cannot be read ({problem})")
    return Registry(found, unreadable)


RunState = Literal["running", "finished", "unknown"]
UNKNOWN_RUN_GRACE = timedelta(hours=1)


def retire_abandoned(
    admin: psycopg.Connection[TupleRow],
    run_state: Callable[[str], RunState],
    passed_every_check: Callable[[ReproDatabase], bool],
    now: datetime,
    grace: timedelta = UNKNOWN_RUN_GRACE,
) -> Sweep:
    """Retire the databases a run that no longer runs left half-built (a killed worker or launcher, a target
    that went away mid-load), so the sweep drops them with the expired ones: ``loading`` ones, and
    ``loaded`` ones whose checks did not all pass (one that passed them waits for its handoff to be run
    again, until its TTL). A run the orchestrator does not know is given ``grace`` from the database's
    creation first."""

    def abandoned(database: ReproDatabase) -> bool:
        if database.status not in ("loading", "loaded"):
            return False
        state = run_state(database.run_id)
        if not (state == "finished" or (state == "unknown" and database.created_at + grace <= now)):
            return False
        return not (database.status == "loaded" and passed_every_check(database))

    retired, skipped = [], []
    for listed in list_repro_databases(admin):
        if not abandoned(listed):
            continue
        try:
            with record_lock(admin, listed.name):
                # Decided again on the record as it is now: its handoff may have marked it ready since.
                database = _current_record(admin, listed.name)
                if database is not None and abandoned(database):
                    retired.append(retire(admin, database, now))
        except psycopg.Error as exc:
            skipped.append(f"{listed.name}: not retired ({exc.diag.message_primary or type(exc).__name__})")
        except TargetError as error:
            skipped.append(f"{listed.name}: not retired ({error.problem})")
    return Sweep(databases=retired, skipped=skipped)


def list_repro_databases(admin: psycopg.Connection[TupleRow]) -> list[ReproDatabase]:
    return read_registry(admin).databases


def _timestamp(text: object) -> datetime:
    """An ISO 8601 time; one written without a time zone is read as UTC."""
    moment = datetime.fromisoformat(str(text))
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def drop_repro_database(admin: psycopg.Connection[TupleRow], name: str) -> None:
    if not _NAME.fullmatch(name):
        raise RequestRefused(f"{name!r} is not a repro database name; refusing to drop it")
    with record_lock(admin, name):
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        logins.drop_login(admin, name)


@dataclass(frozen=True)
class Sweep:
    """What one step of the sweep did: the databases it dropped (or retired), and those it had to skip."""

    databases: list[ReproDatabase]
    skipped: list[str]  # "name: why": unreadable records, databases that could not be dropped or retired


def drop_expired(admin: psycopg.Connection[TupleRow], now: datetime) -> Sweep:
    """Drop every repro database whose expiry has passed; one that cannot be read or dropped is skipped
    and said, so it never stops the sweep of the others."""
    registry = read_registry(admin)
    dropped, skipped = [], list(registry.unreadable)
    for listed in registry.databases:
        if listed.expires_at > now:
            continue
        try:
            with record_lock(admin, listed.name):
                # Decided again on the record as it is now: it may have been extended since it was listed.
                database = _current_record(admin, listed.name)
                if database is None or database.expires_at > now:
                    continue
                drop_repro_database(admin, database.name)
        except psycopg.Error as exc:
            skipped.append(f"{listed.name}: not dropped ({exc.diag.message_primary or type(exc).__name__})")
        except TargetError as error:
            skipped.append(f"{listed.name}: not dropped ({error.problem})")
        else:
            dropped.append(database)
    return Sweep(databases=dropped, skipped=skipped)


def _current_record(admin: psycopg.Connection[TupleRow], name: str) -> ReproDatabase | None:
    """The record of ``name`` as it is now; None when the database is gone (dropped by someone else)."""
    if admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None:
        return None
    return find_repro_database(admin, name)


def _write_comment(admin: psycopg.Connection[TupleRow], database: ReproDatabase) -> None:
    admin.execute(
        sql.SQL("COMMENT ON DATABASE {} IS {}").format(
            sql.Identifier(database.name), sql.Literal(database.comment())
        )
    )


def find_repro_database(admin: psycopg.Connection[TupleRow], name: str) -> ReproDatabase:
    """The repro database ``name``, read from its record; a database without repro_pipeline's record is
    refused, whatever its name: it is not ours to extend or drop."""
    registry = read_registry(admin)
    for database in registry.databases:
        if database.name == name:
            return database
    listed = "list the repro databases (`repro-pipeline list`, or the list_repro_databases job) and name one"
    for problem in registry.unreadable:
        if problem.startswith(f"{name}: "):
            raise TargetError(f"{problem}: refusing to touch it", listed)
    if admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
        raise RequestRefused(
            f"the database {name!r} on the target server has no repro_pipeline record: it was not made "
            "by repro_pipeline, so it is never extended or dropped here",
            listed,
        )
    raise RequestRefused(f"the target server has no database {name!r}", listed)


def extended_expiry(database: ReproDatabase, extra: timedelta, longest: timedelta, now: datetime) -> datetime:
    """The expiry ``extra`` later than the current one (than now, if that has passed), refused when the
    database would then live longer than ``longest`` from its creation, or when it was retired."""
    hours = _hours(extra)
    if hours <= 0:
        raise RequestRefused(f"an extension of {hours:g} hours is not one", "give a positive number of hours")
    if database.status == "failed":
        raise RequestRefused(
            f"{database.name} was retired (its load or a check failed): it is not extended",
            f"materialize repro_database for organization {database.organization_id} again",
        )
    start = max(database.expires_at, now)
    if start + extra - database.created_at > longest:
        allowed = database.created_at + longest - start
        raise RequestRefused(
            f"extending {database.name} by {hours:g} hours would have it live longer than the maximum "
            f"of {_hours(longest):g} hours from its creation ({database.created_at:%Y-%m-%d %H:%M} UTC)",
            f"extend it by at most {math.floor(_hours(allowed) * 10) / 10:g} hours, or materialize a new "
            "repro database"
            if allowed >= timedelta(minutes=6)
            else f"materialize a new repro database for organization {database.organization_id}",
        )
    return start + extra


def extend_ttl(
    admin: psycopg.Connection[TupleRow], name: str, extra: timedelta, longest: timedelta, now: datetime
) -> ReproDatabase:
    """Give the repro database ``name`` ``extra`` time to live (see ``extended_expiry``)."""
    return update_record(
        admin,
        name,
        lambda current: replace(current, expires_at=extended_expiry(current, extra, longest, now)),
    )


def drop_now(admin: psycopg.Connection[TupleRow], name: str) -> ReproDatabase:
    """Drop the repro database ``name`` before its expiry; what it was is returned."""
    with record_lock(admin, name):
        database = find_repro_database(admin, name)
        drop_repro_database(admin, database.name)
    return database


LIVE_STATUSES = ("loaded", "ready")


def live_repro_databases(
    admin: psycopg.Connection[TupleRow], organization_id: int, now: datetime
) -> list[ReproDatabase]:
    """The organization's repro databases in use or about to be: loaded or handed off, not expired (a retired
    one is ``failed`` and already expired)."""
    return [
        database
        for database in list_repro_databases(admin)
        if database.organization_id == organization_id
        and database.status in LIVE_STATUSES
        and database.expires_at > now
    ]


def require_no_live_database(
    admin: psycopg.Connection[TupleRow], organization_id: int, now: datetime
) -> None:
    """``on_existing_data: fail`` on a partition run: refused while the organization has a live repro
    database, before anything is created."""
    live = live_repro_databases(admin, organization_id, now)
    if live:
        names = ", ".join(
            f"{database.name} (expires {database.expires_at:%Y-%m-%d %H:%M} UTC)" for database in live
        )
        raise TargetError(
            f"on_existing_data fail: organization {organization_id} already has a live repro database: {names}",
            f"drop it first (repro-pipeline drop {live[0].name}), or set on_existing_data: drop_create to "
            "replace it once the new one has passed its checks",
        )


def drop_replaced(
    admin: psycopg.Connection[TupleRow], replaced: list[ReproDatabase], now: datetime
) -> list[ReproDatabase]:
    """``on_existing_data: drop_create``, once the new database has passed its checks: each of ``replaced``
    that is still live (read again under its lock) dropped with its login; those dropped are returned."""
    dropped = []
    for listed in replaced:
        with record_lock(admin, listed.name):
            database = _current_record(admin, listed.name)
            if database is None or database.status not in LIVE_STATUSES or database.expires_at <= now:
                continue
            drop_repro_database(admin, database.name)
        dropped.append(database)
    return dropped


def _hours(duration: timedelta) -> float:
    return duration.total_seconds() / 3600
