"""``ner_mask`` on real servers: a tenant's notes read from the standby and loaded into an empty target hold the
masked users' fake names and emails where they held the originals, pass the leak check (most notes, holding no
PII, copied as they are), and a note put back as it was fails it; load workers mask alike."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from repro_pipeline.embedded.stack import Stack
from repro_pipeline.engine.config import ReproConfig, load_config
from repro_pipeline.engine.load.loader import load_repro
from repro_pipeline.engine.load.parallel import LoadWorkers
from repro_pipeline.engine.load.plan import SubsetPlan, plan_subset
from repro_pipeline.engine.secrets import Secret
from repro_pipeline.engine.source.catalog import MANIFEST_SCHEMA
from repro_pipeline.engine.source.snapshot import open_source_snapshot
from repro_pipeline.engine.verify.checks import no_original_pii, read_originals
from repro_pipeline_tests.engine.load.databases import empty_target, load_and_verify, source_database

ORGANIZATION = 7
SCHEMA = """
CREATE TABLE organizations (id int PRIMARY KEY, name text NOT NULL);
CREATE TABLE users (
    id int PRIMARY KEY,
    organization_id int NOT NULL REFERENCES organizations,
    email text NOT NULL UNIQUE,
    full_name text NOT NULL
);
CREATE TABLE tickets (id int PRIMARY KEY, user_id int NOT NULL REFERENCES users, note text, payload jsonb);
INSERT INTO organizations VALUES (7, 'Quenwick Holdings'), (8, 'Other Tenant');
INSERT INTO users
    SELECT g, 7 + g % 2, 'user' || g || '@quenwick.example',
           (ARRAY['Mira', 'Tobin', 'Ysolde', 'Bram'])[1 + g % 4] || ' Quenwick' || chr(97 + g % 26) || chr(97 + g / 26)
    FROM generate_series(1, 120) g;
INSERT INTO tickets
    SELECT t.id, t.user_id, t.note, jsonb_build_object('internal', jsonb_build_object('support_notes', t.note))
    FROM (
        SELECT g AS id, 1 + g % 120 AS user_id,
               CASE g % 5
                   WHEN 0 THEN 'Escalated for ' || u.full_name || ' (' || u.email || '): refund pending.'
                   WHEN 1 THEN 'Call back on +1 415 555 ' || lpad((g % 10000)::text, 4, '0')
                               || ' from 81.2.69.' || (1 + g % 200) || '.'
                   ELSE 'Refund pending review for invoice ' || g || '.'
               END AS note
        FROM generate_series(1, 600) g JOIN users u ON u.id = 1 + g % 120
    ) t;
"""
RULES = """version: "1.0"
global_salt: env://REPRO_TEST_SALT
tables:
  public.users:
    columns:
      email: { action: fake, provider: email, seed_alias: user_email }
      full_name: { action: fake, provider: full_name }
  public.tickets:
    columns:
      note: { action: ner_mask }
"""
EXTENSIONS = """version: "1.0"
subset:
  - table: public.organizations
    predicate: "id = :organization_id"
json_mask:
  - column: public.tickets.payload
    paths:
      - { path: $.internal.support_notes, action: ner_mask }
