"""One tenant end to end through the real Dagster instance and executor, on the embedded stack."""

from __future__ import annotations

import json
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from repro_pipeline.cli.launch import materialize_tenant, run_ttl_sweep
from repro_pipeline.cli.main import main
from repro_pipeline.cli.run_report import GUIDE_BUG_QUERY, print_run_report
from repro_pipeline.defs.tenant_repro.checks import CHECK_SPECS
from repro_pipeline.defs.tenant_repro.partitions import organizations
from repro_pipeline.defs.tenant_repro.repro_query import REPRO_QUERY_SPEC
from repro_pipeline.embedded.stack import Stack
from repro_pipeline.embedded.synthetic import TABLES, SourceSummary
from repro_pipeline.engine.dsn import with_database
from repro_pipeline.engine.repro_databases import lifecycle
from repro_pipeline.engine.repro_databases.manifest import REQUIRED_CHECKS
from repro_pipeline_tests.conftest import PROJECT_ROOT
from repro_pipeline_tests.defs.run_results import materialized_database, step_failure_messages
from repro_pipeline_tests.defs.tenant_repro.conftest import SLACK_TOKEN
from repro_pipeline_tests.slack_api import SlackApi, SlackMessage

ORGANIZATION = 451
CHECK_KEYS = [spec.key for spec in CHECK_SPECS]

ORPHAN_QUERY = """
SELECT COUNT(*) AS orphan_line_items
FROM invoice_line_items li
LEFT JOIN invoices i ON i.id = li.invoice_id
WHERE i.id IS NULL
"""
BUG_QUERY = """
SELECT i.id, i.total_cents, SUM(li.quantity * li.unit_cents) AS computed_cents
FROM invoices i
JOIN subscriptions s ON s.id = i.subscription_id
JOIN invoice_line_items li ON li.invoice_id = i.id
WHERE s.organization_id = %s
GROUP BY i.id, i.total_cents
HAVING i.total_cents <> SUM(li.quantity * li.unit_cents)
"""
ALIGNMENT_QUERY = """
SELECT u.email, ae.payload #>> '{actor,email}' AS payload_actor_email
FROM audit_events ae
JOIN users u ON u.email = ae.payload #>> '{actor,email}'
WHERE ae.organization_id = %s
LIMIT 10
"""


@dataclass(frozen=True)
class TenantRun:
    result: dg.ExecuteInProcessResult
    database: str
    target_dsn: str
    slack_messages: list[SlackMessage]
    instance: dg.DagsterInstance


@pytest.fixture(scope="module")
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test() as test_instance:
        yield test_instance


def _run(instance: dg.DagsterInstance, stack: Stack, slack_api: SlackApi, repro_query: str = "") -> TenantRun:
    before = len(slack_api.messages)
    result = materialize_tenant(ORGANIZATION, instance, repro_query=repro_query)
    database = materialized_database(result)
    return TenantRun(
        result,
        database,
        with_database(stack.target_admin_dsn, database),
        slack_api.messages[before:],
        instance,
    )


@pytest.fixture(scope="module")
def first_run(
    slack_environment: None, instance: dg.DagsterInstance, stack: Stack, slack_api: SlackApi
) -> TenantRun:
    return _run(instance, stack, slack_api)


@pytest.fixture(scope="module")
def second_run(first_run: TenantRun, stack: Stack, slack_api: SlackApi) -> TenantRun:
    """As the demo runs: with the guide's invoice-total query as the run's bug query."""
    return _run(first_run.instance, stack, slack_api, repro_query=GUIDE_BUG_QUERY)


