"""The ``repro-pipeline`` command: its parser, assembled from the command groups, and its error handling."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from importlib.metadata import version

from repro_pipeline.cli import (
    catalog,
    config_files,
    embedded,
    plan_and_load,
    repro_databases,
    runs,
    suggest_references,
    verify,
)
from repro_pipeline.cli.json_output import (
    error_fields,
    json_requested,
    parser_class,
    print_json,
    repro_error_document,
)
from repro_pipeline.engine.errors import ReproError
from repro_pipeline.engine.exit_codes import ExitCode

DESCRIPTION = "Build a clean, masked, FK-complete copy of one tenant from a Postgres warm standby."


def main(argv: Sequence[str] | None = None) -> int:
    given = list(sys.argv[1:] if argv is None else argv)
    as_json = json_requested(given)
    arguments = _parser(json_errors=as_json).parse_args(given)
    try:
        return int(arguments.handler(arguments))
    except ReproError as error:
        if as_json:
            print_json(repro_error_document(error))
        print(f"error: {error}", file=sys.stderr)
        return int(error.exit_code)
    except KeyboardInterrupt:
        if as_json:
            print_json({"error": error_fields("interrupted", "", ExitCode.INTERRUPTED)})
        print("error: interrupted", file=sys.stderr)
        return ExitCode.INTERRUPTED
    except BrokenPipeError:  # the reader went away (e.g. `| head`): nothing left to say
        sys.stderr.close()
        return ExitCode.OK


def _parser(*, json_errors: bool = False) -> argparse.ArgumentParser:
    parser = parser_class(json_errors=json_errors)(
        prog="repro-pipeline",
        description=DESCRIPTION,
        epilog="exit codes: "
        + "; ".join(f"{code.value} {code.name.lower().replace('_', ' ')}" for code in ExitCode)
        + " (see docs/cli.md)",
    )
    parser.add_argument(
        "--version",
        action="version",
        version=f"%(prog)s {version('repro_pipeline')}",
        help="print the version and exit",
    )
    commands = parser.add_subparsers(
        required=True,
        metavar="COMMAND",
        help="one of the commands below",
        parser_class=parser_class(json_errors=json_errors),
    )
    for group in (
        embedded,
        runs,
        repro_databases,
        plan_and_load,
        verify,
        config_files,
        suggest_references,
        catalog,
    ):
        group.add_commands(commands)
    return parser
