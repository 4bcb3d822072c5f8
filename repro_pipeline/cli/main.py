"""The ``repro-pipeline`` command: its parser, assembled from the command groups, and its error handling."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from repro_pipeline.cli import (
    config_files,
    embedded,
    plan_and_load,
    repro_databases,
    runs,
    suggest_references,
    verify,
)
from repro_pipeline.engine.errors import ReproError

DESCRIPTION = "Build a clean, masked, FK-complete copy of one tenant from a Postgres warm standby."


def main(argv: Sequence[str] | None = None) -> int:
    arguments = _parser().parse_args(argv)
    try:
        return int(arguments.handler(arguments))
    except ReproError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (e.g. `| head`): nothing left to say
        sys.stderr.close()
        return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="repro-pipeline", description=DESCRIPTION)
    commands = parser.add_subparsers(required=True, metavar="COMMAND")
    for group in (embedded, runs, repro_databases, plan_and_load, verify, config_files, suggest_references):
        group.add_commands(commands)
    return parser
