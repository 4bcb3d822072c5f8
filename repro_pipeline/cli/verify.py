"""``verify``: the checks of a loaded repro database (orphans, counts, leaks, schema), outside Dagster. It
reads and never writes: verdicts go to the terminal (or ``--json``), not into the database's record.

It computes the closure and dumps the source's schema again, in one fresh snapshot of the source, with the
configuration (and salt) the load used; a source row or table changed since the load is compared as it is
now.
"""

from __future__ import annotations

import argparse
import json
import textwrap
from typing import Any

from repro_pipeline.cli.config_arguments import add_config_file_arguments
from repro_pipeline.cli.plan_and_load import engine_inputs
from repro_pipeline.cli.repro_query_input import (
    add_repro_query_arguments,
    add_repro_query_timeout,
    repro_query_of,
    repro_query_timeout_of,
)
from repro_pipeline.cli.standby import add_allow_primary, standby_snapshot


def add_commands(commands: argparse._SubParsersAction[Any]) -> None:
    verify = commands.add_parser(
        "verify",
        help="the checks of a loaded repro database: FK orphans, row counts, original PII, schema (no Dagster)",
    )
    verify.add_argument("--source", required=True, help="libpq URL of the source (a hot standby, read only)")
    verify.add_argument("--target", required=True, help="libpq URL of the repro database to check")
    verify.add_argument("--organization", required=True, help="numeric organization id it was loaded for")
    add_config_file_arguments(verify)
    verify.add_argument("--json", action="store_true", help="print the verdicts as JSON, for scripts")
    add_repro_query_arguments(verify)
    add_repro_query_timeout(verify)
    add_allow_primary(verify)
    verify.set_defaults(handler=_verify)


def _verify(arguments: argparse.Namespace) -> int:
    from repro_pipeline.engine import dsn
    from repro_pipeline.engine.errors import ChecksFailed, TargetError
    from repro_pipeline.engine.load.loader import replicated_schema
    from repro_pipeline.engine.load.plan import plan_subset
    from repro_pipeline.engine.repro_databases.manifest import recorded_organization
    from repro_pipeline.engine.verify.checks import read_originals, verify_repro
    from repro_pipeline.engine.verify.repro_query import run_repro_query

    config, salt, organization_id = engine_inputs(arguments)
    query = repro_query_of(arguments)
    timeout = repro_query_timeout_of(arguments)
    read_only = "-c default_transaction_read_only=on -c row_security=off"  # see every row, or fail
    with dsn.connect(arguments.target, role="repro database", autocommit=True, options=read_only) as target:
        recorded = recorded_organization(target)
        if recorded != organization_id:
            raise TargetError(
                f"{dsn.describe(arguments.target)} holds organization {recorded}, not {organization_id}",
                "give the organization the database was loaded for, or the database of this organization",
            )
        with standby_snapshot(arguments.source, allow_primary=arguments.allow_primary) as snapshot:
            plan = plan_subset(snapshot, config, salt, organization_id)
            originals = read_originals(snapshot.conn, plan, config)
            schema = replicated_schema(snapshot, plan, target.info.server_version)
        verdicts = verify_repro(plan, originals, schema, target, arguments.target)
        # Information, not a verdict: the bug reproducing on the copy never fails verify.
        found = None if query is None else run_repro_query(target, query, organization_id, timeout)
    if arguments.json:
        report = {v.check: {"passed": v.passed, **v.found} for v in verdicts}
        if found is not None:
            report["repro_query"] = {
                "ran": found.ran,
                "rows": found.rows,
                "error": found.error,
                "result": found.sentence(),
            }
        print(json.dumps(report, indent=2))
    else:
        for verdict in verdicts:
            print(f"{verdict.check:<28} {'PASSED' if verdict.passed else 'FAILED'}")
            for key, value in verdict.found.items():
                if isinstance(value, str) and "\n" in value:  # a diff, line by line
                    print(f"    {key}:")
                    print(textwrap.indent(value, "      "))
                else:
                    print(f"    {key}: {json.dumps(value)}")
        if found is not None:
            print(f"{'repro_query':<28} {'RAN' if found.ran else 'NOT RUN'}: {found.sentence()}")
    failed = [verdict.check for verdict in verdicts if not verdict.passed]
    if failed:
        raise ChecksFailed(
            f"{dsn.describe(arguments.target)} failed {', '.join(failed)}",
            "do not hand it off: drop it, fix the rules or the load, and load again",
        )
    return 0
