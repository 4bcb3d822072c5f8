"""Whether the target server can take the source's schema, checked when the load is planned: a pg_dump that
reads the source and writes for the target (``schema_dump.find_dump_tools``), and every extension the source's
schema creates available on the target server (pg_dump writes ``CREATE EXTENSION``, which needs its files)."""

from __future__ import annotations

from dataclasses import dataclass

import psycopg
from psycopg.rows import TupleRow

from repro_pipeline.engine.errors import TargetError
from repro_pipeline.engine.load.schema_dump import DumpTools, find_dump_tools


@dataclass(frozen=True)
class TargetServerFacts:
    """What the plan needs to know of the server that gets the repro database."""

    where: str  # host:port
    major: int
    available_extensions: frozenset[str]


def read_target_server(conn: psycopg.Connection[TupleRow]) -> TargetServerFacts:
    """The facts of the server ``conn`` is connected to (any of its databases)."""
    names = conn.execute("SELECT name FROM pg_available_extensions").fetchall()
    return TargetServerFacts(
        where=f"{conn.info.host}:{conn.info.port}",
        major=conn.info.server_version // 10000,
        available_extensions=frozenset(str(name) for (name,) in names),
    )


def require_schema_fits(source: psycopg.Connection[TupleRow], target: TargetServerFacts | None) -> DumpTools:
    """The pg_dump to use; refused, naming the version or the extensions, when the source's schema cannot be
    replicated onto ``target`` (None: the target is not known yet, only the source's side is checked)."""
    tools = find_dump_tools(source.info.server_version // 10000, None if target is None else target.major)
    if target is not None:
        extensions = source.execute("SELECT extname, extversion FROM pg_extension ORDER BY 1").fetchall()
        missing = [
            (str(name), str(version))
            for name, version in extensions
            if name not in target.available_extensions
        ]
        if missing:
            listed = ", ".join(f"{name} (version {version} on the source)" for name, version in missing)
            raise TargetError(
                f"the source's schema creates the extension(s) {listed}, which the target server "
                f"{target.where} (PostgreSQL {target.major}) does not have: it is not in its "
                "pg_available_extensions",
                f"install {', '.join(name for name, _ in missing)} on the target server (the extension's "
                f"package for PostgreSQL {target.major}), or use a target server that has it, then plan again",
            )
    return tools