def _query(dsn: str, query: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(query, params).fetchall()


def test_partition_materializes_end_to_end_with_every_check_passing(first_run: TenantRun) -> None:
    assert first_run.result.success
    checks = {check.check_name: check.passed for check in first_run.result.get_asset_check_evaluations()}
    assert checks == {
        "zero_fk_orphans": True,
        "row_counts_match_closure": True,
        "no_original_pii": True,
        "schema_matches_source": True,
    }
    evaluations = {check.check_name: check for check in first_run.result.get_asset_check_evaluations()}
    assert evaluations["zero_fk_orphans"].metadata["foreign_keys_checked"].value == 6
    assert evaluations["no_original_pii"].metadata["original_values_checked"].value > 1000
    schema = evaluations["schema_matches_source"].metadata
    assert schema["lines_compared"].value > 100 and schema["differing_lines"].value == 0
    materialized = {
        event.step_materialization_data.materialization.asset_key.to_user_string()
        for event in first_run.result.get_asset_materialization_events()
    }
    assert materialized == {"standby_health", "tenant_closure", "repro_database", "repro_handoff"}
    health = next(
        event.step_materialization_data.materialization.metadata
        for event in first_run.result.get_asset_materialization_events()
        if event.step_materialization_data.materialization.asset_key == dg.AssetKey("standby_health")
    )
    assert health["source_role"].value == "postgres" and health["source_role_is_superuser"].value is True
    logged = "\n".join(
        str(record.user_message) for record in first_run.instance.all_logs(first_run.result.run_id)
    )
    assert "the source role postgres is a superuser" in logged
    assert "public.invoices: 3000/3000 rows in " in logged  # the table's last progress line, at its end


def test_every_check_is_partitioned_by_organization() -> None:
    from repro_pipeline.definitions import defs

    graph = defs().resolve_asset_graph()
    assert graph.asset_check_keys == {*CHECK_KEYS, REPRO_QUERY_SPEC.key}
    for key in [*CHECK_KEYS, REPRO_QUERY_SPEC.key]:
        assert graph.get(key).partitions_def == organizations, key


def test_each_check_result_is_recorded_for_its_organization(first_run: TenantRun) -> None:
    assert {check.partition for check in first_run.result.get_asset_check_evaluations()} == {
        str(ORGANIZATION)
    }
    latest = first_run.instance.event_log_storage.get_latest_asset_check_execution_by_key(CHECK_KEYS)
    assert {record.partition for record in latest.values()} == {str(ORGANIZATION)}
    assert {record.status.value for record in latest.values()} == {"SUCCEEDED"}


def test_the_list_shows_the_database_the_run_built(
    first_run: TenantRun, tmp_path: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    assert main(["list", "--json"]) == 0
    listed = {row["database"]: row for row in json.loads(capsys.readouterr().out)}
    built = listed[first_run.database]
    assert built["organization_id"] == ORGANIZATION
    assert built["status"] == "ready" and built["expired"] is False
    assert datetime.fromisoformat(built["expires_at"]) > datetime.now(UTC) + timedelta(hours=47)


def test_slack_gets_one_message_without_dsn_or_password(
    first_run: TenantRun, stack: Stack, salt: str
) -> None:
    assert len(first_run.slack_messages) == 1
    message = first_run.slack_messages[0]
    assert message.channel == "#support-repro"
    assert str(ORGANIZATION) in message.text and first_run.database in message.text
    assert f"DSN in {_handoff_metadata(first_run)['dsn_reference']}." in message.text
    assert "expires" in message.text
    # Block Kit: the same facts as fields, and the checks that passed.
    headline, facts, checks = message.blocks
    assert headline["type"] == "section" and first_run.database in str(headline["text"])
    fields = {
        str(field["text"]).split("\n", 1)[0].strip("*"): str(field["text"]).split("\n", 1)[1]
        for field in facts["fields"]
    }
    assert fields["Organization"] == str(ORGANIZATION)
    assert fields["Database"] == f"`{first_run.database}`"
    assert fields["Host"] == f"`127.0.0.1:{stack.target.port}`"  # where the server is, not who logs in
    assert fields["DSN kept in"] == f"`{_handoff_metadata(first_run)['dsn_reference']}`"
    assert fields["Rows"] == f"{_loaded_rows(first_run):,}"
    assert fields["Ticket"] == "none"  # launched without a ticket
    assert checks["type"] == "context"
    assert all(name in str(checks["elements"]) for name in REQUIRED_CHECKS)
    for secret in (stack.password, salt, "postgresql://", SLACK_TOKEN):
        assert secret not in message.raw_body


def _loaded_rows(run: TenantRun) -> int:
    (rows,) = [
        int(str(event.step_materialization_data.materialization.metadata["dagster/row_count"].value))
        for event in run.result.get_asset_materialization_events()
        if event.step_materialization_data.materialization.asset_key == dg.AssetKey("repro_database")
    ]
    return rows


def _handoff_metadata(run: TenantRun) -> dict[str, Any]:
    (metadata,) = [
        event.step_materialization_data.materialization.metadata
        for event in run.result.get_asset_materialization_events()
        if event.step_materialization_data.materialization.asset_key == dg.AssetKey("repro_handoff")
    ]
    return {key: value.value for key, value in metadata.items()}


def _login_dsn(run: TenantRun) -> str:
    return Path(_handoff_metadata(run)["dsn_reference"]).read_text().strip()


def test_the_handoff_keeps_a_read_only_login_of_the_database_in_a_file_only_its_owner_reads(
    first_run: TenantRun, capsys: pytest.CaptureFixture[str]
) -> None:
    metadata = _handoff_metadata(first_run)
    secret_file = Path(metadata["dsn_reference"])
    assert (
        secret_file == Path(first_run.instance.root_directory) / "repro-secrets" / f"{first_run.database}.dsn"
    )
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(secret_file.parent.stat().st_mode) == 0o700
    login = conninfo_to_dict(_login_dsn(first_run))
    assert login["user"] == metadata["login"] == f"{first_run.database}_reader"
    assert login["dbname"] == first_run.database
    with psycopg.connect(_login_dsn(first_run), autocommit=True) as conn:
        assert conn.execute("SELECT array_agg(id) FROM organizations").fetchone() == ([ORGANIZATION],)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("DELETE FROM invoice_line_items")
    assert print_run_report(first_run.result, ORGANIZATION) == 0
    assert f'psql "$(cat {secret_file})"' in capsys.readouterr().out


def test_guide_checks_pass_on_the_repro_database(first_run: TenantRun, source: SourceSummary) -> None:
    assert _query(first_run.target_dsn, ORPHAN_QUERY) == [(0,)]
    mismatched = sorted(row[0] for row in _query(first_run.target_dsn, BUG_QUERY, ORGANIZATION))
    assert mismatched == list(source.planted_invoice_ids)
    aligned = _query(first_run.target_dsn, ALIGNMENT_QUERY, ORGANIZATION)
    assert aligned and all(email == payload_email for email, payload_email in aligned)


def test_target_row_counts_equal_the_closure(first_run: TenantRun) -> None:
    closure = next(
        event.step_materialization_data.materialization.metadata["row_counts"].value
        for event in first_run.result.get_asset_materialization_events()
        if event.step_materialization_data.materialization.asset_key == dg.AssetKey("tenant_closure")
    )
    for table in TABLES:
        assert _query(first_run.target_dsn, f"SELECT count(*) FROM {table}") == [
            (closure[f"public.{table}"],)
        ]


def test_no_other_organization_and_no_old_audit_events(
    first_run: TenantRun, stack: Stack, source: SourceSummary
) -> None:
    dsn = first_run.target_dsn
    assert _query(dsn, "SELECT array_agg(id) FROM organizations") == [([ORGANIZATION],)]
    for table in ("users", "subscriptions", "audit_events"):
        assert _query(dsn, f"SELECT DISTINCT organization_id FROM {table}") == [(ORGANIZATION,)]
    assert _query(
        dsn,
        "SELECT count(*) FROM invoices i JOIN subscriptions s ON s.id = i.subscription_id "
        "WHERE s.organization_id <> %s",
        ORGANIZATION,
    ) == [(0,)]
    assert _query(
        dsn, "SELECT count(*) FROM audit_events WHERE occurred_at < now() - interval '90 days'"
    ) == [(0,)]
    recent = _query(
        stack.standby_dsn,
        "SELECT count(*) FROM audit_events WHERE organization_id = %s AND occurred_at >= now() - interval '90 days'",
        ORGANIZATION,
    )[0][0]
    assert _query(dsn, "SELECT count(*) FROM audit_events")[0][0] in range(recent - 5, recent + 1)
    assert source.demo_audit_event_count > recent


def _target_atoms(dsn: str) -> set[str]:
    """Every text value and JSON string leaf in the target, plus every email-like substring of them."""
    atoms: set[str] = set()

    def leaves(value: Any) -> Iterator[str]:
        if isinstance(value, str):
            yield value
        elif isinstance(value, dict):
            for item in value.values():
                yield from leaves(item)
        elif isinstance(value, list):
            for item in value:
                yield from leaves(item)

    with psycopg.connect(dsn) as conn:
        for table in TABLES:
            for row in conn.execute(f"SELECT * FROM {table}"):
                for value in row:
                    for text in leaves(value):
                        atoms.add(text)
                        atoms.update(re.findall(r"[\w.+-]+@[\w.-]+", text))
    return atoms


def test_no_original_pii_anywhere_in_the_target(first_run: TenantRun, stack: Stack) -> None:
    source_values: set[str] = set()
    with psycopg.connect(stack.standby_dsn) as conn:
        for email, full_name, token in conn.execute(
            "SELECT u.email, u.full_name, pm.provider_token FROM users u "
            "LEFT JOIN payment_methods pm ON pm.user_id = u.id WHERE u.organization_id = %s",
            (ORGANIZATION,),
        ):
            source_values.update(value for value in (email, full_name, token) if value)
        for (payload,) in conn.execute(
            "SELECT payload FROM audit_events WHERE organization_id = %s", (ORGANIZATION,)
        ):
            actor = payload.get("actor") or {}
            notes = (payload.get("internal") or {}).get("support_notes")
            source_values.update(value for value in (actor.get("email"), actor.get("ip"), notes) if value)
    assert len(source_values) > 100
    assert source_values.isdisjoint(_target_atoms(first_run.target_dsn))
    assert _query(first_run.target_dsn, "SELECT DISTINCT last_four FROM payment_methods") == [("9999",)]
    assert _query(
        first_run.target_dsn, "SELECT count(*) FROM audit_events WHERE payload->'internal' ? 'support_notes'"
    ) == [(0,)]


def test_same_salt_gives_identical_masked_values(first_run: TenantRun, second_run: TenantRun) -> None:
    assert second_run.result.success
    assert second_run.database != first_run.database
    for query in (
        "SELECT id, email, full_name FROM users ORDER BY id",
        "SELECT id, provider_token, last_four FROM payment_methods ORDER BY id",
        "SELECT id, payload FROM audit_events ORDER BY id",
    ):
        assert _query(first_run.target_dsn, query) == _query(second_run.target_dsn, query)


def test_the_repro_database_says_where_to_connect_without_any_password(
    first_run: TenantRun, stack: Stack, salt: str
) -> None:
    target = conninfo_to_dict(stack.target_admin_dsn)
    metadata = {
        event.step_materialization_data.materialization.asset_key.to_user_string(): {
            key: str(value.value)
            for key, value in event.step_materialization_data.materialization.metadata.items()
        }
        for event in first_run.result.get_asset_materialization_events()
    }
    repro = metadata["repro_database"]
    assert (repro["host"], repro["port"], repro["database"], repro["role"]) == (
        target["host"],
        str(target["port"]),
        first_run.database,
        target["user"],
    )
    assert f"psql 'host={target['host']} port={target['port']} dbname={first_run.database} " in repro["psql"]
    handoff = metadata["repro_handoff"]
    assert handoff["role"] == handoff["login"] and f"user={handoff['login']}'" in handoff["psql"]
    login_password = conninfo_to_dict(_login_dsn(first_run))["password"]
    for secret in (stack.password, salt, login_password, stack.target_admin_dsn):
        assert all(secret not in value for values in metadata.values() for value in values.values())


def test_secrets_never_reach_the_event_log(first_run: TenantRun, stack: Stack, salt: str) -> None:
    records = first_run.instance.all_logs(first_run.result.run_id)
    text = "\n".join(repr(record) for record in records)
    login_password = conninfo_to_dict(_login_dsn(first_run))["password"]
    assert login_password and isinstance(login_password, str)
    for secret in (stack.password, salt, SLACK_TOKEN, login_password):
        assert secret not in text
        assert all(secret not in message.raw_body for message in first_run.slack_messages)


def test_the_bug_query_is_a_non_blocking_check_told_in_slack_without_its_rows(
    first_run: TenantRun, second_run: TenantRun, source: SourceSummary
) -> None:
    planted = len(source.planted_invoice_ids)
    found = f"the query returns {planted} rows: the bug reproduces"
    assert second_run.result.success
    evaluations = {check.check_name: check for check in second_run.result.get_asset_check_evaluations()}
    query = evaluations["repro_query"]
    assert query.passed and not query.blocking and query.partition == str(ORGANIZATION)
    assert query.description == found
    assert query.metadata["rows"].value == planted and query.metadata["result"].value == found
    assert query.metadata["database"].value == second_run.database
    assert "repro_query" not in {check.check_name for check in first_run.result.get_asset_check_evaluations()}
    (message,) = second_run.slack_messages
    assert f"Bug query: {found}." in message.text
    assert {"type": "section", "text": {"type": "mrkdwn", "text": f"*Bug query:* {found}"}} in message.blocks
    assert _handoff_metadata(second_run)["repro_query"] == found
    assert "Bug query" not in first_run.slack_messages[0].text
    for invoice_id in source.planted_invoice_ids:  # the count, never the rows
        assert not re.search(rf"\b{invoice_id}\b", message.text + str(message.blocks))
    assert _query(second_run.target_dsn, "SELECT rows, error FROM _repro_pipeline.repro_query") == [
        (planted, "")
    ]


def test_the_bug_query_alone_on_the_latest_database_warns_when_it_cannot_run(second_run: TenantRun) -> None:
    heavy = "SELECT 1 FROM generate_series(1, 100000) a, generate_series(1, 100000) b"
    result = _checks_on_their_own(
        second_run.instance,
        "repro_query",
        run_config={
            "ops": {
                "tenant_closure_and_repro_database": {
                    "config": {"repro_query": heavy, "repro_query_timeout_seconds": 0.2}
                }
            }
        },
    )
    assert result.success  # information, not a failure
    (evaluation,) = result.get_asset_check_evaluations()
    assert not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.WARN
    assert evaluation.description == (
        "the query could not run: it ran past its timeout of 0.2 s (statement_timeout) and was cancelled"
    )
    assert "rows" not in evaluation.metadata
    assert _query(second_run.target_dsn, "SELECT rows FROM _repro_pipeline.repro_query") == [(None,)]


def test_a_bug_query_that_writes_fails_the_run_before_any_database_is_made(
    first_run: TenantRun, stack: Stack
) -> None:
    with psycopg.connect(stack.target_admin_dsn, autocommit=True) as admin:
        before = {db.name for db in lifecycle.list_repro_databases(admin)}
    result = materialize_tenant(ORGANIZATION, first_run.instance, repro_query="DELETE FROM invoices")
    assert not result.success
    assert "the run config's repro_query is refused: it is DELETE, not a SELECT" in step_failure_messages(
        result
    )
    with psycopg.connect(stack.target_admin_dsn, autocommit=True) as admin:
        assert {db.name for db in lifecycle.list_repro_databases(admin)} == before


def _handoff_alone(instance: dg.DagsterInstance) -> dg.JobExecutionResult:
    from repro_pipeline.definitions import tenant_repro_job_def

    return dg.execute_job(
        dg.reconstructable(tenant_repro_job_def),
        instance=instance,
        tags={"dagster/partition": str(ORGANIZATION)},
        asset_selection=[dg.AssetKey("repro_handoff")],
    )


def test_a_failing_check_stops_the_handoff(
    first_run: TenantRun, stack: Stack, slack_api: SlackApi, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A realistic mistake: the payload's copy of the email is masked, the users.email column is not.
    rules = (PROJECT_ROOT / "config" / "mask-rules.yaml").read_text()
    forgetful = tmp_path / "mask-rules.yaml"
    forgetful.write_text(
        rules.replace("      email: { action: fake, provider: email, seed_alias: user_email }\n", "")
    )
    monkeypatch.setenv("REPRO_MASK_RULES", str(forgetful))
    before_messages = len(slack_api.messages)
    run = _run(first_run.instance, stack, slack_api)
    assert not run.result.success
    checks = {check.check_name: check.passed for check in run.result.get_asset_check_evaluations()}
    assert checks["no_original_pii"] is False
    assert checks["zero_fk_orphans"] is True
    materialized = {
        event.step_materialization_data.materialization.asset_key.to_user_string()
        for event in run.result.get_asset_materialization_events()
    }
    assert "repro_handoff" not in materialized
    assert run.slack_messages == []
    with psycopg.connect(stack.target_admin_dsn, autocommit=True) as admin:
        (retired,) = [db for db in lifecycle.list_repro_databases(admin) if db.name == run.database]
        assert retired.status == "failed" and retired.expires_at <= datetime.now(UTC)
    (observation,) = [
        record.asset_observation
        for record in first_run.instance.fetch_observations(
            dg.AssetRecordsFilter(
                asset_key=dg.AssetKey("repro_database"), asset_partitions=[str(ORGANIZATION)]
            ),
            limit=1,
        ).records
    ]
    assert observation is not None and observation.metadata["database"].value == run.database
    assert observation.metadata["status"].value == "retired"
    assert observation.metadata["reason"].value == "it holds original values of masked fields"

    # Handing off on its own (as from the UI) does not skip the checks' verdict either.
    handoff_only = _handoff_alone(first_run.instance)
    assert not handoff_only.success
    assert len(slack_api.messages) == before_messages
    assert run.database in run_ttl_sweep(first_run.instance).dropped


def test_the_repro_database_records_its_run_without_values(
    first_run: TenantRun, stack: Stack, salt: str
) -> None:
    dsn = first_run.target_dsn
    (run,) = _query(
        dsn,
        "SELECT run_id, organization_id, status, salt_fingerprint, source_replay_lsn IS NOT NULL, "
        "started_at <= loaded_at AND loaded_at <= finished_at FROM _repro_pipeline.runs",
    )
    assert run[0] == first_run.result.run_id and run[1] == ORGANIZATION and run[2] == "ready"
    assert len(run[3]) == 16 and run[3] not in salt and run[4] and run[5]
    columns = dict(
        ((table, column), (action, masked))
        for table, column, action, masked in _query(
            dsn, "SELECT table_name, column_name, action, masked_values FROM _repro_pipeline.columns"
        )
    )
    assert columns[("public.users", "email")] == ("fake:email (seed_alias user_email)", 60)
    assert columns[("public.payment_methods", "last_four")][0] == "static"
    assert _query(dsn, "SELECT count(*) FROM _repro_pipeline.checks WHERE passed") == [(4,)]
    counts = _query(
        dsn, "SELECT table_name, closure_rows, source_rows, loaded_rows FROM _repro_pipeline.tables"
    )
    assert len(counts) == len(TABLES) and all(
        closure == sent == loaded for _, closure, sent, loaded in counts
    )
    assert sum(sent for _, _, sent, _ in counts) > 10_000
    manifest = "\n".join(
        str(row)
        for table in ("runs", "tables", "columns", "checks")
        for row in _query(dsn, f"SELECT * FROM _repro_pipeline.{table}")
    )
    assert "@" not in manifest and stack.password not in manifest


def test_an_excluded_table_is_left_out_and_the_handoff_still_happens(
    first_run: TenantRun, stack: Stack, slack_api: SlackApi, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    rules = (PROJECT_ROOT / "config" / "mask-rules.yaml").read_text()
    excluding = tmp_path / "mask-rules.yaml"
    excluding.write_text(
        rules.replace(
            "  public.payment_methods:\n    strategy: transform\n",
            "  public.payment_methods:\n    strategy: exclude\n",
        )
    )
    monkeypatch.setenv("REPRO_MASK_RULES", str(excluding))
    run = _run(first_run.instance, stack, slack_api)
    assert run.result.success
    evaluations = run.result.get_asset_check_evaluations()
    assert len(evaluations) == 4 and all(check.passed for check in evaluations)  # the schema's too
    assert len(run.slack_messages) == 1
    assert _query(run.target_dsn, "SELECT to_regclass('public.payment_methods')") == [(None,)]


def _checks_on_their_own(
    instance: dg.DagsterInstance, *names: str, run_config: dict[str, Any] | None = None
) -> dg.ExecuteInProcessResult:
    """The checks alone, as the UI's "Execute" launches them: a run that materializes nothing."""
    from repro_pipeline.definitions import tenant_repro_job_def

    checks_only = tenant_repro_job_def().get_subset(
        asset_selection=set(),
        asset_check_selection={dg.AssetCheckKey(dg.AssetKey("repro_database"), name) for name in names},
    )
    return checks_only.execute_in_process(
        run_config=run_config, instance=instance, partition_key=str(ORGANIZATION), raise_on_error=False
    )


def test_checks_launched_on_their_own_verify_the_partitions_latest_database_and_can_fail(
    first_run: TenantRun, stack: Stack, slack_api: SlackApi
) -> None:
    run = _run(first_run.instance, stack, slack_api)
    assert run.result.success
    with psycopg.connect(run.target_dsn, autocommit=True) as conn:
        # Without FK triggers, as a careless restore would: an orphaned line item and a missing invoice.
        conn.execute("SET session_replication_role = replica")
        conn.execute("DELETE FROM invoices WHERE id = (SELECT min(invoice_id) FROM invoice_line_items)")
        conn.execute("ALTER TABLE invoices ALTER COLUMN currency SET DEFAULT 'EUR'")
    result = _checks_on_their_own(
        first_run.instance, "zero_fk_orphans", "row_counts_match_closure", "schema_matches_source"
    )
    assert result.get_asset_materialization_events() == []
    evaluations = {check.check_name: check for check in result.get_asset_check_evaluations()}
    assert {check.partition for check in evaluations.values()} == {str(ORGANIZATION)}
    (orphans_record,) = first_run.instance.event_log_storage.get_asset_check_execution_history(
        dg.AssetCheckKey(dg.AssetKey("repro_database"), "zero_fk_orphans"), limit=1
    )
    assert orphans_record.run_id == result.run_id and orphans_record.partition == str(ORGANIZATION)
    assert orphans_record.status.value == "FAILED"
    assert not evaluations["zero_fk_orphans"].passed
    assert evaluations["zero_fk_orphans"].metadata["orphans"].value > 0
    assert not evaluations["row_counts_match_closure"].passed
    assert "public.invoices" in evaluations["row_counts_match_closure"].metadata["mismatches"].value
    schema = evaluations["schema_matches_source"]
    assert not schema.passed and schema.metadata["differing_lines"].value == 2
    diff = str(schema.metadata["diff"].value).splitlines()
    assert "-    currency character(3) DEFAULT 'USD'::bpchar NOT NULL" in diff
    assert "+    currency character(3) DEFAULT 'EUR'::bpchar NOT NULL" in diff
    verdicts = dict(_query(run.target_dsn, "SELECT check_name, passed FROM _repro_pipeline.checks"))
    assert verdicts["zero_fk_orphans"] is False and verdicts["row_counts_match_closure"] is False
    assert verdicts["schema_matches_source"] is False
    assert _query(run.target_dsn, "SELECT status FROM _repro_pipeline.runs") == [("failed",)]
    posted = len(slack_api.messages)
    handoff = _handoff_alone(first_run.instance)  # the database is not retired, but its checks failed
    assert not handoff.success and len(slack_api.messages) == posted
    assert "have not passed on it" in step_failure_messages(handoff)
    with psycopg.connect(stack.target_admin_dsn, autocommit=True) as admin:
        lifecycle.drop_repro_database(admin, run.database)
    gone = _checks_on_their_own(first_run.instance, "row_counts_match_closure")
    assert not gone.success
    gone_message = f"the repro database {run.database} of organization {ORGANIZATION} is gone"
    assert gone_message in step_failure_messages(gone)


def test_an_expired_database_is_not_handed_off_again(
    first_run: TenantRun, stack: Stack, slack_api: SlackApi
) -> None:
    run = _run(first_run.instance, stack, slack_api)
    assert run.result.success
    before = len(slack_api.messages)
    with psycopg.connect(stack.target_admin_dsn, autocommit=True) as admin:
        (database,) = [db for db in lifecycle.list_repro_databases(admin) if db.name == run.database]
        lifecycle.mark(admin, database, "ready", expires_at=datetime.now(UTC) - timedelta(minutes=1))
    try:
        again = _handoff_alone(first_run.instance)
        assert not again.success
        assert f"{run.database} is not handed off: it is expired" in step_failure_messages(again)
        assert len(slack_api.messages) == before
    finally:
        with psycopg.connect(stack.target_admin_dsn, autocommit=True) as admin:
            lifecycle.drop_repro_database(admin, run.database)


def _metadata_of(result: dg.JobExecutionResult, asset: str) -> dict[str, Any]:
    (metadata,) = [
        event.step_materialization_data.materialization.metadata
        for event in result.get_asset_materialization_events()
        if event.step_materialization_data.materialization.asset_key == dg.AssetKey(asset)
    ]
    return dict(metadata)


def test_the_repro_database_keeps_each_tables_rows_seconds_and_rate(first_run: TenantRun) -> None:
    metadata = _metadata_of(first_run.result, "repro_database")
    table = metadata["load_by_table"]
    assert isinstance(table, dg.TableMetadataValue)
    assert [column.name for column in table.schema.columns] == ["table", "rows", "seconds", "rows_per_second"]
    loaded = {record.data["table"]: record.data for record in table.records}
    assert loaded["public.invoices"]["rows"] == 3000
    assert sum(row["rows"] for row in loaded.values()) == metadata["dagster/row_count"].value
    for row in loaded.values():
        assert row["seconds"] > 0
        # The seconds are rounded to the millisecond for display, the rate from the unrounded ones: it lies
        # between the rates of the half-millisecond bounds (a table of 4 rows in 0.006 s: 621 rows/s is
        # 4 / 0.00644 s, while 4 / 0.006 s would be 667).
        slowest, fastest = row["seconds"] + 0.0005, max(row["seconds"] - 0.0005, 1e-9)
        assert row["rows"] / slowest - 1 <= row["rows_per_second"] <= row["rows"] / fastest + 1
    seconds = [record.data["seconds"] for record in table.records]
    assert seconds == sorted(seconds, reverse=True)  # the slowest first


def test_a_runs_config_sets_its_databases_ttl_and_a_tighter_lag_limit(
    first_run: TenantRun, stack: Stack
) -> None:
    from repro_pipeline.definitions import tenant_repro_job_def

    result = dg.execute_job(
        dg.reconstructable(tenant_repro_job_def),
        instance=first_run.instance,
        tags={"dagster/partition": str(ORGANIZATION)},
        run_config={
            "ops": {
                "standby_health": {"config": {"max_replay_lag_seconds": 120.0}},
                "tenant_closure_and_repro_database": {"config": {"ttl_hours": 5.0}},
            }
        },
    )
    assert result.success
    database = materialized_database(result)
    try:
        assert _metadata_of(result, "standby_health")["max_replay_lag_seconds"].value == 120.0
        with psycopg.connect(stack.target_admin_dsn, autocommit=True) as admin:
            (built,) = [db for db in lifecycle.list_repro_databases(admin) if db.name == database]
        assert abs(built.expires_at - built.created_at - timedelta(hours=5)) < timedelta(seconds=1)
    finally:
        with psycopg.connect(stack.target_admin_dsn, autocommit=True) as admin:
            lifecycle.drop_repro_database(admin, database)
