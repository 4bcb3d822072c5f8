"""Connection strings: shown only as ``host:port/dbname``, never with a password."""

from __future__ import annotations

from psycopg.conninfo import conninfo_to_dict

from repro_pipeline.engine.errors import ReproError


def describe(dsn: str) -> str:
    """``host:port/dbname`` of a DSN, safe for logs, metadata and messages."""
    try:
        parts = conninfo_to_dict(dsn)
    except Exception:
        raise ReproError(
            "a connection string is malformed (its text is not shown: it may hold a password)",
            "check the DSN variables; they take libpq URLs like postgresql://user@host:5432/dbname",
        ) from None
    host = parts.get("host") or "localhost"
    port = parts.get("port") or "5432"
    return f"{host}:{port}/{parts.get('dbname') or parts.get('user') or ''}"


def with_database(dsn: str, dbname: str) -> str:
    """The same connection parameters pointed at another database (as a key=value conninfo)."""
    from psycopg.conninfo import make_conninfo

    return make_conninfo(dsn, dbname=dbname)
