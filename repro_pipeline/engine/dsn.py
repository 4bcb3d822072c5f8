"""Connection strings: opened in one place, and shown only as ``host:port/dbname``, never with a password."""

from __future__ import annotations

import shlex
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.rows import TupleRow

from repro_pipeline.engine.errors import ConfigError, ConnectionFailed

APPLICATION_NAME = "repro_pipeline"

_MALFORMED = ConfigError(
    "a connection string is malformed (its text is not shown: it may hold a password)",
    "check the DSN variables; they take libpq URLs like postgresql://user@host:5432/dbname "
    "(percent-encode special characters of a password in a URL)",
)


def describe(dsn: str) -> str:
    """``host:port/dbname`` of a DSN, safe for logs, metadata and messages."""
    parts = _parts(dsn)
    return f"{server_address(dsn)}/{parts.get('dbname') or parts.get('user') or ''}"


def server_address(dsn: str) -> str:
    """``host:port`` of a DSN: where the server is, without who connects or how."""
    parts = _parts(dsn)
    return f"{parts.get('host') or 'localhost'}:{parts.get('port') or '5432'}"


def _parts(dsn: str) -> dict[str, Any]:
    try:
        return conninfo_to_dict(dsn)
    except Exception:
        raise _MALFORMED from None


def where_to_connect(dsn: str, role: str | None = None) -> dict[str, str]:
    """Host, port, database and role (the DSN's, unless ``role`` is given) of a DSN, and a ``psql`` command
    that opens it: what a user needs to connect, without the password (``psql`` asks for it, or reads
    ``~/.pgpass`` or ``PGPASSWORD``)."""
    parts = _parts(dsn)
    host = str(parts.get("host") or "localhost")
    port = str(parts.get("port") or "5432")
    role = role or str(parts.get("user") or "")
    database = str(parts.get("dbname") or role)
    shown = {"host": host, "port": port, "dbname": database, **({"user": role} if role else {})}
    return {
        "host": host,
        "port": port,
        "database": database,
        "role": role,
        "psql": f"psql {shlex.quote(make_conninfo(**shown))}",
    }


def parameter(dsn: str, name: str) -> str | None:
    """One connection parameter of a DSN (``options``, say), without showing the DSN on error."""
    try:
        value = conninfo_to_dict(dsn).get(name)
    except Exception:
        raise _MALFORMED from None
    return None if value is None else str(value)


def with_database(dsn: str, dbname: str) -> str:
    """The same connection parameters pointed at another database (as a key=value conninfo)."""
    try:
        return make_conninfo(dsn, dbname=dbname)
    except Exception:
        raise _MALFORMED from None


def connect(dsn: str, *, role: str, **options: Any) -> psycopg.Connection[TupleRow]:
    """Connect, or raise ``ConnectionFailed`` naming ``role`` (e.g. "standby") and ``host:port/db`` only."""
    where = describe(dsn)
    try:
        return psycopg.connect(dsn, application_name=APPLICATION_NAME, connect_timeout=10, **options)
    except psycopg.OperationalError as exc:
        # libpq's reason ("Connection refused", "password authentication failed ...") and its hint, in one
        # line; it names host, port and user, never the password.
        reason = " ".join(line.strip() for line in str(exc).splitlines() if line.strip()) or "no answer"
        raise ConnectionFailed(
            f"cannot connect to the {role} {where}: {reason}",
            f"check the {role}'s DSN and that the server is reachable from here",
        ) from None
    except psycopg.Error:
        raise _MALFORMED from None
