"""The Dagster code location. Connection strings and secrets come from environment variables at launch."""

import os

import dagster as dg

from repro_pipeline.defs.assets import repro_handoff, standby_health, tenant_closure_and_repro_database
from repro_pipeline.defs.checks import no_original_pii, row_counts_match_closure, zero_fk_orphans
from repro_pipeline.defs.jobs import tenant_repro_job, ttl_sweep, ttl_sweep_schedule
from repro_pipeline.defs.resources import MaskingConfig, SlackHandoff, SourceStandby, TargetServer
from repro_pipeline.engine.errors import ConfigError


def _slack() -> SlackHandoff:
    # Only the variable's presence is read here; its value is resolved at launch and never shown.
    if "SLACK_BOT_TOKEN" not in os.environ:
        return SlackHandoff()
    return SlackHandoff(
        token=dg.EnvVar("SLACK_BOT_TOKEN"),
        channel=os.environ.get("REPRO_SLACK_CHANNEL", "#support-repro"),
        api_base_url=os.environ.get("REPRO_SLACK_API_URL", "https://slack.com/api/"),
        dsn_reference=os.environ.get("REPRO_DSN_REFERENCE", "1Password → support-repro"),
    )


def _positive(variable: str, default: float) -> float:
    text = os.environ.get(variable)
    if text is None:
        return default
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise ConfigError(
            f"{variable}={text!r} is not a positive number", f"set {variable} to e.g. {default:g}"
        )
    return value


defs = dg.Definitions(
    assets=[standby_health, tenant_closure_and_repro_database, repro_handoff],
    asset_checks=[zero_fk_orphans, row_counts_match_closure, no_original_pii],
    jobs=[tenant_repro_job, ttl_sweep],
    schedules=[ttl_sweep_schedule],
    resources={
        "standby": SourceStandby(
            dsn=dg.EnvVar("REPRO_STANDBY_DSN"),
            max_replay_lag_seconds=_positive("REPRO_MAX_REPLAY_LAG_SECONDS", 300),
            max_replay_lag_bytes=int(_positive("REPRO_MAX_REPLAY_LAG_BYTES", 64 * 1024 * 1024)),
        ),
        "target": TargetServer(
            admin_dsn=dg.EnvVar("REPRO_TARGET_DSN"), ttl_hours=_positive("REPRO_TTL_HOURS", 48)
        ),
        "masking": MaskingConfig(),
        "slack": _slack(),
    },
)


def tenant_repro_job_def() -> dg.JobDefinition:
    """The resolved tenant job, for ``dagster.reconstructable`` (the CLI and tests launch it this way)."""
    return defs.resolve_job_def(tenant_repro_job.name)


def ttl_sweep_job_def() -> dg.JobDefinition:
    return defs.resolve_job_def(ttl_sweep.name)
