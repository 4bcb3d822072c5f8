"""``--json``: one JSON document on stdout for scripts, whatever happens; messages go to stderr, and the exit
code is the same as without it. An error is a document too: ``{"error": {...}}``, or the command's own
document with an ``error`` key when it has something to report besides (verify's verdicts, preview's diff)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from repro_pipeline.engine.errors import ReproError
from repro_pipeline.engine.exit_codes import ExitCode

JSON_OPTION = "--json"


def add_json_argument(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument(
        JSON_OPTION,
        action="store_true",
        help=f"print {what} as one JSON document on stdout, for scripts (errors too; messages go to stderr)",
    )


def json_requested(argv: Sequence[str]) -> bool:
    """Whether the command line asks for JSON, read before parsing so that a usage error can be JSON too."""
    options = list(argv)[: list(argv).index("--")] if "--" in argv else list(argv)
    return JSON_OPTION in options


def print_json(document: Mapping[str, Any] | Sequence[Any]) -> None:
    print(json.dumps(document, indent=2))


def error_fields(problem: str, remedy: str, code: ExitCode) -> dict[str, Any]:
    return {"problem": problem, "remedy": remedy, "exit_code": int(code), "exit_name": code.name}


def repro_error_document(error: ReproError) -> dict[str, Any]:
    return {"error": error_fields(error.problem, error.remedy, error.exit_code)}


def report_with_error(document: dict[str, Any], error: ReproError) -> int:
    """Print ``document`` with the error in it, the error's message on stderr; the error's exit code."""
    print_json({**document, **repro_error_document(error)})
    print(f"error: {error}", file=sys.stderr)
    return int(error.exit_code)


class ArgumentParser(argparse.ArgumentParser):
    """argparse's parser; ``JsonErrorsArgumentParser`` when ``--json`` was given."""

    json_errors = False

    def error(self, message: str) -> Any:
        if self.json_errors:
            remedy = f"see `{self.prog} --help`"
            print_json({"error": error_fields(f"{self.prog}: {message}", remedy, ExitCode.USAGE)})
        super().error(message)


class JsonErrorsArgumentParser(ArgumentParser):
    """A parser whose usage errors are also a JSON document on stdout."""

    json_errors = True


def parser_class(*, json_errors: bool) -> type[ArgumentParser]:
    return JsonErrorsArgumentParser if json_errors else ArgumentParser


def report_failure(as_json: bool, problem: str, details: Sequence[str], remedy: str = "") -> int:
    """A failed run or step that is no ``ReproError``: its problem and details on stderr (and as the JSON
    document); exit 1 (RUNTIME)."""
    if as_json:
        print_json({"error": {**error_fields(problem, remedy, ExitCode.RUNTIME), "details": list(details)}})
    print(f"error: {problem}:", *details, sep="\n  ", file=sys.stderr)
    if remedy:
        print(f"  what to do: {remedy}", file=sys.stderr)
    return int(ExitCode.RUNTIME)
