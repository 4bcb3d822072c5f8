"""The leak check's originals read beside the load, in a session of its own on the load's snapshot: the same
originals as read in the snapshot's own session, and a session that ends its transaction once read, so a
long load is never cut off by the standby's idle-in-transaction limit."""

from __future__ import annotations

import time
from pathlib import Path

from repro_pipeline.embedded.stack import Stack
from repro_pipeline.embedded.synthetic import SourceSummary
from repro_pipeline.engine.config import load_config
from repro_pipeline.engine.load.plan import plan_subset
from repro_pipeline.engine.secrets import Secret
from repro_pipeline.engine.source.snapshot import SessionLimits, open_source_snapshot
from repro_pipeline.engine.verify.checks import originals_read_meanwhile, read_originals

CONFIG = Path(__file__).resolve().parents[3] / "config"


def test_originals_read_meanwhile_are_the_snapshots_and_outlive_a_long_load(
    stack: Stack, source: SourceSummary, salt: str
) -> None:
    config = load_config(CONFIG / "mask-rules.yaml", CONFIG / "commercial-extensions.yaml")
    limits = SessionLimits(idle_in_transaction_seconds=1)
    with open_source_snapshot(stack.standby_dsn, limits) as snapshot:
        plan = plan_subset(snapshot, config, Secret(salt), 451)
        with originals_read_meanwhile(snapshot, plan, config) as reading:
            meanwhile = reading.result()
            # The load goes on: the snapshot's own session works while the other's sits past its limit.
            deadline = time.monotonic() + 2.5
            while time.monotonic() < deadline:
                snapshot.conn.execute("SELECT 1")
                time.sleep(0.2)
        alone = read_originals(snapshot.conn, plan, config)
    assert meanwhile.searched == alone.searched > 1000
    assert meanwhile.not_searched == alone.not_searched
    assert meanwhile.own_columns == alone.own_columns
