"""The Slack messages as Block Kit: valid shapes, the fallback text saying the same, values shown as typed."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

from repro_pipeline.defs.failure_reasons import without
from repro_pipeline.defs.slack_messages import (
    Handoff,
    SlackMessage,
    expiry_message,
    failure_message,
    handoff_message,
)
from repro_pipeline.engine.repro_databases.manifest import REQUIRED_CHECKS

EXPIRES = datetime(2026, 12, 8, 4, 30, tzinfo=UTC)
HANDOFF = Handoff(
    organization_id=451,
    database="repro_org451_0a1b2c3d",
    host="10.0.0.7:5432",
    where_the_dsn_is="/srv/repro-secrets/repro_org451_0a1b2c3d.dsn",
    expires_at=EXPIRES,
    ticket_url="https://github.example/acme/support/issues/12",
    rows=12345,
    checks=REQUIRED_CHECKS,
)


def _assert_block_kit(message: SlackMessage) -> None:
    """The shapes Slack accepts: sections with a mrkdwn text or up to 10 mrkdwn fields, contexts of
    mrkdwn elements, within Slack's length limits."""
    assert message.text and 1 <= len(message.blocks) <= 50
    for block in message.blocks:
        if block["type"] == "section":
            assert "text" in block or "fields" in block
            texts = [block["text"]] if "text" in block else []
            fields = block.get("fields", [])
            assert len(fields) <= 10
            assert all(_is_mrkdwn(item, 3000) for item in texts)
            assert all(_is_mrkdwn(item, 2000) for item in fields)
        else:
            assert block["type"] == "context"
            assert 1 <= len(block["elements"]) <= 10
            assert all(_is_mrkdwn(item, 3000) for item in block["elements"])


def _is_mrkdwn(item: Any, longest: int) -> bool:
    return bool(
        item["type"] == "mrkdwn" and isinstance(item["text"], str) and 0 < len(item["text"]) <= longest
    )


def _fields(message: SlackMessage) -> dict[str, str]:
    (facts,) = [block for block in message.blocks if "fields" in block]
    pairs = (str(field["text"]).split("\n", 1) for field in facts["fields"])
    return {name.strip("*"): value for name, value in pairs}


def test_the_handoff_names_every_fact_in_its_blocks_and_its_text() -> None:
    message = handoff_message(HANDOFF)
    _assert_block_kit(message)
    assert _fields(message) == {
        "Organization": "451",
        "Database": "`repro_org451_0a1b2c3d`",
        "Host": "`10.0.0.7:5432`",
        "DSN kept in": "`/srv/repro-secrets/repro_org451_0a1b2c3d.dsn`",
        "Expires": "2026-12-08 04:30 UTC",
        "Rows": "12,345",
        "Ticket": "<https://github.example/acme/support/issues/12>",
    }
    assert message.blocks[-1]["type"] == "context"
    assert all(check in message.blocks[-1]["elements"][0]["text"] for check in REQUIRED_CHECKS)
    for fact in ("451", "repro_org451_0a1b2c3d", "10.0.0.7:5432", "12345", "2026-12-08 04:30 UTC"):
        assert fact in message.text
    assert "DSN in /srv/repro-secrets/repro_org451_0a1b2c3d.dsn." in message.text
    assert "Ticket: https://github.example/acme/support/issues/12" in message.text


def test_the_handoff_tells_what_the_bug_query_found_in_its_blocks_and_its_text() -> None:
    found = "the query returns 12 rows: the bug reproduces"
    message = handoff_message(dataclasses.replace(HANDOFF, repro_query=found))
    _assert_block_kit(message)
    assert f"Bug query: {found}." in message.text
    assert {"type": "section", "text": {"type": "mrkdwn", "text": f"*Bug query:* {found}"}} in message.blocks
    assert message.blocks[-1]["type"] == "context"


def test_a_handoff_without_a_bug_query_does_not_mention_one() -> None:
    message = handoff_message(HANDOFF)
    assert "Bug query" not in message.text
    assert "Bug query" not in str(message.blocks)


def test_a_handoff_without_a_ticket_says_none() -> None:
    message = handoff_message(Handoff(**{**HANDOFF.__dict__, "ticket_url": ""}))
    assert _fields(message)["Ticket"] == "none"
    assert "Ticket" not in message.text


def test_markup_in_a_value_is_shown_as_typed_not_read_as_a_link_or_mention() -> None:
    message = handoff_message(Handoff(**{**HANDOFF.__dict__, "where_the_dsn_is": "vault:<!here>&x"}))
    assert _fields(message)["DSN kept in"] == "`vault:&lt;!here&gt;&amp;x`"


def test_a_failure_notice_names_the_step_the_reason_and_the_run() -> None:
    link = "http://dagster.example:3000/runs/abc123"
    message = failure_message("451", "abc123", "standby_health", "WAL replay is paused", link)
    _assert_block_kit(message)
    fields = _fields(message)
    assert fields["Organization"] == "451"
    assert fields["Failed step"] == "`standby_health`"
    assert fields["Run"] == f"<{link}|abc123>"
    assert message.blocks[-1]["text"]["text"] == "*Reason:* WAL replay is paused"
    assert message.text == (
        f"Repro run for org 451 failed (step standby_health): WAL replay is paused\nRun: {link}"
    )
    without_link = failure_message("451", "abc123", "", "the run was canceled", "")
    assert _fields(without_link)["Run"] == "`abc123`"
    assert "before any step" in without_link.text


def test_secrets_in_a_reason_are_starred_out() -> None:
    reason = "connection to postgresql://repro:s3cret@10.0.0.7/app failed; token xoxb-123"
    assert without(reason, ["s3cret", "xoxb-123", ""]) == (
        "connection to postgresql://repro:***@10.0.0.7/app failed; token ***"
    )


def test_an_expiry_notice_says_which_database_went() -> None:
    message = expiry_message(451, "repro_org451_0a1b2c3d", EXPIRES)
    _assert_block_kit(message)
    assert message.text == (
        "repro database repro_org451_0a1b2c3d of organization 451 expired (2026-12-08 04:30 UTC) and was dropped"
    )
