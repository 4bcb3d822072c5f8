"""A login per repro database: a role that may connect to that database only and read it, whose password
stops working when the database expires (``VALID UNTIL``), even if no sweep ever runs.

Every repro database is closed to ``PUBLIC`` when it is created, so a login can open no other repro
database, even one still loading or that failed its checks. The role owns nothing, is a member of no
role, and is dropped with its database. Its password is hashed (SCRAM-SHA-256) on this side: the server,
and any statement log it keeps, only ever see the verifier. Its comment says repro_pipeline made it, and for
which database: a role without that comment is never dropped as a leftover.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from datetime import datetime

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo
from psycopg.rows import TupleRow

from repro_pipeline.engine import dsn
from repro_pipeline.engine.errors import TargetError
from repro_pipeline.engine.repro_databases.marker import MARKER, marked_record
from repro_pipeline.engine.secrets import Secret

CONNECTION_LIMIT = 5
PASSWORD_BYTES = 32
ROLE_SUFFIX = "_reader"
# What a login's DSN takes from the target's: where the server is and how to trust it; never the admin's
# user, password, password file or client certificate.
SERVER_PARAMETERS = ("host", "hostaddr", "port", "sslmode", "sslrootcert", "sslcrl", "connect_timeout")


@dataclass(frozen=True)
class Login:
    role: str
    database: str
    password: Secret = field(repr=False)
    expires_at: datetime

    def dsn(self, server_dsn: str) -> Secret:
        """The DSN of this login on the server ``server_dsn`` points at (a key=value conninfo)."""
        server = {name: value for name in SERVER_PARAMETERS if (value := dsn.parameter(server_dsn, name))}
        return Secret(
            make_conninfo("", **server, dbname=self.database, user=self.role, password=self.password.reveal())
        )


def login_role(database: str) -> str:
    """The role of a repro database's login (at most 63 bytes: repro database names are short)."""
    return f"{database}{ROLE_SUFFIX}"


def close_to_public(admin: psycopg.Connection[TupleRow], database: str) -> None:
    """Take ``PUBLIC``'s CONNECT and TEMPORARY on ``database``: only its owner (and its login) may open it."""
    admin.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(sql.Identifier(database)))


def issue_login(
    admin: psycopg.Connection[TupleRow],
    repro: psycopg.Connection[TupleRow],
    database: str,
    expires_at: datetime,
) -> Login:
    """Create the login of ``database`` (``admin``: a session on the target server; ``repro``: one in the
    database), or give the existing one a new password and expiry: the old password stops working."""
    role = login_role(database)
    password = Secret(secrets.token_urlsafe(PASSWORD_BYTES))
    verifier = admin.pgconn.encrypt_password(password.reveal().encode(), role.encode(), b"scram-sha-256")
    settings = sql.SQL("CONNECTION LIMIT {} PASSWORD {} VALID UNTIL {}").format(
        sql.Literal(CONNECTION_LIMIT), sql.Literal(verifier.decode()), sql.Literal(expires_at.isoformat())
    )
    existing = _existing_role(admin, role)
    try:
        if existing is None:
            admin.execute(
                sql.SQL(
                    "CREATE ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT NOREPLICATION "
                    "NOBYPASSRLS {}"
                ).format(sql.Identifier(role), settings)
            )
        else:
            if existing:
                raise TargetError(
                    f"the role {role} on the target server has more than a login of {database} may have "
                    f"({existing}): it was not made by repro_pipeline, or was changed since",
                    f"look at who made it; DROP ROLE {role} and hand {database} off again",
                )
            admin.execute(sql.SQL("ALTER ROLE {} {}").format(sql.Identifier(role), settings))
        admin.execute(
            sql.SQL("COMMENT ON ROLE {} IS {}").format(
                sql.Identifier(role), sql.Literal(_role_comment(database))
            )
        )
    except psycopg.errors.InsufficientPrivilege:
        raise TargetError(
            f"the target role may not create or change the login role {role}",
            "grant it: ALTER ROLE <role> CREATEROLE, or use a role that has it in REPRO_TARGET_DSN",
        ) from None
    try:
        close_to_public(admin, database)
        admin.execute(
            sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(
                sql.Identifier(database), sql.Identifier(role)
            )
        )
        _grant_reading(repro, role)
    except BaseException as failure:
        # A login that cannot read its database is of no use to anyone; its CONNECT goes first, or DROP ROLE
        # fails on it. A cleanup that fails too is added to the error, never put in its place.
        try:
            admin.execute(
                sql.SQL("REVOKE CONNECT ON DATABASE {} FROM {}").format(
                    sql.Identifier(database), sql.Identifier(role)
                )
            )
            drop_login(admin, database)
        except psycopg.Error as cleanup:
            failure.add_note(f"the login {role} could not be dropped: {cleanup.diag.message_primary}")
        raise
    return Login(role=role, database=database, password=password, expires_at=expires_at)


