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
from repro_pipeline.cli.json_output import add_json_argument, print_json, report_with_error
from repro_pipeline.cli.plan_and_load import engine_inputs
from repro_pipeline.cli.progress import progress_display
from repro_pipeline.cli.repro_query_input import (
    add_repro_query_arguments,
    add_repro_query_timeout,
    repro_query_of,
    repro_query_timeout_of,
)
from repro_pipeline.cli.standby import add_allow_primary, add_source_argument, standby_snapshot


def add_commands(commands: argparse._SubParsersAction[Any]) -> None:
    verify = commands.add_parser(
        "verify",
        help="the checks of a loaded repro database: FK orphans, row counts, original PII, schema (no Dagster)",
    )
    add_source_argument(verify)
    verify.add_argument("--target", required=True, help="libpq URL of the repro database to check")
    verify.add_argument("--organization", required=True, help="numeric organization id it was loaded for")
    add_config_file_arguments(verify)
    add_json_argument(verify, "the verdicts")
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

    inputs = engine_inputs(arguments)
    organization_id = inputs.organization_id
    query = repro_query_of(arguments)
    timeout = repro_query_timeout_of(arguments)
    read_only = "-c default_transaction_read_only=on -c row_security=off"  # see every row, or fail
    with (
        progress_display() as display,
        dsn.connect(arguments.target, role="repro database", autocommit=True, options=read_only) as target,
    ):
        recorded = recorded_organization(target)
        if recorded != organization_id:
            raise TargetError(
                f"{dsn.describe(arguments.target)} holds organization {recorded}, not {organization_id}",
                "give the organization the database was loaded for, or the database of this organization",
            )
        with standby_snapshot(inputs.source, allow_primary=arguments.allow_primary) as snapshot:
            with display.step(f"closure of organization {organization_id}") as step:
                plan = plan_subset(snapshot, inputs.config, inputs.salt, organization_id)
                step.done(f"{plan.closure.total_rows} rows")
            with display.step("original values of the masked columns"):
                originals = read_originals(snapshot.conn, plan, inputs.config)
            with display.step("the source's schema"):
                schema = replicated_schema(snapshot, plan, target.info.server_version)
        with display.step("checks: orphans, row counts, original PII, schema") as step:
            verdicts = verify_repro(
                plan,
                originals,
                schema,
                target,
                arguments.target,
                scan_session=lambda: dsn.connect(
                    arguments.target, role="repro database", autocommit=True, options=read_only
                ),
            )
            step.done(f"{sum(v.passed for v in verdicts)} of {len(verdicts)} passed")
        # Information, not a verdict: the bug reproducing on the copy never fails verify.
        found = None if query is None else run_repro_query(target, query, organization_id, timeout)
    failed = [verdict.check for verdict in verdicts if not verdict.passed]
    failure = ChecksFailed(
        f"{dsn.describe(arguments.target)} failed {', '.join(failed)}",
        "do not hand it off: drop it, fix the rules or the load, and load again",
    )
    if arguments.json:
        report: dict[str, Any] = {v.check: {"passed": v.passed, **v.found} for v in verdicts}
        if found is not None:
            report["repro_query"] = {
                "ran": found.ran,
                "rows": found.rows,
                "error": found.error,
                "result": found.sentence(),
            }
        if failed:
            return report_with_error(report, failure)
        print_json(report)
        return 0
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
    if failed:
        raise failure
    return 0
