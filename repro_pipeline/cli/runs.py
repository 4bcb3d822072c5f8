"""Commands that run the Dagster jobs on the instance in ``$DAGSTER_HOME``: ``materialize``, ``handoff`` and
``sweep``."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from repro_pipeline.cli.environment import use_embedded_stack_unless_configured
from repro_pipeline.cli.json_output import add_json_argument, print_json, report_failure
from repro_pipeline.cli.repro_query_input import add_repro_query_arguments, repro_query_of


def add_commands(commands: argparse._SubParsersAction[Any]) -> None:
    materialize = commands.add_parser("materialize", help="run the tenant job for one organization")
    materialize.add_argument("organization", help="numeric organization id, e.g. 451")
    add_repro_query_arguments(materialize)
    add_json_argument(materialize, "the run's report")
    materialize.set_defaults(handler=_materialize)

    handoff = commands.add_parser(
        "handoff", help="post the handoff of a checked repro database again (after Slack was down, say)"
    )
    handoff.add_argument("database", help="the repro database's name, e.g. repro_org451_0123abcd")
    add_json_argument(handoff, "the database handed off")
    handoff.set_defaults(handler=_handoff)

    sweep = commands.add_parser("sweep", help="drop the repro databases whose TTL has run out")
    add_json_argument(sweep, "what the sweep dropped and removed")
    sweep.set_defaults(handler=_sweep)


def _materialize(arguments: argparse.Namespace) -> int:
    from repro_pipeline.engine.subset.tenant import parse_organization_id

    organization_key = str(parse_organization_id(arguments.organization))
    query = repro_query_of(arguments)
    return run_tenant(organization_key, query.text if query is not None else "", as_json=arguments.json)


def run_tenant(organization_key: str, repro_query: str = "", *, as_json: bool = False) -> int:
    import dagster as dg

    from repro_pipeline.cli.launch import materialize_tenant
    from repro_pipeline.cli.progress import progress_display
    from repro_pipeline.cli.run_progress import RunProgress, watching
    from repro_pipeline.cli.run_report import print_run_report
    from repro_pipeline.defs.tenant_repro.jobs import tenant_repro_job

    stack = use_embedded_stack_unless_configured()
    with dg.DagsterInstance.get() as instance:
        with (
            progress_display() as display,
            watching(RunProgress(display, tenant_repro_job.name, organization_key)),
        ):
            result = materialize_tenant(
                organization_key, instance, console_log_level="CRITICAL", repro_query=repro_query
            )
        password_file = str(stack.root / "credentials") if stack else ""
        return print_run_report(result, int(organization_key), password_file, as_json=as_json)


def _handoff(arguments: argparse.Namespace) -> int:
    import os

    import dagster as dg

    from repro_pipeline.cli.launch import hand_off_again
    from repro_pipeline.engine import dsn
    from repro_pipeline.engine.errors import RequestRefused
    from repro_pipeline.engine.repro_databases import lifecycle

    use_embedded_stack_unless_configured()
    with dsn.connect(os.environ["REPRO_TARGET_DSN"], role="target server", autocommit=True) as admin:
        known = {database.name: database for database in lifecycle.list_repro_databases(admin)}
    if arguments.database not in known:
        raise RequestRefused(
            f"the target server has no repro database {arguments.database!r}",
            f"name one of: {', '.join(sorted(known)) or 'none exists'}",
        )
    database = known[arguments.database]
    with dg.DagsterInstance.get() as instance:
        result = hand_off_again(
            database.organization_id, database.name, instance, console_log_level="WARNING"
        )
    if not result.success:
        failures = [event.message for event in result.all_events if event.is_step_failure and event.message]
        return report_failure(arguments.json, "the handoff failed", failures)
    if arguments.json:
        print_json({"handed_off": database.name, "organization_id": database.organization_id})
    else:
        print(f"handed off {database.name} (organization {database.organization_id})")
    return 0


def _sweep(arguments: argparse.Namespace) -> int:
    import dagster as dg

    from repro_pipeline.cli.launch import run_ttl_sweep

    use_embedded_stack_unless_configured()
    with dg.DagsterInstance.get() as instance:
        # The run's log would print each failure with its stack trace: its warnings and failures are printed below.
        outcome = run_ttl_sweep(instance, console_log_level="CRITICAL")
    for warning in outcome.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if not outcome.success:
        return report_failure(
            arguments.json,
            f"the TTL sweep failed (run {outcome.run_id} in {os.environ['DAGSTER_HOME']})",
            outcome.failures or ("its step failed without a recorded reason",),
            "fix what the failure names, then run `repro-pipeline sweep` again",
        )
    if arguments.json:
        print_json({"dropped": list(outcome.dropped), "run_id": outcome.run_id, **outcome.leftovers})
        return 0
    print(sweep_summary(outcome.dropped, outcome.leftovers))
    return 0


def sweep_summary(dropped: tuple[str, ...], leftovers: dict[str, list[str]]) -> str:
    """What the sweep did, in one or a few lines: what it dropped, or that nothing had expired."""
    lines = [
        f"dropped {len(dropped)} expired repro database(s): {', '.join(dropped)}"
        if dropped
        else "no repro database has expired: nothing dropped"
    ]
    labels = {
        "leftover_logins_dropped": "dropped logins whose database is gone",
        "leftover_secrets_removed": "removed DSN files whose database is gone",
        "invalid_partitions_removed": "removed partitions that are no organization id",
    }
    lines += [f"{label}: {', '.join(leftovers[key])}" for key, label in labels.items() if leftovers.get(key)]
    return "\n".join(lines)
