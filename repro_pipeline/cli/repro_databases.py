"""Commands on the repro databases of the target server: ``list``, ``extend`` and ``drop``.

``list`` reads the databases' records on the target server. ``extend`` and ``drop`` run their op jobs on the
instance in ``$DAGSTER_HOME``, so the organization's partition in the UI says what became of the database;
a database that is unknown or not repro_pipeline's, and an extension past the longest life, are refused
before any run.
"""

from __future__ import annotations

import argparse
import math
import sys
from typing import TYPE_CHECKING, Any

from repro_pipeline.cli.environment import use_embedded_stack_unless_configured
from repro_pipeline.cli.json_output import add_json_argument, print_json, report_failure

if TYPE_CHECKING:
    import dagster as dg
    import psycopg
    from psycopg.rows import TupleRow


def add_commands(commands: argparse._SubParsersAction[Any]) -> None:
    listing = commands.add_parser(
        "list", help="the repro databases on the target server: organization, database, status, expiry"
    )
    add_json_argument(listing, "the databases (a JSON array)")
    listing.set_defaults(handler=_list)

    extend = commands.add_parser(
        "extend", help="give a repro database more time to live, within the longest a repro database may live"
    )
    extend.add_argument("database", help="the repro database's name, e.g. repro_org451_0123abcd")
    extend.add_argument(
        "--hours",
        type=_positive_hours,
        required=True,
        help="how much longer it lives, from its current expiry (from now, if that has passed)",
    )
    add_json_argument(extend, "the database and its new expiry")
    extend.set_defaults(handler=_extend)

    drop = commands.add_parser("drop", help="drop a repro database now, before its TTL runs out")
    drop.add_argument("database", help="the repro database's name, e.g. repro_org451_0123abcd")
    add_json_argument(drop, "the database dropped")
    drop.set_defaults(handler=_drop)


def _positive_hours(text: str) -> float:
    try:
        hours = float(text)
    except ValueError:
        hours = math.nan
    if not (hours > 0 and math.isfinite(hours)):
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number of hours")
    return hours


def _target_admin() -> psycopg.Connection[TupleRow]:
    import os

    from repro_pipeline.engine import dsn

    return dsn.connect(os.environ["REPRO_TARGET_DSN"], role="target server", autocommit=True)


def _list(arguments: argparse.Namespace) -> int:
    from repro_pipeline.defs.repro_databases.jobs import listing
    from repro_pipeline.engine.repro_databases import lifecycle

    use_embedded_stack_unless_configured()
    with _target_admin() as admin:
        registry = lifecycle.read_registry(admin)
    for problem in registry.unreadable:
        print(f"warning: skipped {problem}", file=sys.stderr)
    listed = [listing(database) for database in registry.databases]
    if arguments.json:
        print_json(listed)
        return 0
    if not listed:
        print("no repro database on the target server")
        return 0
    print(f"{'organization':>12}  {'database':<24}  {'status':<8}  expires (UTC)")
    for row in listed:
        expires = f"{row['expires_at'][:16].replace('T', ' ')}{'  expired' if row['expired'] else ''}"
        print(f"{row['organization_id']:>12}  {row['database']:<24}  {row['status']:<8}  {expires}")
    return 0


def _extend(arguments: argparse.Namespace) -> int:
    from datetime import UTC, datetime, timedelta

    import dagster as dg

    from repro_pipeline.cli.launch import extend_repro_database
    from repro_pipeline.defs.repro_databases.jobs import LONGEST_LIFE
    from repro_pipeline.engine.repro_databases import lifecycle

    use_embedded_stack_unless_configured()
    with _target_admin() as admin:
        database = lifecycle.find_repro_database(admin, arguments.database)
    lifecycle.extended_expiry(database, timedelta(hours=arguments.hours), LONGEST_LIFE, datetime.now(UTC))
    with dg.DagsterInstance.get() as instance:
        result = extend_repro_database(database.name, arguments.hours, instance, console_log_level="WARNING")
    if not result.success:
        return _failed(result, "the extension", as_json=arguments.json)
    expires_at = datetime.fromisoformat(result.output_for_node("extend_repro_database_ttl"))
    if arguments.json:
        print_json({"database": database.name, "expires_at": expires_at.isoformat()})
    else:
        print(f"{database.name} now expires {expires_at:%Y-%m-%d %H:%M} UTC")
    return 0


def _drop(arguments: argparse.Namespace) -> int:
    import dagster as dg

    from repro_pipeline.cli.launch import drop_repro_database
    from repro_pipeline.engine.repro_databases import lifecycle

    use_embedded_stack_unless_configured()
    with _target_admin() as admin:
        database = lifecycle.find_repro_database(admin, arguments.database)
    with dg.DagsterInstance.get() as instance:
        result = drop_repro_database(database.name, instance, console_log_level="WARNING")
    if not result.success:
        return _failed(result, "the drop", as_json=arguments.json)
    if arguments.json:
        print_json({"dropped": database.name, "organization_id": database.organization_id})
    else:
        print(f"dropped {database.name} (organization {database.organization_id})")
    return 0


def _failed(result: dg.ExecuteInProcessResult, what: str, *, as_json: bool) -> int:
    from repro_pipeline.cli.launch import step_failures

    return report_failure(as_json, f"{what} failed", step_failures(result))
