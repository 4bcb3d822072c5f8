"""``pseudonym`` and ``hmac_hash`` on real servers: a tenant read from the standby and loaded into an empty
target database is masked with the pseudonym key, passes the four checks, and a ``pseudonym`` column that kept
its originals fails the leak check."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from repro_pipeline.embedded.stack import Stack
from repro_pipeline.engine.config import ReproConfig, load_config
from repro_pipeline.engine.load.loader import load_repro
from repro_pipeline.engine.load.parallel import LoadWorkers
from repro_pipeline.engine.load.plan import SubsetPlan, plan_subset
from repro_pipeline.engine.masking import values
from repro_pipeline.engine.secrets import Secret
from repro_pipeline.engine.source.snapshot import open_source_snapshot
from repro_pipeline.engine.verify.checks import no_original_pii, read_originals
from repro_pipeline_tests.engine.load.databases import empty_target, load_and_verify, source_database
from repro_pipeline_tests.vault_api import VaultApi

ORGANIZATION = 7
SCHEMA = """
CREATE TABLE organizations (id int PRIMARY KEY, name text NOT NULL);
CREATE TABLE people (
    id int PRIMARY KEY,
    organization_id int NOT NULL REFERENCES organizations,
    email text NOT NULL UNIQUE,
    full_name text NOT NULL,
    api_token text,
    session_token character varying(43)
);
INSERT INTO organizations VALUES (7, 'Quenwick Holdings'), (8, 'Other Tenant');
INSERT INTO people
    SELECT g, 7 + g % 2, 'zorblat.' || g || '@quenwick.example', 'Zorblat Quenwick ' || g,
           'tok_live_' || md5(g::text), 'sess_' || md5('s' || g)
    FROM generate_series(1, 400) g;
"""
RULES = """version: "1.0"
global_salt: env://REPRO_TEST_SALT
pseudonym_key: env://REPRO_TEST_PSEUDONYM_KEY
tables:
  public.organizations:
    columns:
      name: { action: fake, provider: company }
  public.people:
    columns:
      email: { action: pseudonym, provider: email }
      full_name: { action: pseudonym, provider: full_name }
      api_token: { action: hmac_hash }
      session_token: { action: hmac_hash, encoding: base64url }
"""
EXTENSIONS = """version: "1.0"
subset:
  - table: public.organizations
    predicate: "id = :organization_id"
