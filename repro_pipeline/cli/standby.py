"""The CLI's reads of the source, as the assets read it: from a caught-up hot standby, never the primary
(unless ``--allow-primary`` says so, loudly)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg.rows import TupleRow

from repro_pipeline.engine import dsn
from repro_pipeline.engine.source.snapshot import SourceSnapshot, open_source_snapshot
from repro_pipeline.engine.source.standby import LagLimits, read_standby_health, require_ready_standby


def add_allow_primary(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--allow-primary",
        action="store_true",
        help="read the source even when it is a primary (it then carries the whole read's load)",
    )


@contextmanager
def standby_snapshot(source: str, *, allow_primary: bool) -> Iterator[SourceSnapshot]:
    """One consistent read of the source, for the plan, the load and the checks."""
    with open_source_snapshot(source) as snapshot:
        _require_standby(snapshot.conn, allow_primary=allow_primary)
        yield snapshot


def _require_standby(conn: psycopg.Connection[TupleRow], *, allow_primary: bool) -> None:
    source = dsn.describe(conn.info.dsn)
    health = read_standby_health(conn)
    if allow_primary and not health.in_recovery:
        print(
            f"warning: {source} is a PRIMARY, not a standby; reading it because of --allow-primary",
            file=sys.stderr,
        )
    else:
        require_ready_standby(health, LagLimits(), source=source)
    for warning in health.warnings():
        print(f"warning: {warning}", file=sys.stderr)


def add_source_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--source",
        help="libpq URL of the source (a hot standby, read only); default: $REPRO_STANDBY_DSN, else the "
        "embedded stack's standby when it is up",
    )