def set_login_expiry(admin: psycopg.Connection[TupleRow], database: str, expires_at: datetime) -> None:
    """Move the login's ``VALID UNTIL`` with its database's expiry (extended, or retired now); a database
    without a login is left as it is."""
    role = login_role(database)
    if _existing_role(admin, role) is not None:
        admin.execute(
            sql.SQL("ALTER ROLE {} VALID UNTIL {}").format(
                sql.Identifier(role), sql.Literal(expires_at.isoformat())
            )
        )


def drop_login(admin: psycopg.Connection[TupleRow], database: str) -> None:
    """Drop the login of ``database``, after the database: its privileges went with it."""
    admin.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(login_role(database))))


def orphaned_logins(admin: psycopg.Connection[TupleRow]) -> list[str]:
    """The databases whose login is left while the database is gone (a ``DROP ROLE`` that failed after its
    ``DROP DATABASE``): only roles whose comment says repro_pipeline made them for that database."""
    orphaned = []
    for role, comment in admin.execute(
        "SELECT r.rolname, shobj_description(r.oid, 'pg_authid') FROM pg_roles r WHERE r.rolname LIKE %s",
        (f"%{ROLE_SUFFIX}",),
    ):
        database = _marked_database(comment)
        if database is None or login_role(database) != role:
            continue
        if admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone() is None:
            orphaned.append(database)
    return sorted(orphaned)


def _role_comment(database: str) -> str:
    return json.dumps({"created_by": MARKER, "database": database}, sort_keys=True)


def _marked_database(comment: object) -> str | None:
    """The database a login's comment names, when repro_pipeline wrote it; else None."""
    record = marked_record(comment)
    database = record.get("database") if record is not None else None
    return database if isinstance(database, str) else None


def _existing_role(admin: psycopg.Connection[TupleRow], role: str) -> str | None:
    """None when ``role`` does not exist; else what it has beyond a plain login ("" when nothing)."""
    row = admin.execute(
        "SELECT concat_ws(', ', CASE WHEN rolsuper THEN 'SUPERUSER' END, "
        "CASE WHEN rolcreatedb THEN 'CREATEDB' END, CASE WHEN rolcreaterole THEN 'CREATEROLE' END, "
        "CASE WHEN rolreplication THEN 'REPLICATION' END, CASE WHEN rolbypassrls THEN 'BYPASSRLS' END, "
        "CASE WHEN EXISTS (SELECT FROM pg_auth_members m WHERE m.member = r.oid) THEN 'member of a role' END)"
        " FROM pg_roles r WHERE rolname = %s",
        (role,),
    ).fetchone()
    return None if row is None else str(row[0])


def _grant_reading(repro: psycopg.Connection[TupleRow], role: str) -> None:
    """USAGE on every schema of the database, SELECT on its tables, views and sequences; CREATE on a
    schema is taken from ``PUBLIC`` (PostgreSQL 14 and older grant it on ``public``), so the login
    can own nothing."""
    grantee = sql.Identifier(role)
    with repro.transaction():
        schemas = [
            str(name)
            for (name,) in repro.execute(
                "SELECT nspname FROM pg_namespace "
                "WHERE nspname <> 'information_schema' AND nspname NOT LIKE 'pg\\_%' ORDER BY nspname"
            )
        ]
        for name in schemas:
            schema = sql.Identifier(name)
            for statement in (
                "REVOKE CREATE ON SCHEMA {schema} FROM PUBLIC",
                "GRANT USAGE ON SCHEMA {schema} TO {grantee}",
                "GRANT SELECT ON ALL TABLES IN SCHEMA {schema} TO {grantee}",
                "GRANT SELECT ON ALL SEQUENCES IN SCHEMA {schema} TO {grantee}",
            ):
                repro.execute(sql.SQL(statement).format(schema=schema, grantee=grantee))
        # pg_restore --no-owner made the admin own every function: a SECURITY DEFINER one would run as the
        # admin for anyone, the login included (a write, dynamic SQL). Only the admin may call them.
        for (function,) in repro.execute(
            "SELECT p.oid::regprocedure::text FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
            "WHERE p.prosecdef AND n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\\_%'"
        ).fetchall():
            repro.execute(sql.SQL("REVOKE EXECUTE ON FUNCTION {} FROM PUBLIC").format(sql.SQL(str(function))))
