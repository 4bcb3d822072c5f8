"""The engine without Dagster, on any source: ``plan`` (the closure, nothing written) and ``load`` (the
masked load into a given empty database)."""

from __future__ import annotations

import argparse
import os
from typing import TYPE_CHECKING, Any

from repro_pipeline.cli.config_arguments import add_config_file_arguments
from repro_pipeline.cli.standby import add_allow_primary, standby_snapshot
from repro_pipeline.engine.config import ReproConfig
from repro_pipeline.engine.secrets import Secret

if TYPE_CHECKING:
    from repro_pipeline.engine.load.target_fit import TargetServerFacts


def add_commands(commands: argparse._SubParsersAction[Any]) -> None:
    plan = commands.add_parser("plan", help="the closure of one organization on any source, without writing")
    _engine_arguments(plan)
    plan.add_argument("--json", action="store_true", help="print the plan as JSON, for scripts")
    plan.add_argument(
        "--target",
        help="libpq URL of a database on the target server: also check it can take the source's schema "
        "(pg_dump's version, extensions)",
    )
    plan.set_defaults(handler=_plan)

    load = commands.add_parser("load", help="plan and masked load into a given empty database (no Dagster)")
    _engine_arguments(load)
    load.add_argument("--target", required=True, help="libpq URL of an empty database to fill")
    load.add_argument(
        "--workers",
        type=_positive_int,
        default=os.cpu_count() or 1,
        metavar="N",
        help="processes that read, mask and write tables at once, from one snapshot (default: the core "
        "count); 1: one connection and one target transaction, which leaves the target empty on error",
    )
    load.add_argument("--quiet", action="store_true", help="no progress lines per table")
    load.set_defaults(handler=_load)


def _engine_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--source", required=True, help="libpq URL of the source (a hot standby, read only)")
    parser.add_argument("--organization", required=True, help="numeric organization id")
    add_config_file_arguments(parser)
    add_allow_primary(parser)


def _positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive integer")
    return int(text)


def _plan(arguments: argparse.Namespace) -> int:
    import json

    from repro_pipeline.engine.load.plan import plan_subset
    from repro_pipeline.engine.load.report import plan_summary, plan_text

    config, salt, organization_id = engine_inputs(arguments)
    target = None if arguments.target is None else _target_server(arguments.target)
    with standby_snapshot(arguments.source, allow_primary=arguments.allow_primary) as snapshot:
        summary = plan_summary(plan_subset(snapshot, config, salt, organization_id, target))
    print(json.dumps(summary, indent=2) if arguments.json else plan_text(summary))
    return 0


def _load(arguments: argparse.Namespace) -> int:
    import uuid
    from datetime import UTC, datetime

    from repro_pipeline.engine.errors import ReproError
    from repro_pipeline.engine.load.loader import load_repro, require_empty_target
    from repro_pipeline.engine.load.parallel import LoadWorkers
    from repro_pipeline.engine.load.plan import plan_subset

    config, salt, organization_id = engine_inputs(arguments)
    with standby_snapshot(arguments.source, allow_primary=arguments.allow_primary) as snapshot:
        require_empty_target(arguments.target)
        plan = plan_subset(snapshot, config, salt, organization_id, _target_server(arguments.target))
        workers = LoadWorkers(arguments.workers, config, salt)
        try:
            report = load_repro(
                snapshot,
                arguments.target,
                plan,
                run_id=f"cli-{uuid.uuid4().hex}",
                started_at=datetime.now(UTC),
                batch_size=config.mask_rules.batch_size,
                workers=workers,
                on_progress=None if arguments.quiet else lambda progress: print(progress.line(), flush=True),
            )
        except ReproError as error:
            if workers.for_rows(plan.closure.total_rows) == 1:
                raise
            # The workers' tables were committed: unlike the Dagster run, the CLI does not own the database.
            raise type(error)(
                error.problem,
                f"{error.remedy}; the target database holds part of the load now: drop it and create it "
                "empty again before the next load",
            ) from None
    for table, rows in sorted(report.loaded_rows.items()):
        print(f"{table!s:<36} {rows:>9}")
    phases = ", ".join(f"{phase} {seconds:.2f} s" for phase, seconds in report.phase_seconds.items())
    print(f"loaded {sum(report.loaded_rows.values())} rows in {report.seconds:.1f} s ({phases})")
    return 0


def _target_server(target_dsn: str) -> TargetServerFacts:
    from repro_pipeline.engine import dsn
    from repro_pipeline.engine.load.target_fit import read_target_server

    with dsn.connect(target_dsn, role="target server") as conn:
        return read_target_server(conn)


def engine_inputs(arguments: argparse.Namespace) -> tuple[ReproConfig, Secret, int]:
    """The configuration, its salt and the organization id that plan, load and verify are given."""
    from repro_pipeline.engine.config import load_config
    from repro_pipeline.engine.secrets import resolve_salt
    from repro_pipeline.engine.subset.tenant import parse_organization_id

    organization_id = parse_organization_id(arguments.organization)
    config = load_config(arguments.mask_rules, arguments.commercial_extensions)
    salt = resolve_salt(config.mask_rules.global_salt, what=f"global_salt in {arguments.mask_rules}")
    return config, salt, organization_id
