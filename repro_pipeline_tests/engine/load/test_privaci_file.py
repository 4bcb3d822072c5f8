"""A PrivaCI-style pair of files using every key, action, action key and fake provider that
docs/privaci-compatibility.md marks supported (or ours) loads a tenant on real servers, and the copy passes the
four checks with each rule's effect in place."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
import yaml

from repro_pipeline.embedded.stack import Stack
from repro_pipeline.engine.config import ReproConfig, load_config
from repro_pipeline.engine.load.plan import plan_subset
from repro_pipeline.engine.secrets import Secret
from repro_pipeline.engine.source.snapshot import open_source_snapshot
from repro_pipeline_tests.conftest import FIXTURES
from repro_pipeline_tests.docs.test_privaci_compatibility import ACCEPTED, PAGE, page_tables
from repro_pipeline_tests.engine.load.databases import empty_target, load_and_verify, source_database

FILES = FIXTURES / "privaci"
ORGANIZATION = 7
# Sections whose every accepted key the files use; the secret schemes are one per secret (global_salt,
# pseudonym_key: env:// and ${VAR} here), each scheme tested on its own in test_secret_stores.py.
KEY_SECTIONS = (
    "mask-rules.yaml: top-level keys",
    "mask-rules.yaml: table keys",
    "mask-rules.yaml: column actions",
    "mask-rules.yaml: action keys",
    "fake providers",
    "commercial-extensions.yaml: top-level keys",
    "commercial-extensions.yaml: subset entries",
    "commercial-extensions.yaml: json_mask entries",
    "commercial-extensions.yaml: json_mask path keys",
    "commercial-extensions.yaml: json_mask path actions",
)
SCHEMA = """
CREATE TABLE organizations (id int PRIMARY KEY, name text NOT NULL);
CREATE TABLE vault_items (id int PRIMARY KEY, secret text NOT NULL);
CREATE TABLE people (
    id int PRIMARY KEY,
    organization_id int NOT NULL REFERENCES organizations,
    vault_item_id int REFERENCES vault_items,
    first_name text, last_name text, full_name text, middle_name text,
    email text NOT NULL, phone text, street text, city text, postcode text, country text,
    address text, dob date, ip_address inet, ssn text, credit_card text, device_id uuid, employer text,
    job text, username text, api_token text, session_token character varying(43), badge_code text,
    badge_id int, tier text, role text, notes text
);
CREATE UNIQUE INDEX people_email ON people (lower(email));
CREATE INDEX people_city ON people (city);
CREATE TABLE sessions (id int PRIMARY KEY, person_id int NOT NULL REFERENCES people, token text);
CREATE TABLE login_events (id int PRIMARY KEY, person_id int NOT NULL REFERENCES people, at timestamptz);
CREATE TABLE events (id int PRIMARY KEY, person_id int NOT NULL REFERENCES people, payload jsonb NOT NULL);
INSERT INTO organizations VALUES (7, 'Quenwick Holdings'), (8, 'Other Tenant');
INSERT INTO vault_items SELECT g, 'vault-secret-' || g FROM generate_series(1, 40) g;
INSERT INTO people
    SELECT g, 7 + g % 2, g % 40 + 1,
           'Zorblat' || g, 'Quenwick' || g, 'Zorblat Quenwick ' || g, 'Middle' || g,
           'Zorblat.' || g || '@Quenwick.example', '+1-202-555-' || lpad(g::text, 4, '0'), g || ' Elm Street',
           'Springfield', '1234' || g % 10, 'Freedonia', g || ' Elm Street, Springfield',
           date '1980-01-01' + g, ('10.1.' || g % 250 || '.7')::inet, '123-45-' || lpad(g::text, 4, '0'),
           '4111111111111111', md5(g::text)::uuid, 'Blorvex Industries', 'Engineer', 'zorblat' || g,
           'tok_live_' || md5(g::text), 'sess_' || md5('s' || g), 'BADGE-' || lpad(g::text, 4, '0'),
           g, 'gold', 'admin',
           'Escalated for Zorblat Quenwick ' || g || ' (zorblat.' || g || '@quenwick.example)'
    FROM generate_series(1, 60) g;
