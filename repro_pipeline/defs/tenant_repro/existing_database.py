"""``on_existing_data`` on a partition run: what a rerun does when the organization already has a live repro
database. Unset, a new one beside it (each lives to its TTL); ``fail`` refuses before anything is created;
``drop_create`` drops the old one, with its login and kept DSN, only once the new one has passed every check
(a new one that fails leaves the old one as it was); ``truncate`` is refused: a repro database in use is never
emptied under its readers."""

from collections.abc import Sequence
from datetime import UTC, datetime

import dagster as dg
import psycopg
from psycopg.rows import TupleRow

from repro_pipeline.defs.repro_databases.observations import repro_database_observation
from repro_pipeline.defs.resources import ReproSecretSink, TargetServer
from repro_pipeline.defs.tenant_repro.repro_database import REPRO_DATABASE
from repro_pipeline.engine.errors import ConfigError
from repro_pipeline.engine.load.existing_data import OnExistingData
from repro_pipeline.engine.repro_databases import lifecycle
from repro_pipeline.engine.repro_databases.manifest import REQUIRED_CHECKS


def databases_to_replace(
    admin: psycopg.Connection[TupleRow], policy: OnExistingData | None, organization_id: int, now: datetime
) -> list[lifecycle.ReproDatabase]:
    """Checked before the new database is created: ``fail`` and ``truncate`` refuse; the live databases that
    ``drop_create`` replaces once the new one has passed its checks (none otherwise)."""
    if policy == "truncate":
        raise ConfigError(
            "on_existing_data truncate is refused for a partition run: a repro database in use is never "
            "emptied under its readers",
            "set on_existing_data to drop_create (replaces the live repro database once the new one has passed "
            "its checks) or fail, or leave it unset (a new database beside the live one); truncate is for "
            "repro-pipeline load --target",
        )
    if policy == "fail":
        lifecycle.require_no_live_database(admin, organization_id, now)
    if policy == "drop_create":
        return lifecycle.live_repro_databases(admin, organization_id, now)
    return []


def drop_replaced_when_checked(
    context: dg.AssetExecutionContext,
    target: TargetServer,
    secret_sink: ReproSecretSink,
    new: lifecycle.ReproDatabase,
    replaced: list[lifecycle.ReproDatabase],
    results: Sequence[dg.AssetCheckResult],
) -> None:
    """Drop ``replaced`` if ``new`` passed every required check in this run; else say that they are kept."""
    if not replaced:
        return
    verdicts = {result.check_name: result.passed for result in results if result.asset_key == REPRO_DATABASE}
    unpassed = [check for check in REQUIRED_CHECKS if not verdicts.get(check, False)]
    kept = ", ".join(database.name for database in replaced)
    if unpassed:
        context.log.warning(
            f"on_existing_data drop_create: {kept} kept, as {new.name} has not passed "
            f"{', '.join(unpassed)} in this run"
        )
        return
    now = datetime.now(UTC)
    with target.admin() as admin:
        dropped = lifecycle.drop_replaced(admin, replaced, now)
    sink = secret_sink.sink(context.instance)
    for database in dropped:
        sink.remove(database.name)  # its login went with it: the DSN kept for it is of no use
        context.log.info(f"on_existing_data drop_create: dropped {database.name}, replaced by {new.name}")
        context.log_event(
            repro_database_observation(
                database, "dropped", f"replaced by {new.name} (on_existing_data drop_create)"
            )
        )
