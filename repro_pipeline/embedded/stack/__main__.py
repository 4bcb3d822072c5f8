"""``python -m repro_pipeline.embedded.stack up|down|status|destroy [--dir PATH]``.

``up`` and ``status`` print shell-sourceable DSN lines; errors, and a ``status`` with any server stopped, are one
line on stderr and exit status 1.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from repro_pipeline.embedded.stack.errors import StackError
from repro_pipeline.embedded.stack.layout import resolve_stack_root
from repro_pipeline.embedded.stack.lifecycle import destroy, down, server_statuses, status, up
from repro_pipeline.embedded.stack.model import Stack

COMMANDS = ("up", "down", "status", "destroy")
UP_COMMAND = "python -m repro_pipeline.embedded.stack up"


def main(argv: list[str] | None = None, up_command: str = UP_COMMAND) -> int:
    """Run one command; ``up_command`` is the command named in the hints, as the caller's users type it."""
    arguments = _parser().parse_args(argv)
    root: Path | None = arguments.dir
    try:
        return _run(arguments.command, root, up_command)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except StackError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except Exception as error:  # the CLI promises one line, never a traceback
        print(f"error: {type(error).__name__}: {error}", file=sys.stderr)
        return 1


def _run(command: str, root: Path | None, up_command: str) -> int:
    if command == "up":
        _print_environment(up(root))
    elif command == "down":
        down(root)
    elif command == "destroy":
        destroy(root)
    else:
        stack = status(root)
        if stack is None:
            print(f"error: no stack in {resolve_stack_root(root)}; run `{up_command}`", file=sys.stderr)
            return 1
        _print_environment(stack)
        stopped = _print_server_states(stack)
        if stopped:
            print(f"error: stopped: {', '.join(stopped)}; run `{up_command}`", file=sys.stderr)
            return 1
    return 0


def _print_environment(stack: Stack) -> None:
    print(f"# {stack.binaries.describe()}; stack in {stack.root}")
    print(f"REPRO_SOURCE_PRIMARY_DSN={shlex.quote(stack.primary_dsn)}")
    print(f"REPRO_STANDBY_DSN={shlex.quote(stack.standby_dsn)}")
    print(f"REPRO_TARGET_DSN={shlex.quote(stack.target_admin_dsn)}")


def _print_server_states(stack: Stack) -> list[str]:
    """Print each server's state; return the names of those stopped."""
    stopped = []
    for name, state in server_statuses(stack).items():
        server = stack.server(name)
        running = f"running (pid {state.pid})" if state.running else "stopped"
        print(f"# {name}: {running}, port {server.port}, data {server.data_dir}, log {server.log_file}")
        if not state.running:
            stopped.append(name)
    return stopped


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m repro_pipeline.embedded.stack",
        description="Run the local primary / hot standby / target stack.",
    )
    parser.add_argument("command", choices=COMMANDS)
    parser.add_argument(
        "--dir",
        type=Path,
        default=None,
        help="stack folder (default: $REPRO_STACK_DIR, else <repo root>/.stack, or a folder under the temp "
        "dir when the account the servers run as cannot reach the repo)",
    )
    return parser


if __name__ == "__main__":
    sys.exit(main())
