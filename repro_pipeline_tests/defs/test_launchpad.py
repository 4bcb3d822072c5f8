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


SECRET_WORDS = ("token", "password", "salt", "dsn")


def _fields(config_type: Any, path: str) -> Iterator[tuple[str, Any]]:
    """Every field of a config schema, nested ones too, by its dotted path."""
    for name, field in getattr(config_type, "fields", {}).items():
        yield f"{path}.{name}", field
        yield from _fields(field.config_type, f"{path}.{name}")


def _defaults(config_type: Any, path: str) -> Iterator[tuple[str, Any]]:
    for field_path, field in _fields(config_type, path):
        if field.default_provided:
            yield field_path, field.default_value


def test_no_run_config_of_any_job_holds_or_offers_a_secret(deployment_secrets: dict[str, str]) -> None:
    """Run config is shown in the launchpad, editable by anyone and stored with the run: no field may be
    named like a secret, and no default may hold one (the deployment's secrets are set, to be looked for)."""
    definitions = defs()
    jobs = definitions.get_repository_def().get_all_jobs()
    assert {"tenant_repro", "ttl_sweep"} <= {job.name for job in jobs}
    for job in jobs:
        config_type = job.run_config_schema.config_type
        fields = [path for path, _ in _fields(config_type, job.name)]
        assert f"{job.name}.resources" in fields
        named_like_a_secret = [
            path for path in fields if any(word in path.rsplit(".", 1)[-1].lower() for word in SECRET_WORDS)
        ]
        assert named_like_a_secret == []
        shown = repr(dict(_defaults(config_type, job.name)))
        assert [name for name, secret in deployment_secrets.items() if secret in shown] == []


def test_the_launchpad_offers_the_runs_settings_typed_described_and_optional() -> None:
    config_type = defs().resolve_job_def("tenant_repro").run_config_schema.config_type
    fields = dict(_fields(config_type, "run"))
    steps = {
        "standby_health": {"max_replay_lag_seconds": "Float", "max_replay_lag_bytes": "Int"},
        "tenant_closure_and_repro_database": {
            "ttl_hours": "Float",
            "repro_query": "String",
            "repro_query_timeout_seconds": "Float",
        },
        "repro_handoff": {"database": "String"},
    }
    for step, expected in steps.items():
        offered = {
            path.rsplit(".", 1)[-1]: field
            for path, field in fields.items()
            if path.startswith(f"run.ops.{step}.config.") and path.count(".") == 4
        }
        assert set(offered) == set(expected), step
        for name, field in offered.items():
            assert field.description, f"{step}.{name} has no description"
            assert not field.is_required, f"{step}.{name} must have a default"
            assert expected[name] in field.config_type.key, f"{step}.{name} is {field.config_type.key}"