"""


@pytest.fixture(scope="module")
def notes_source(stack: Stack) -> Iterator[str]:
    with source_database(stack, "free_text", SCHEMA) as dsn:
        yield dsn


def _plan(
    source: str, tmp_path: Path, salt: Secret, monkeypatch: pytest.MonkeyPatch
) -> tuple[ReproConfig, SubsetPlan]:
    monkeypatch.setenv("REPRO_TEST_SALT", salt.reveal())
    (tmp_path / "mask-rules.yaml").write_text(RULES)
    (tmp_path / "commercial-extensions.yaml").write_text(EXTENSIONS)
    config = load_config(tmp_path / "mask-rules.yaml", tmp_path / "commercial-extensions.yaml")
    with open_source_snapshot(source) as snapshot:
        return config, plan_subset(snapshot, config, salt, ORGANIZATION)


def _notes(dsn: str) -> list[tuple[int, int, str, str]]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute("SELECT id, user_id, note, payload FROM tickets ORDER BY id").fetchall()
    return [
        (ticket, user, note, payload["internal"]["support_notes"]) for ticket, user, note, payload in rows
    ]


def test_notes_hold_the_masked_users_fakes_pass_the_leak_check_and_a_note_put_back_fails_it(
    notes_source: str, stack: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    salt = Secret(secrets.token_hex(32))
    config, plan = _plan(notes_source, tmp_path, salt, monkeypatch)
    source_notes = {ticket: note for ticket, _, note, _ in _notes(notes_source)}
    with psycopg.connect(notes_source) as conn:
        originals = {row[0]: row[1:] for row in conn.execute("SELECT id, email, full_name FROM users")}
    with empty_target(stack, "free_text") as target:
        report, verdicts = load_and_verify(notes_source, target, plan, config, batch_size=50)
        assert [(verdict.check, verdict.passed) for verdict in verdicts] == [
            (verdict.check, True) for verdict in verdicts
        ]
        with psycopg.connect(target) as conn:
            masked_users = {row[0]: row[1:] for row in conn.execute("SELECT id, email, full_name FROM users")}
            # The run's record says which detectors ran (the per-table assets' metadata shows the same text).
            recorded = dict(
                conn.execute(
                    sql.SQL("SELECT column_name, action FROM {} WHERE table_name = 'public.tickets'").format(
                        sql.Identifier(MANIFEST_SCHEMA, "columns")
                    )
                ).fetchall()
            )
        notes = _notes(target)
        assert len(notes) == 300
        unchanged = 0
        for ticket, user, note, in_payload in notes:
            assert note == in_payload
            email, name = masked_users[user]
            original_email, original_name = originals[user]
            if ticket % 5 == 0:
                assert note == f"Escalated for {name} ({email}): refund pending."
                assert original_name not in note and original_email not in note
            elif ticket % 5 == 1:
                assert note.startswith("Call back on +1-") and " from 81.2.69." not in note
            else:
                assert note == source_notes[ticket]
                unchanged += 1
        assert unchanged * 2 > len(notes)
        assert (
            recorded["note"].startswith("ner_mask (")
            and "120 originals of 2 masked fields" in recorded["note"]
        )
        assert "email, credit_card, ip_address, phone by pattern; no names model" in recorded["note"]
        assert (
            "ner_mask $.internal.support_notes" in recorded["payload"]
        )  # most notes hold no PII: the own-row rule is not tripped

        # Workers build the masks from the plan's dictionary, and mask alike.
        with (
            empty_target(stack, "free_text_workers") as by_workers,
            open_source_snapshot(notes_source) as snapshot,
        ):
            load_repro(
                snapshot,
                by_workers,
                plan,
                run_id="free-text-workers",
                started_at=datetime.now(UTC),
                batch_size=50,
                workers=LoadWorkers(2, config, salt, min_rows_each=1),
            )
            assert _notes(by_workers) == notes

        # A note put back as it was on the source: its original name and email fail the leak check.
        with open_source_snapshot(notes_source) as snapshot:
            kept = read_originals(snapshot.conn, plan, config)
        with psycopg.connect(target, autocommit=True) as conn:
            conn.execute("UPDATE tickets SET note = %s WHERE id = 5", (source_notes[5],))
            leaked = no_original_pii(kept, conn)
    assert not leaked.passed
    assert leaked.found["leaking_columns"] == {"public.tickets.note": 1}
    assert report.loaded_rows


def test_a_note_that_kept_only_its_phone_number_fails_the_leak_check(
    notes_source: str, stack: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A phone number in a note is no original of any column: the leak check finds it in the note itself."""
    salt = Secret(secrets.token_hex(32))
    config, plan = _plan(notes_source, tmp_path, salt, monkeypatch)
    source_notes = {ticket: note for ticket, _, note, _ in _notes(notes_source)}
    with empty_target(stack, "free_text_phone") as target:
        _, verdicts = load_and_verify(notes_source, target, plan, config, batch_size=50)
        assert all(verdict.passed for verdict in verdicts)
        with open_source_snapshot(notes_source) as snapshot:
            kept = read_originals(snapshot.conn, plan, config)
        with psycopg.connect(target, autocommit=True) as conn:
            conn.execute(
                "UPDATE tickets SET payload = %s WHERE id = 11",
                (json.dumps({"internal": {"support_notes": source_notes[11]}}),),
            )
            leaked = no_original_pii(kept, conn)
    assert not leaked.passed
    assert leaked.found["leaking_columns"] == {"public.tickets.payload": 1}
