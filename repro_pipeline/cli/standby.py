"""The CLI's reads of the source, as the assets read it: from a caught-up hot standby, never the primary
(unless ``--allow-primary`` says so, loudly)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from contextlib import contextmanager

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
    with open_source_snapshot(source) as snapshot:
        health = read_standby_health(snapshot.conn)
        if allow_primary and not health.in_recovery:
            print(
                f"warning: {snapshot.source} is a PRIMARY, not a standby; reading it because of --allow-primary",
                file=sys.stderr,
            )
        else:
            require_ready_standby(health, LagLimits(), source=snapshot.source)
        for warning in health.warnings():
            print(f"warning: {warning}", file=sys.stderr)
        yield snapshot
