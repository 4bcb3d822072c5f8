"""``python -m repro_pipeline.embedded.synthetic --dsn DSN [--scale X] [--seed N] [--organizations N] [--force]``."""

from __future__ import annotations

import argparse
import sys
import time
from typing import NoReturn

import psycopg
from psycopg.conninfo import conninfo_to_dict

from repro_pipeline.embedded.synthetic.generate import DEMO_ORGANIZATION_ID, TABLES, SourceSpec, build_source

_PROG = "python -m repro_pipeline.embedded.synthetic"


class _UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise _UsageError(message)


def _parser() -> _Parser:
    defaults = SourceSpec()
    parser = _Parser(
        prog=_PROG,
        description="Build (or reuse) the deterministic synthetic billing source in a PostgreSQL database.",
    )
    parser.add_argument("--dsn", required=True, help="libpq connection string or URI of the source database")
    parser.add_argument(
        "--scale", type=float, default=defaults.scale, help="size multiplier (1.0: ~500k rows)"
    )
    parser.add_argument("--seed", type=int, default=defaults.seed, help="seed of the pseudo-random content")
    parser.add_argument(
        "--organizations", type=int, default=defaults.organizations, help="number of organizations"
    )
    parser.add_argument("--force", action="store_true", help="rebuild even if the same spec is already built")
    return parser


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


def main(argv: list[str] | None = None) -> int:
    try:
        args = _parser().parse_args(argv)
        spec = SourceSpec(seed=args.seed, organizations=args.organizations, scale=args.scale)
        conninfo_to_dict(args.dsn)  # a malformed DSN is a usage error too
    except (_UsageError, TypeError, ValueError, psycopg.ProgrammingError) as error:
        print(f"{_PROG}: error: {_one_line(error)}", file=sys.stderr)
        return 2
    except SystemExit as exit_:  # --help
        return exit_.code if isinstance(exit_.code, int) else 0

    started = time.monotonic()
    try:
        summary = build_source(args.dsn, spec, force=args.force)
    except psycopg.Error as error:
        print(f"{_PROG}: error: {_one_line(error)}", file=sys.stderr)
        return 1
    elapsed = time.monotonic() - started

    action = "generated" if summary.generated else "already built with this spec, reused"
    print(f"source {action}: seed={spec.seed} organizations={spec.organizations} scale={spec.scale}")
    width = max(len(t) for t in TABLES)
    for table in TABLES:
        print(f"  {table:<{width}}  {summary.row_counts[table]:>10,}")
    print(f"  {'total':<{width}}  {summary.total_rows:>10,}")
    print(
        f"organization {DEMO_ORGANIZATION_ID}: {summary.demo_invoice_count} invoices, "
        f"{summary.demo_audit_event_count} audit events "
        f"({summary.demo_recent_audit_event_count} in the last 90 days), "
        f"planted mismatched invoices {list(summary.planted_invoice_ids)}"
    )
    print(f"elapsed: {elapsed:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