"""


@pytest.fixture(scope="module")
def keyed_source(stack: Stack) -> Iterator[str]:
    with source_database(stack, "keyed_actions", SCHEMA) as dsn:
        yield dsn


def _plan(source: str, tmp_path: Path, salt: Secret) -> tuple[ReproConfig, SubsetPlan]:
    (tmp_path / "mask-rules.yaml").write_text(RULES)
    (tmp_path / "commercial-extensions.yaml").write_text(EXTENSIONS)
    config = load_config(tmp_path / "mask-rules.yaml", tmp_path / "commercial-extensions.yaml")
    with open_source_snapshot(source) as snapshot:
        return config, plan_subset(snapshot, config, salt, ORGANIZATION)


def test_pseudonym_and_hmac_hash_mask_a_loaded_tenant_and_an_unmasked_pseudonym_fails_the_leak_check(
    keyed_source: str, stack: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    salt, key = Secret(secrets.token_hex(32)), Secret(secrets.token_hex(32))
    monkeypatch.setenv("REPRO_TEST_SALT", salt.reveal())
    monkeypatch.setenv("REPRO_TEST_PSEUDONYM_KEY", key.reveal())
    config, plan = _plan(keyed_source, tmp_path, salt)
    with psycopg.connect(keyed_source) as conn:
        originals = conn.execute(
            "SELECT id, email, full_name, api_token, session_token FROM people WHERE organization_id = %s "
            "ORDER BY id",
            (ORGANIZATION,),
        ).fetchall()
    with empty_target(stack, "keyed_actions") as target:
        _, verdicts = load_and_verify(keyed_source, target, plan, config, batch_size=50)
        assert [(verdict.check, verdict.passed) for verdict in verdicts] == [
            (verdict.check, True) for verdict in verdicts
        ]
        with psycopg.connect(target, autocommit=True) as conn:
            masked = conn.execute(
                "SELECT id, email, full_name, api_token, session_token FROM people ORDER BY id"
            ).fetchall()
            assert len(masked) == len(originals) == 200
            by_key = values.fake(key, "public.people.full_name", "full_name", {})
            by_salt = values.fake(salt, "public.people.full_name", "full_name", {})
            token_hash = values.hmac_hashed(key, "public.people.api_token")
            session_hash = values.hmac_hashed(key, "public.people.session_token", encoding="base64url")
            for (_, _, name, token, session), (_, new_email, new_name, new_token, new_session) in zip(
                originals, masked, strict=True
            ):
                assert new_name == by_key(name) != by_salt(name)
                assert new_token == token_hash(token) and len(new_token) == 64
                assert new_session == session_hash(session) and len(new_session) == 43
                assert "quenwick" not in new_email and "+" in new_email  # unique: the uniqueness tag
            assert len({row[1] for row in masked}) == len(masked)

            # The same column left as it was on the source: the leak check finds it.
            with open_source_snapshot(keyed_source) as snapshot:
                kept = read_originals(snapshot.conn, plan, config)
            conn.execute("BEGIN")
            for person_id, _, name, _, _ in originals:
                conn.execute("UPDATE people SET full_name = %s WHERE id = %s", (name, person_id))
            conn.execute("COMMIT")
            leaked = no_original_pii(kept, conn)
    assert not leaked.passed
    assert leaked.found["leaking_columns"] == {"public.people.full_name": len(originals)}


def test_load_workers_mask_with_the_key_the_plan_resolved_and_ask_its_store_once(
    keyed_source: str, stack: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The key is read from Vault once, while planning: the worker processes get it from the plan rather
    than each asking the store again (a key rotated meanwhile would mask their tables with another key)."""
    salt, key = Secret(secrets.token_hex(32)), secrets.token_hex(32)
    token = f"hvs.{secrets.token_urlsafe(24)}"
    monkeypatch.setenv("REPRO_TEST_SALT", salt.reveal())
    with VaultApi(token, {"secret/repro/keys": {"pseudonym": key}}) as vault:
        monkeypatch.setenv("VAULT_ADDR", vault.address)
        monkeypatch.setenv("VAULT_TOKEN", token)
        (tmp_path / "mask-rules.yaml").write_text(
            RULES.replace("env://REPRO_TEST_PSEUDONYM_KEY", "vault://secret/repro/keys#pseudonym")
        )
        (tmp_path / "commercial-extensions.yaml").write_text(EXTENSIONS)
        config = load_config(tmp_path / "mask-rules.yaml", tmp_path / "commercial-extensions.yaml")
        with empty_target(stack, "keyed_workers") as target, open_source_snapshot(keyed_source) as snapshot:
            plan = plan_subset(snapshot, config, salt, ORGANIZATION)
            vault.secrets["secret/repro/keys"] = {"pseudonym": secrets.token_hex(32)}  # rotated
            load_repro(
                snapshot,
                target,
                plan,
                run_id="keyed-workers",
                started_at=datetime.now(UTC),
                batch_size=50,
                workers=LoadWorkers(2, config, salt, min_rows_each=1),
            )
            with psycopg.connect(target) as conn:
                names = conn.execute("SELECT full_name FROM people ORDER BY id").fetchall()
    assert vault.requests == ["/v1/secret/data/repro/keys"]
    expected = values.fake(Secret(key), "public.people.full_name", "full_name", {})
    assert [name for (name,) in names] == [
        expected(f"Zorblat Quenwick {n}") for n in range(1, 401) if (7 + n % 2) == ORGANIZATION
    ]
