"""What one run of the tenant job may set (in the launchpad, a ticket or the CLI): its repro database's TTL, its
standby lag limits and its bug query. Typed config with descriptions and defaults, each value checked before
any database is touched, refused with one message naming the key. Secrets are never run config: the launchpad
shows it, lets anyone edit it and stores it with the run."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import dagster as dg
from pydantic import Field

from repro_pipeline.defs.resources import MAX_TTL_HOURS
from repro_pipeline.engine.errors import ConfigError
from repro_pipeline.engine.source.standby import LagLimits
from repro_pipeline.engine.verify.repro_query import (
    DEFAULT_TIMEOUT_SECONDS,
    ReproQuery,
    checked_timeout,
    parse_repro_query,
)

# The first step, which checks the standby: its run config holds the run's lag limits, which the load's step
# applies again inside its snapshot.
STANDBY_HEALTH_STEP = "standby_health"


class StandbyHealthConfig(dg.Config):
    """This run's limits on the standby's replay lag. A run may ask for a fresher copy than the deployment's
    limits allow (a bug seen minutes ago), never a staler one: the deployment's limits are its operators'
    decision, and the launchpad is open to every user of the UI."""

    max_replay_lag_seconds: float | None = Field(
        default=None,
        description="Refuse to read when the standby's replay lags more than this, in seconds; at most the "
        "deployment's limit (REPRO_MAX_REPLAY_LAG_SECONDS, else 300). Unset: the deployment's limit",
    )
    max_replay_lag_bytes: int | None = Field(
        default=None,
        description="Refuse to read when more WAL than this is received and not replayed, in bytes; at most "
        "the deployment's limit (REPRO_MAX_REPLAY_LAG_BYTES, else 64 MiB). Unset: the deployment's limit",
    )

    def lag_limits(self, deployment: LagLimits) -> LagLimits:
        """The limits of this run: the deployment's, or tighter ones; looser ones are refused."""
        seconds = _within(
            self.max_replay_lag_seconds,
            deployment.max_replay_lag_seconds,
            "max_replay_lag_seconds",
            "REPRO_MAX_REPLAY_LAG_SECONDS",
        )
        lag_bytes = _within(
            self.max_replay_lag_bytes,
            deployment.max_replay_lag_bytes,
            "max_replay_lag_bytes",
            "REPRO_MAX_REPLAY_LAG_BYTES",
        )
        return LagLimits(seconds, int(lag_bytes))


def _within(value: float | None, deployment: float, key: str, variable: str) -> float:
    if value is None:
        return deployment
    where = f"{key} in the run config of {STANDBY_HEALTH_STEP}"
    if not (value > 0 and math.isfinite(value)):
        raise ConfigError(
            f"{where} is {_shown(value)}: it must be a positive number",
            f"give e.g. {_shown(deployment)}, or leave it unset",
        )
    if value > deployment:
        raise ConfigError(
            f"{where} is {_shown(value)}, looser than the deployment's limit of {_shown(deployment)}: a run "
            "may only ask for a fresher standby",
            f"give at most {_shown(deployment)} or leave it unset; the deployment's limit is {variable} (or "
            "the standby resource's config)",
        )
    return value


def _shown(number: float) -> str:
    """A whole number as written (a byte count, 67108864), any other as short as it reads (0.5, nan)."""
    return str(int(number)) if math.isfinite(number) and number == int(number) else f"{number:g}"


def run_lag_limits(run_config: Mapping[str, Any], deployment: LagLimits) -> LagLimits:
    """The lag limits of a run, from its standby_health step's config (absent: the deployment's)."""
    ops = run_config.get("ops") or {}
    step = ops.get(STANDBY_HEALTH_STEP) or {}
    return StandbyHealthConfig(**(step.get("config") or {})).lag_limits(deployment)


class ReproDatabaseConfig(dg.Config):
    """This run's repro database: how long it lives, and the bug query that runs on it."""

    ttl_hours: float | None = Field(
        default=None,
        description=f"How long this run's repro database lives before the sweep drops it, in hours, at most "
        f"{MAX_TTL_HOURS} (90 days). Unset: the deployment's TTL (REPRO_TTL_HOURS, else 48)",
    )
    repro_query: str = Field(
        default="",
        description="Optional: read-only SQL that shows the bug (one SELECT, WITH ... SELECT allowed; the "
        "organization as :organization_id). It runs on the repro database after the checks, in a read-only "
        "transaction, and its row count is reported (rows: the bug reproduces), never its rows",
    )
    repro_query_timeout_seconds: float = Field(
        default=DEFAULT_TIMEOUT_SECONDS,
        description="The repro query's statement timeout, in seconds",
    )

    def ttl(self, deployment: timedelta) -> timedelta:
        """The TTL of this run's database: its own, within the longest a repro database may live, or the
        deployment's."""
        if self.ttl_hours is None:
            return deployment
        if not (0 < self.ttl_hours <= MAX_TTL_HOURS):  # nan fails both comparisons
            raise ConfigError(
                f"ttl_hours in the run config is {self.ttl_hours:g}: it must be more than 0 and at most "
                f"{MAX_TTL_HOURS} hours (90 days)",
                "give e.g. 48, or leave it unset for the deployment's TTL; to keep a database longer, extend it "
                "later (`repro-pipeline extend DATABASE --hours N`)",
            )
        return timedelta(hours=self.ttl_hours)

    def query(self) -> ReproQuery | None:
        """The configured query, checked before any database is touched; None when there is none."""
        checked_timeout(self.repro_query_timeout_seconds, "repro_query_timeout_seconds")
        if not self.repro_query.strip():
            return None
        return parse_repro_query(self.repro_query, where="the run config's repro_query")
