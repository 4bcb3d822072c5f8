"""The engine without Dagster, on any source: ``plan`` (the closure, nothing written) and ``load`` (the
masked load into a given database, empty unless ``on_existing_data`` says what to do with its data)."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from repro_pipeline.cli.config_arguments import add_config_file_arguments
from repro_pipeline.cli.environment import demo_salt_reference, source_dsn
from repro_pipeline.cli.json_output import add_json_argument, print_json
from repro_pipeline.cli.progress import progress_display
from repro_pipeline.cli.standby import add_allow_primary, add_source_argument, standby_snapshot
from repro_pipeline.engine.config import ReproConfig
from repro_pipeline.engine.secrets import Secret

if TYPE_CHECKING:
    from repro_pipeline.engine.load.existing_data import OnExistingData
    from repro_pipeline.engine.load.target_fit import TargetServerFacts


def add_commands(commands: argparse._SubParsersAction[Any]) -> None:
    plan = commands.add_parser("plan", help="the closure of one organization on any source, without writing")
    _engine_arguments(plan)
    add_json_argument(plan, "the plan")
    plan.add_argument(
        "--target",
        help="libpq URL of a database on the target server: also check it can take the source's schema "
        "(pg_dump's version, extensions)",
    )
    plan.set_defaults(handler=_plan)

    load = commands.add_parser("load", help="plan and masked load into a given database (no Dagster)")
    _engine_arguments(load)
    load.add_argument(
        "--target",
        required=True,
        help="libpq URL of the database to fill: empty, unless --on-existing-data says otherwise",
    )
    load.add_argument(
        "--on-existing-data",
        type=_policy,
        metavar="{fail,truncate,drop_create}",
        help="when the target holds tables: fail (the default), truncate (empty the load's tables, defined as "
        "the source's, and fill them again) or drop_create (drop every object of the schemas the load writes, "
        "then replicate afresh); overrides on_existing_data of the mask rules",
    )
    load.add_argument(
        "--workers",
        type=_positive_int,
        default=os.cpu_count() or 1,
        metavar="N",
        help="processes that read, mask and write tables at once, from one snapshot (default: the core "
        "count); 1: one connection and one target transaction, which leaves the target empty on error",
    )
    load.add_argument("--quiet", action="store_true", help="no progress bar or lines")
    load.add_argument(
        "--no-audit-table",
        action="store_true",
        help="no audit log in the target's _repro_pipeline schema, whatever audit_log says (the run's record "
        "is written)",
    )
    add_json_argument(load, "the rows loaded per table and the times")
    load.set_defaults(handler=_load)


def _engine_arguments(parser: argparse.ArgumentParser) -> None:
    add_source_argument(parser)
    parser.add_argument("--organization", required=True, help="numeric organization id")
    add_config_file_arguments(parser)
    add_allow_primary(parser)


def _policy(text: str) -> OnExistingData:
    from repro_pipeline.engine.config import APPEND_REFUSED
    from repro_pipeline.engine.load.existing_data import POLICIES

    for policy in POLICIES:
        if text == policy:
            return policy
    if text == "append":
        raise argparse.ArgumentTypeError(APPEND_REFUSED)
    raise argparse.ArgumentTypeError(f"{text!r} is none of {', '.join(POLICIES)}")


def _positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive integer")
    return int(text)


def _plan(arguments: argparse.Namespace) -> int:
    from repro_pipeline.engine.load.plan import plan_subset
    from repro_pipeline.engine.load.report import plan_summary, plan_text

    inputs = engine_inputs(arguments)
    target = None if arguments.target is None else _target_server(arguments.target)
    with (
        progress_display() as display,
        standby_snapshot(inputs.source, allow_primary=arguments.allow_primary) as snapshot,
        display.step(f"closure of organization {inputs.organization_id}") as step,
    ):
        summary = plan_summary(
            plan_subset(snapshot, inputs.config, inputs.salt, inputs.organization_id, target)
        )
        step.done(f"{summary['total_rows']} rows in {summary['passes']} passes")
    if arguments.json:
        print_json(summary)
    else:
        print(plan_text(summary))
    return 0


def _load(arguments: argparse.Namespace) -> int:
    import uuid
    from datetime import UTC, datetime

    from repro_pipeline.engine import dsn
    from repro_pipeline.engine.errors import ReproError
    from repro_pipeline.engine.load import existing_data
    from repro_pipeline.engine.load.loader import load_repro
    from repro_pipeline.engine.load.parallel import LoadWorkers
    from repro_pipeline.engine.load.plan import plan_subset

    inputs = engine_inputs(arguments)
    config = inputs.config
    policy = arguments.on_existing_data or config.mask_rules.on_existing_data or "fail"
    with (
        progress_display(quiet=arguments.quiet) as display,
        standby_snapshot(inputs.source, allow_primary=arguments.allow_primary) as snapshot,
    ):
        if policy == "fail":
            existing_data.require_empty_target(arguments.target)
        with display.step(f"closure of organization {inputs.organization_id}") as step:
            plan = plan_subset(
                snapshot, config, inputs.salt, inputs.organization_id, _target_server(arguments.target)
            )
            step.done(f"{plan.closure.total_rows} rows")
        refill = policy == "truncate" and existing_data.holds_load_tables(
            arguments.target, plan.created_tables
        )
        if policy == "drop_create":
            with display.step("on_existing_data drop_create: dropping the schemas the load writes") as step:
                emptied = existing_data.drop_written_schemas(arguments.target, plan.created_tables)
                step.done(f"emptied {', '.join(emptied) or 'nothing'}")
        workers = LoadWorkers(1 if refill else arguments.workers, config, inputs.salt)
        try:
            report = load_repro(
                snapshot,
                arguments.target,
                plan,
                run_id=f"cli-{uuid.uuid4().hex}",
                started_at=datetime.now(UTC),
                batch_size=config.mask_rules.batch_size,
                workers=workers,
                on_progress=display.table,
                audit_log=config.mask_rules.audit_log and not arguments.no_audit_table,
                refill=refill,
            )
        except ReproError as error:
            if workers.for_rows(plan.closure.total_rows) == 1:
                raise
            # The workers' tables were committed: unlike the Dagster run, the CLI does not own the database.
            raise type(error)(
                error.problem,
                f"{error.remedy}; the target database holds part of the load now: load again with "
                "--on-existing-data drop_create, or into a new, empty database",
            ) from None
    total = sum(report.loaded_rows.values())
    if arguments.json:
        print_json(
            {
                "target": dsn.describe(arguments.target),
                "organization_id": inputs.organization_id,
                "loaded_rows": {str(table): rows for table, rows in sorted(report.loaded_rows.items())},
                "total_rows": total,
                "seconds": round(report.seconds, 3),
                "phase_seconds": {
                    phase: round(seconds, 3) for phase, seconds in report.phase_seconds.items()
                },
            }
        )
        return 0
    for table, rows in sorted(report.loaded_rows.items()):
        print(f"{table!s:<36} {rows:>9}")
    phases = ", ".join(f"{phase} {seconds:.2f} s" for phase, seconds in report.phase_seconds.items())
    print(f"loaded {total} rows in {report.seconds:.1f} s ({phases})")
    return 0


def _target_server(target_dsn: str) -> TargetServerFacts:
    from repro_pipeline.engine import dsn
    from repro_pipeline.engine.load.target_fit import read_target_server

    with dsn.connect(target_dsn, role="target server") as conn:
        return read_target_server(conn)


@dataclass(frozen=True)
class EngineInputs:
    """What plan, load and verify are given: the configuration, its salt, the organization and the source."""

    config: ReproConfig
    salt: Secret
    organization_id: int
    source: str


def engine_inputs(arguments: argparse.Namespace) -> EngineInputs:
    """The inputs, the source and the salt taken from the embedded stack when none is given (and said)."""
    from repro_pipeline.engine.config import load_config
    from repro_pipeline.engine.secrets import resolve_salt
    from repro_pipeline.engine.subset.tenant import parse_organization_id

    organization_id = parse_organization_id(arguments.organization)
    config = load_config(arguments.mask_rules, arguments.commercial_extensions)
    source, stack = source_dsn(arguments.source)
    reference = demo_salt_reference(config.mask_rules.global_salt, stack)
    what = (
        f"global_salt in {arguments.mask_rules}"
        if reference == config.mask_rules.global_salt
        else "the demo salt"
    )
    return EngineInputs(config, resolve_salt(reference, what=what), organization_id, source)
