"""The bug query given on the command line (``--repro-query`` or ``--repro-query-file``), checked before any
database is touched."""

from __future__ import annotations

import argparse
from pathlib import Path

from repro_pipeline.engine.errors import ConfigError
from repro_pipeline.engine.verify.repro_query import (
    DEFAULT_TIMEOUT_SECONDS,
    ReproQuery,
    checked_timeout,
    parse_repro_query,
)


def add_repro_query_arguments(parser: argparse.ArgumentParser) -> None:
    given = parser.add_mutually_exclusive_group()
    given.add_argument(
        "--repro-query",
        metavar="SQL",
        help="read-only SQL that shows the bug (one SELECT, the organization as :organization_id); "
        "its row count is reported, never its rows",
    )
    given.add_argument("--repro-query-file", metavar="PATH", type=Path, help="the same, read from a file")


def add_repro_query_timeout(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--repro-query-timeout",
        metavar="SECONDS",
        type=float,
        default=DEFAULT_TIMEOUT_SECONDS,
        help=f"the bug query's statement timeout (default {DEFAULT_TIMEOUT_SECONDS:g} s)",
    )


def repro_query_text(arguments: argparse.Namespace) -> str:
    """The query's text as given, empty when none was; a file that cannot be read is a ``ConfigError``."""
    path: Path | None = arguments.repro_query_file
    if path is None:
        return str(arguments.repro_query or "")
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else type(error).__name__
        raise ConfigError(
            f"--repro-query-file {path} cannot be read: {reason}", "give a readable UTF-8 file of one SELECT"
        ) from None


def repro_query_of(arguments: argparse.Namespace) -> ReproQuery | None:
    """The checked query, or None when none was given."""
    text = repro_query_text(arguments)
    if not text.strip() and arguments.repro_query_file is None and arguments.repro_query is None:
        return None
    where = (
        f"--repro-query-file {arguments.repro_query_file}" if arguments.repro_query_file else "--repro-query"
    )
    return parse_repro_query(text, where=where)


def repro_query_timeout_of(arguments: argparse.Namespace) -> float:
    return checked_timeout(float(arguments.repro_query_timeout), "--repro-query-timeout")
