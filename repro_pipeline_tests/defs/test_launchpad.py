"""What the UI shows a user who launches a run: who owns each asset and what it is, what a partition key
is, and run config that holds no secret. Read from the code location's own Definitions."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import dagster as dg
import pytest

from repro_pipeline.definitions import defs
from repro_pipeline.defs.tenant_repro.partitions import PARTITION_KEY_HELP, organizations

# Made up at each run, so nothing that looks like a real token or salt is kept in the repository.
SECRETS = {
    "SLACK_BOT_TOKEN": f"slack-{secrets.token_hex(12)}",
    "GITHUB_TOKEN": f"github-{secrets.token_hex(12)}",
    "ANONYMIZATION_SALT": secrets.token_hex(32),
    "REPRO_STANDBY_DSN": f"postgresql://reader:{secrets.token_hex(8)}@standby.internal:5432/app",
    "REPRO_TARGET_DSN": f"postgresql://admin:{secrets.token_hex(8)}@target.internal:5432/postgres",
}


@pytest.fixture
def deployment_secrets(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    for variable, value in SECRETS.items():
        monkeypatch.setenv(variable, value)
    yield SECRETS


def _asset_specs() -> list[dg.AssetSpec]:
    return list(defs().resolve_all_asset_specs())


def test_every_asset_has_kinds_owners_and_a_description() -> None:
    specs = _asset_specs()
    assert {spec.key.to_user_string() for spec in specs} >= {
        "standby_health",
        "tenant_closure",
        "repro_database",
        "repro_handoff",
    }
    lacking = [
        spec.key.to_user_string() for spec in specs if not (spec.kinds and spec.owners and spec.description)
    ]
    assert lacking == []


def test_every_organization_partitioned_asset_and_job_says_what_its_partition_key_is() -> None:
    partitioned = [spec for spec in _asset_specs() if spec.partitions_def == organizations]
    assert partitioned
    assert all(PARTITION_KEY_HELP in (spec.description or "") for spec in partitioned)
    job = defs().resolve_job_def("tenant_repro")
    assert PARTITION_KEY_HELP in (job.description or "")
    assert "numeric id" in PARTITION_KEY_HELP and "451" in PARTITION_KEY_HELP


def _defaults(config_type: Any, path: str) -> Iterator[tuple[str, Any]]:
    for name, field in getattr(config_type, "fields", {}).items():
        if field.default_provided:
            yield f"{path}.{name}", field.default_value
        yield from _defaults(field.config_type, f"{path}.{name}")


def test_no_run_config_of_any_job_holds_or_offers_a_secret(deployment_secrets: dict[str, str]) -> None:
    definitions = defs()
    jobs = definitions.get_repository_def().get_all_jobs()
    assert {"tenant_repro", "ttl_sweep"} <= {job.name for job in jobs}
    for job in jobs:
        defaults = dict(_defaults(job.run_config_schema.config_type, job.name))
        shown = repr(defaults)
        for secret in deployment_secrets.values():
            assert secret not in shown
        fields = [path.rsplit(".", 1)[-1] for path in defaults]
        assert not [name for name in fields if any(word in name for word in ("token", "password", "salt"))]
    standby = dict(
        _defaults(definitions.resolve_job_def("tenant_repro").run_config_schema.config_type, "run")
    )
    # The DSN fields are filled from the environment, and the launchpad shows the variable's name.
    assert standby["run.resources.standby.config"]["dsn"] == {"env": "REPRO_STANDBY_DSN"}
    assert standby["run.resources.target.config"]["admin_dsn"] == {"env": "REPRO_TARGET_DSN"}