INSERT INTO sessions SELECT g, g, 'session-' || g FROM generate_series(1, 60) g;
INSERT INTO login_events SELECT g, g, now() FROM generate_series(1, 60) g;
INSERT INTO events
    SELECT g, g % 60 + 1, jsonb_build_object(
        'actor', jsonb_build_object('email', 'zorblat.' || (g % 60 + 1) || '@quenwick.example',
                                    'ip', '10.2.0.' || g % 250, 'phone', '+1-202-555-0100',
                                    'person_id', g % 60 + 1),
        'internal', jsonb_build_object('secret', 'internal-' || g),
        'source', 'crm',
        'note', 'Called Zorblat Quenwick ' || (g % 60 + 1) || ' at 10.9.8.' || g % 250)
    FROM generate_series(1, 120) g;
"""


def _keys_used(document: Any) -> set[str]:
    """Every mapping key and scalar value of a YAML document, at any depth."""
    if isinstance(document, dict):
        return {str(key) for key in document} | set().union(
            *(_keys_used(value) for value in document.values())
        )
    if isinstance(document, list):
        return set().union(*(_keys_used(item) for item in document))
    return {str(document)}


def test_the_files_use_every_key_the_compatibility_page_accepts() -> None:
    used = _keys_used(yaml.safe_load((FILES / "mask-rules.yaml").read_text(encoding="utf-8"))) | _keys_used(
        yaml.safe_load((FILES / "commercial-extensions.yaml").read_text(encoding="utf-8"))
    )
    tables = page_tables(PAGE.read_text(encoding="utf-8"))
    missing = {
        section: sorted(
            key for key, status in tables[section].items() if status in ACCEPTED and key not in used
        )
        for section in KEY_SECTIONS
    }
    assert {section: keys for section, keys in missing.items() if keys} == {}


@pytest.fixture(scope="module")
def privaci_source(stack: Stack) -> Iterator[str]:
    with source_database(stack, "privaci_file", SCHEMA) as dsn:
        yield dsn


@pytest.fixture
def config(monkeypatch: pytest.MonkeyPatch) -> tuple[ReproConfig, Secret]:
    salt = Secret(secrets.token_hex(32))
    monkeypatch.setenv("REPRO_TEST_SALT", salt.reveal())
    monkeypatch.setenv("REPRO_TEST_PSEUDONYM_KEY", secrets.token_hex(32))
    return load_config(FILES / "mask-rules.yaml", FILES / "commercial-extensions.yaml"), salt


def test_a_privaci_file_with_every_supported_key_loads_and_passes_the_checks(
    privaci_source: str, stack: Stack, config: tuple[ReproConfig, Secret]
) -> None:
    rules, salt = config
    with open_source_snapshot(privaci_source) as snapshot:
        plan = plan_subset(snapshot, rules, salt, ORGANIZATION)
    with empty_target(stack, "privaci_file") as target:
        report, verdicts = load_and_verify(privaci_source, target, plan, rules, batch_size=500)
        assert {verdict.check: verdict.passed for verdict in verdicts} == {
            verdict.check: True for verdict in verdicts
        }
        with psycopg.connect(target) as conn:
            tables = {
                name
                for (name,) in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
            }
            assert "vault_items" not in tables  # exclude
            counts = {
                table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()
                for table in ("people", "sessions", "login_events", "events")
            }
            assert counts == {"people": (30,), "sessions": (0,), "login_events": (0,), "events": (60,)}
            assert conn.execute("SELECT to_regclass('public.people_city')").fetchone() != (None,)
            person = conn.execute(
                "SELECT vault_item_id, middle_name, tier, role, badge_code, email, notes FROM people "
                "ORDER BY id LIMIT 1"
            ).fetchone()
            assert person is not None
            vault_item, middle, tier, role, badge, email, notes = person
            assert (vault_item, middle, tier, role) == (None, None, "standard", "admin")
            assert (
                badge == "BADGE-####" and email.endswith("@example.org") and "quenwick" not in notes.lower()
            )
            event = conn.execute("SELECT payload FROM events ORDER BY id LIMIT 1").fetchone()
            assert event is not None
            payload = event[0]
            assert payload["source"] == "redacted" and payload["actor"]["phone"] is None
            assert "internal" not in payload or "secret" not in payload["internal"]
            assert payload["actor"]["email"].endswith("@example.org")
            audit = conn.execute("SELECT count(*) FROM _repro_pipeline.audit_log").fetchone()
            assert audit is not None and audit[0] > 0
        assert sum(report.loaded_rows.values()) == 1 + 30 + 60
