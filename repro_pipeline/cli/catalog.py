"""``catalog refresh``: the catalog snapshot that gives the tenant job one asset per table.

The same as ``dg utils refresh-defs-state``, with the CLI's defaults: the embedded stack's standby when it is
up and ``REPRO_STANDBY_DSN`` is unset. A running ``dg dev`` loads the new table list when its code location
is reloaded.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import Any

from repro_pipeline.cli.environment import PROJECT_ROOT, use_embedded_stack_unless_configured


def add_commands(commands: argparse._SubParsersAction[Any]) -> None:
    catalog = commands.add_parser(
        "catalog", help="the catalog snapshot of the standby that gives the tenant job an asset per table"
    )
    actions = catalog.add_subparsers(required=True, metavar="ACTION", help="what to do with the snapshot")
    refresh = actions.add_parser(
        "refresh",
        help="read the standby's tables now and keep them as the project's definitions state "
        "(as `dg utils refresh-defs-state` does)",
    )
    refresh.add_argument("--json", action="store_true", help="print one JSON object, for scripts")
    refresh.set_defaults(handler=_refresh)


def _refresh(arguments: argparse.Namespace) -> int:
    from dagster.components.utils.project_paths import get_local_state_path

    from repro_pipeline.defs.tenant_repro.catalog_snapshot import (
        CATALOG_SNAPSHOT_KEY,
        LoadStepFromCatalogSnapshot,
    )
    from repro_pipeline.engine.source.catalog_snapshot import load_catalog_snapshot

    stack = use_embedded_stack_unless_configured()
    asyncio.run(LoadStepFromCatalogSnapshot().refresh_state(PROJECT_ROOT))
    path = get_local_state_path(CATALOG_SNAPSHOT_KEY, PROJECT_ROOT)
    snapshot = load_catalog_snapshot(path)
    tables = [str(name) for name in snapshot.table_names]
    if arguments.json:
        print(json.dumps({"source": snapshot.source, "path": str(path), "tables": tables}))
        return 0
    origin = " (the embedded stack's standby)" if stack is not None else ""
    print(f"catalog snapshot of {snapshot.source}{origin}: {len(tables)} tables, kept in {path}")
    print("the tenant job now has an asset per table (repro/<schema>/<table>); reload dg dev's code location")
    return 0
