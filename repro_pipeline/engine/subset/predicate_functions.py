"""Root predicates run as the source role, so the functions they call are checked against the source's
own catalog before the closure runs: IMMUTABLE and STABLE ones only select, a VOLATILE one may act
(sleep, signal a backend, write), and is refused."""

from __future__ import annotations

from collections.abc import Sequence

import psycopg
from psycopg.rows import TupleRow

from repro_pipeline.engine.errors import ConfigError
from repro_pipeline.engine.subset.closure import Root
from repro_pipeline.engine.subset.predicate import called_functions

_VOLATILITY = {"i": "IMMUTABLE", "s": "STABLE", "v": "VOLATILE"}


def require_selecting_functions(conn: psycopg.Connection[TupleRow], roots: Sequence[Root]) -> None:
    calls = [(root, schema, name) for root in roots for schema, name in called_functions(root.predicate.text)]
    if not calls:
        return
    found: dict[tuple[str, str], set[str]] = {}
    for schema, name, volatility, visible in conn.execute(
        "SELECT n.nspname, p.proname, p.provolatile, n.nspname = ANY(current_schemas(true)) "
        "FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace "
        "WHERE p.proname = ANY(%s)",
        ([name for _, _, name in calls],),
    ):
        found.setdefault((str(name), str(schema)), set()).add(str(volatility))
        if visible:
            found.setdefault((str(name), ""), set()).add(str(volatility))
    for root, schema, name in calls:
        shown = f"{schema}.{name}" if schema else name
        volatilities = found.get((name, schema or ""))
        if not volatilities:
            raise ConfigError(
                f"{root.where}: the predicate of {root.table} calls {shown}(), which the source does not have",
                "call a function the source has (schema-qualified when it is not on the search path)",
            )
        if "v" in volatilities:
            raise ConfigError(
                f"{root.where}: the predicate of {root.table} calls {shown}(), which is VOLATILE on the source: "
                "a predicate only selects rows",
                "use IMMUTABLE or STABLE functions only, such as now(), lower() or date_trunc()",
            )
