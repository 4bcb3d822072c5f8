"""The load's step as Dagster state-backed definitions: its per-table assets come from the catalog snapshot.

As dagster-dbt does with its manifest, the table list is state kept beside the code (Dagster's
``LOCAL_FILESYSTEM`` defs state, under ``defs/.local_defs_state/``, git-ignored), written by
``dg utils refresh-defs-state`` or ``repro-pipeline catalog refresh`` from the standby, and read whenever the
definitions load. Loading never reads the standby (``refresh_if_dev`` is off: ``dg dev`` and
``dg check defs`` load with the standby down). With no snapshot, or one that cannot be read, the step has
``repro_database`` alone, as before.
"""

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
from dagster.components import DefsStateConfig
from dagster_shared.serdes.objects.models.defs_state_info import DefsStateManagementType

from repro_pipeline.defs.resources import SourceStandby
from repro_pipeline.defs.tenant_repro.load_step import closure_and_repro_database
from repro_pipeline.defs.tenant_repro.table_assets import CopiedTable, copied_tables
from repro_pipeline.engine import dsn
from repro_pipeline.engine.errors import ConfigError
from repro_pipeline.engine.source.catalog_snapshot import load_catalog_snapshot, read_catalog_snapshot
from repro_pipeline.engine.source.standby import read_standby_health, require_ready_standby

CATALOG_SNAPSHOT_KEY = "repro_pipeline_catalog_snapshot"
_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoadStepFromCatalogSnapshot(dg.StateBackedComponent):
    @property
    def defs_state_config(self) -> DefsStateConfig:
        return DefsStateConfig(
            key=CATALOG_SNAPSHOT_KEY,
            management_type=DefsStateManagementType.LOCAL_FILESYSTEM,
            refresh_if_dev=False,
        )

    def write_state_to_path(self, state_path: Path) -> None:
        """The standby's catalog now; refused, like a run, on a server that is no ready standby."""
        standby_dsn = os.environ.get("REPRO_STANDBY_DSN", "")
        if not standby_dsn:
            raise ConfigError(
                "REPRO_STANDBY_DSN is not set: the catalog snapshot is read from the standby",
                "set it, or run `repro-pipeline catalog refresh`, which uses the embedded stack when it is up",
            )
        standby = SourceStandby()  # it reads REPRO_STANDBY_DSN, checked above
        with standby.connect() as conn:
            require_ready_standby(read_standby_health(conn), standby.lag_limits, source=standby.description)
            snapshot = read_catalog_snapshot(conn, dsn.describe(standby_dsn))
        state_path.parent.mkdir(parents=True, exist_ok=True)
        state_path.write_text(snapshot.to_json(), encoding="utf-8")

    def build_defs_from_state(
        self, context: dg.ComponentLoadContext, state_path: Path | None
    ) -> dg.Definitions:
        return load_step_definitions(state_path)


def load_step_definitions(state_path: Path | None) -> dg.Definitions:
    """The load's step with an asset per table of the snapshot at ``state_path`` (None: no snapshot)."""
    return dg.Definitions(assets=[closure_and_repro_database(_snapshot_tables(state_path))])


def _snapshot_tables(state_path: Path | None) -> tuple[CopiedTable, ...]:
    if state_path is None:
        return ()
    try:
        snapshot = load_catalog_snapshot(state_path)
    except ConfigError as error:
        # The code location still loads (the sweep and the handoff must run): without per-table assets.
        _log.warning("%s: %s; until then repro_database stands alone", error.problem, error.remedy)
        return ()
    return copied_tables(snapshot.table_names)


@dg.component_instance
def load_step(context: dg.ComponentLoadContext) -> LoadStepFromCatalogSnapshot:
    return LoadStepFromCatalogSnapshot()
