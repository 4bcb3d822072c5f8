"""What a repro database leaves behind when its drop was cut short: its login (a ``DROP ROLE`` that failed
after the ``DROP DATABASE``), the DSN kept for it (a sink that could not be reached), a write of that DSN a
crash cut short. The sweep removes them once their database is gone, and only what repro_pipeline made:
logins by their comment, kept secrets by their repro database name."""

from __future__ import annotations

from dataclasses import dataclass

import psycopg
from psycopg.rows import TupleRow

from repro_pipeline.engine.errors import ReproError
from repro_pipeline.engine.repro_databases import lifecycle, logins
from repro_pipeline.engine.repro_databases.secret_sink import SecretSink


@dataclass(frozen=True)
class Leftovers:
    """What one pass removed, by name only, and what it could not remove."""

    logins: list[str]  # the roles dropped
    secrets: list[str]  # the names whose kept DSN (or partial write of it) was removed
    skipped: list[str]  # "name: why"


def remove_leftovers(admin: psycopg.Connection[TupleRow], sink: SecretSink) -> Leftovers:
    """Drop the logins and remove the kept secrets of repro databases that no longer exist, each under its
    database's lock."""
    dropped: list[str] = []
    removed: list[str] = []
    skipped: list[str] = []
    for database in logins.orphaned_logins(admin):
        role = logins.login_role(database)
        try:
            with lifecycle.record_lock(admin, database):  # not at the same time as a drop of its own
                logins.drop_login(admin, database)
            dropped.append(role)
        except psycopg.Error as exc:
            skipped.append(f"{role}: not dropped ({exc.diag.message_primary or type(exc).__name__})")
    try:
        kept = sink.names()
    except ReproError as error:
        return Leftovers(dropped, removed, [*skipped, f"secrets: not looked at ({error.problem})"])
    for name in kept:
        if not lifecycle.is_repro_database_name(name):
            continue
        try:
            with lifecycle.record_lock(admin, name):
                if not _exists(admin, name):
                    sink.remove(name)
                    removed.append(name)
        except ReproError as error:
            skipped.append(f"{name}: its secret was not removed ({error.problem})")
    return Leftovers(dropped, removed, skipped)


def _exists(admin: psycopg.Connection[TupleRow], database: str) -> bool:
    return admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone() is not None
