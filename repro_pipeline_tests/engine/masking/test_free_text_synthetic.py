"""The synthetic source with ``$.internal.support_notes`` under ``ner_mask`` instead of the guide's ``remove``:
organization 451's repro passes its checks, and each note is the source's sentence with the tenant's names and
emails replaced by the masked users' values."""

from __future__ import annotations

import secrets
from pathlib import Path

import psycopg
import pytest

from repro_pipeline.embedded.stack import Stack
from repro_pipeline.embedded.synthetic import SourceSummary
from repro_pipeline.engine.config import load_config
from repro_pipeline.engine.load.plan import plan_subset
from repro_pipeline.engine.secrets import Secret
from repro_pipeline.engine.source.snapshot import open_source_snapshot
from repro_pipeline_tests.engine.load.databases import empty_target, load_and_verify

CONFIG = Path(__file__).resolve().parents[3] / "config"
ORGANIZATION = 451
NOTES = "SELECT id, payload #>> '{internal,support_notes}' FROM audit_events WHERE payload #> '{internal}' ? 'support_notes'"


def test_support_notes_under_ner_mask_read_as_sentences_naming_the_masked_users(
    stack: Stack, source: SourceSummary, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    salt = Secret(secrets.token_hex(32))
    monkeypatch.setenv("ANONYMIZATION_SALT", salt.reveal())
    extensions = (CONFIG / "commercial-extensions.yaml").read_text()
    assert "      - path: $.internal.support_notes\n        action: remove" in extensions
    (tmp_path / "commercial-extensions.yaml").write_text(
        extensions.replace(
            "      - path: $.internal.support_notes\n        action: remove",
            "      - path: $.internal.support_notes\n        action: ner_mask",
        )
    )
    config = load_config(CONFIG / "mask-rules.yaml", tmp_path / "commercial-extensions.yaml")
    with open_source_snapshot(stack.standby_dsn) as snapshot:
        plan = plan_subset(snapshot, config, salt, ORGANIZATION)
    with psycopg.connect(stack.standby_dsn) as conn:
        source_users = {
            user: (email, name)
            for user, email, name in conn.execute(
                "SELECT id, email, full_name FROM users WHERE organization_id = %s", (ORGANIZATION,)
            )
        }
        source_notes = dict(conn.execute(f"{NOTES} AND organization_id = %s", (ORGANIZATION,)).fetchall())
    with empty_target(stack, "free_text_synthetic") as target:
        _, verdicts = load_and_verify(stack.standby_dsn, target, plan, config, batch_size=1000)
        assert [(verdict.check, verdict.passed) for verdict in verdicts] == [
            (verdict.check, True) for verdict in verdicts
        ]
        with psycopg.connect(target) as conn:
            masked_users = dict(
                (user, (email, name))
                for user, email, name in conn.execute("SELECT id, email, full_name FROM users")
            )
            notes = dict(conn.execute(NOTES).fetchall())
    assert len(notes) > 100 and notes.keys() <= source_notes.keys()
    naming_users = 0
    for event, note in notes.items():
        expected = source_notes[event]
        for user, (email, name) in source_users.items():
            if name in expected or email in expected:
                naming_users += 1
                expected = expected.replace(email, masked_users[user][0]).replace(name, masked_users[user][1])
        assert note == expected
    assert naming_users >= len(notes)  # every note names a user of the tenant
