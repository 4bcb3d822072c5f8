"""Commands of the embedded default: ``demo``, ``stack``, ``source`` and ``dev``."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from repro_pipeline.cli.environment import PROJECT_ROOT, running_stack, use_embedded_stack_unless_configured
from repro_pipeline.cli.json_output import add_json_argument, print_json, report_with_error
from repro_pipeline.engine.errors import StackDown
from repro_pipeline.engine.exit_codes import ExitCode


def add_commands(commands: argparse._SubParsersAction[Any]) -> None:
    demo = commands.add_parser("demo", help="embedded stack + synthetic source + a run for organization 451")
    demo.add_argument("--scale", type=float, default=1.0, help="synthetic source size (1.0: about 500k rows)")
    demo.add_argument("--organization", default="451", help="the organization id to copy (451)")
    demo.set_defaults(handler=_demo)

    stack = commands.add_parser("stack", help="the embedded Postgres stack: up, down, status, destroy")
    stack.add_argument(
        "action",
        choices=["up", "down", "status", "destroy"],
        help="up: start (create if needed); down: stop; status: DSNs and server states, exit 7 when one is "
        "stopped; destroy: stop and delete",
    )
    add_json_argument(stack, "the servers' states (status only)")
    stack.set_defaults(handler=_stack)

    source = commands.add_parser("source", help="build the synthetic billing source on the embedded primary")
    source.add_argument(
        "--scale", type=float, default=1.0, help="synthetic source size (1.0: about 500k rows)"
    )
    source.add_argument("--force", action="store_true", help="rebuild even if the same source is there")
    source.set_defaults(handler=_source)

    dev = commands.add_parser("dev", help="`dg dev` on the embedded stack (the UI at http://127.0.0.1:3000)")
    dev.set_defaults(handler=_dev)


def _demo(arguments: argparse.Namespace) -> int:
    from repro_pipeline.cli.run_report import GUIDE_BUG_QUERY
    from repro_pipeline.cli.runs import run_tenant
    from repro_pipeline.embedded.stack import up
    from repro_pipeline.embedded.synthetic import SourceSpec, build_source
    from repro_pipeline.engine.subset.tenant import parse_organization_id

    organization_id = parse_organization_id(arguments.organization)
    print("1/3 starting the embedded stack (primary, streaming standby, target)...", flush=True)
    stack = up()
    print(f"    {stack.binaries.describe()}")
    print(
        "2/3 building the synthetic billing source on the primary (skipped when already built)...", flush=True
    )
    summary = build_source(stack.primary_dsn, SourceSpec(scale=arguments.scale))
    print(f"    {summary.total_rows} rows, {'built now' if summary.generated else 'already there'}")
    print(f"3/3 materializing partition {organization_id} through the Dagster instance...", flush=True)
    return run_tenant(str(organization_id), GUIDE_BUG_QUERY)


def _stack(arguments: argparse.Namespace) -> int:
    from repro_pipeline.embedded.stack.__main__ import main as stack_main

    if arguments.json and arguments.action == "status":
        return _stack_status_json()

    code = stack_main([arguments.action], up_command="repro-pipeline stack up")
    if code and arguments.action == "status":
        return ExitCode.NOT_READY
    return code


def _stack_status_json() -> int:
    """The servers as a document, never a password: where each listens and whether it runs."""
    from repro_pipeline.embedded.stack import server_statuses, status
    from repro_pipeline.embedded.stack.layout import resolve_stack_root

    stack = status()
    if stack is None:
        raise StackDown(f"no stack in {resolve_stack_root(None)}", "run `repro-pipeline stack up`")
    states = server_statuses(stack)
    document = {
        "root": str(stack.root),
        "binaries": stack.binaries.describe(),
        "servers": {
            server.name: {
                "running": states[server.name].running,
                "pid": states[server.name].pid,
                "port": server.port,
                "data_dir": str(server.data_dir),
                "log_file": str(server.log_file),
            }
            for server in stack.servers
        },
    }
    stopped = [name for name, state in states.items() if not state.running]
    if stopped:
        return report_with_error(
            document, StackDown(f"stopped: {', '.join(stopped)}", "run `repro-pipeline stack up`")
        )
    print_json(document)
    return 0


def _source(arguments: argparse.Namespace) -> int:
    from repro_pipeline.embedded.synthetic import SourceSpec, build_source

    stack = running_stack()
    summary = build_source(stack.primary_dsn, SourceSpec(scale=arguments.scale), force=arguments.force)
    print(f"source: {summary.total_rows} rows ({'built' if summary.generated else 'already built'})")
    return 0


def _dev(arguments: argparse.Namespace) -> int:
    from repro_pipeline.embedded.stack import up

    up()
    use_embedded_stack_unless_configured()
    dg = os.path.join(os.path.dirname(sys.executable), "dg")
    # dg finds the project by the pyproject.toml of the folder it starts in, and its venv by VIRTUAL_ENV.
    os.chdir(PROJECT_ROOT)
    os.environ.setdefault("VIRTUAL_ENV", sys.prefix)
    os.execv(dg, [dg, "dev"])
