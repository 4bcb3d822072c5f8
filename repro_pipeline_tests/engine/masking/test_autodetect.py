"""PII auto-detection: name and value rules without a database, then detection and coverage on the standby."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml

from repro_pipeline.embedded.stack import Stack, wait_for_standby_replay
from repro_pipeline.embedded.synthetic import SourceSummary
from repro_pipeline.engine.config import CommercialExtensions, MaskRules, ReproConfig, load_config
from repro_pipeline.engine.errors import ConfigError, PolicyGateFailed
from repro_pipeline.engine.masking.autodetect import (
    Finding,
    classify_value,
    covered_by,
    detect,
    is_card_number,
    json_path_covered,
    judge,
    match_name,
    policy_diff,
    require_covered,
    uncovered,
)
from repro_pipeline.engine.source.catalog import TableName, read_catalog
from repro_pipeline.engine.source.snapshot import open_source_snapshot
from repro_pipeline_tests.conftest import FIXTURES, PROJECT_ROOT

GUIDE_RULES = (PROJECT_ROOT / "config" / "mask-rules.yaml").read_text()
GUIDE_EXTENSIONS = (PROJECT_ROOT / "config" / "commercial-extensions.yaml").read_text()


def _config(tmp_path: Path, rules: str, extensions: str = GUIDE_EXTENSIONS) -> ReproConfig:
    (tmp_path / "mask-rules.yaml").write_text(textwrap.dedent(rules))
    (tmp_path / "commercial-extensions.yaml").write_text(textwrap.dedent(extensions))
    return load_config(tmp_path / "mask-rules.yaml", tmp_path / "commercial-extensions.yaml")


def _strict(rules: str) -> str:
    return rules.replace('version: "1.0"\n', 'version: "1.0"\nstrict_autodetect: true\n', 1)


# --------------------------------------------------------------------------------------------
# value rules
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ("jane.doe@acme.com", "email"),
        ("ysmlena.dunhaldt3@corvandel-logistics-465.example.com", "email"),
        ("+14155550123", "phone"),
        ("+44 20 7946 0958", "phone"),
        ("(415) 555-0123", "phone"),
        ("415-555-0123", "phone"),
        ("+1 415.555.0123", "phone"),
        ("10.0.0.1", "ip_address"),
        ("91.103.85.127", "ip_address"),
        ("192.168.0.0/16", "ip_address"),
        ("2001:db8::1", "ip_address"),
        ("fe80::1ff:fe23:4567:890a", "ip_address"),
        ("4111 1111 1111 1111", "credit_card"),
        ("4242424242424242", "credit_card"),
        ("378282246310005", "credit_card"),
        ("5555-5555-5555-4444", "credit_card"),
        ("123-45-6789", "ssn"),
        ("tok_dedef46ce63630523c8574a2", "token"),
        ("sk_live_4eC39HqLyjWDarjtT1zdp7dc", "token"),
        ("ghp_16C7e42F292c6912E7710c838347Ae178B4a", "token"),
        ("AKIAIOSFODNN7EXAMPLE", "token"),
        (
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
            "token",
        ),
        ("c1a39bc3dd8388644b994f81f296b5c3", "opaque"),
        ("dGhpcyBpcyBhIHRlc3Qgb2YgYmFzZTY0IGVuY29kaW5nMTIz", "opaque"),
    ],
)
def test_value_rules_recognise_pii(value: str, kind: str) -> None:
    assert classify_value(value) == kind


@pytest.mark.parametrize(
    "value",
    [
        "hello world",
        "Acme Corp S.A.",
        "4155550123",  # ten bare digits: an id as often as a phone number
        "2024-01-15",
        "12:30:00",
        "1.2.3",
        "999.1.1.1",
        "4111111111111112",  # fails the Luhn check
        "1234567890123",  # Luhn-valid by chance? no card network starts with 1
        "0000000000000000",
        "SEAT-PRO",
        "team-annual",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36",
        "3533",
        "550e8400-e29b-41d4-a716-446655440000",
        "12345678901234567890123456789012345",  # digits only: not a hex token
        "",
    ],
)
def test_value_rules_leave_ordinary_values_alone(value: str) -> None:
    assert classify_value(value) is None


def test_luhn_check() -> None:
    assert is_card_number("4012888888881881")
    assert not is_card_number("4012888888881882")
    assert not is_card_number("40128888")


# --------------------------------------------------------------------------------------------
# name rules
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "category", "kind"),
    [
        ("email", "text", "email"),
        ("billing_email", "text", "email"),
        ("emailAddress", "text", "email"),
        ("e_mail", "text", "email"),
        ("phone", "text", "phone"),
        ("mobile_number", "text", "phone"),
        ("tel", "text", "phone"),
        ("phone", "number", "phone"),
        ("ssn", "text", "ssn"),
        ("national_id", "text", "ssn"),
        ("first_name", "text", "first_name"),
        ("surname", "text", "last_name"),
        ("full_name", "text", "full_name"),
        ("display_name", "text", "full_name"),
        ("name", "text", "full_name"),
        ("username", "text", "username"),
        ("ip", "text", "ip_address"),
        ("client_ip", "text", "ip_address"),
        ("clientIp", "text", "ip_address"),
        ("ip_address", "inet", "ip_address"),
        ("card_number", "text", "credit_card"),
        ("date_of_birth", "date", "dob"),
        ("dob", "text", "dob"),
        ("street", "text", "street"),
        ("billing_address", "text", "address"),
        ("city", "text", "city"),
        ("zip_code", "text", "postcode"),
        ("country", "text", "country"),
        ("password_hash", "text", "password"),
        ("provider_token", "text", "token"),
        ("api_key", "text", "token"),
        ("client_secret", "text", "token"),
        ("support_notes", "text", "freeform"),
        ("comments", "text", "freeform"),
        ("description", "text", "freeform"),
    ],
)
def test_name_rules(name: str, category: str, kind: str) -> None:
    rule = match_name(name, category)  # type: ignore[arg-type]
    assert rule is not None and rule.kind == kind


@pytest.mark.parametrize(
    ("name", "category"),
    [
        ("email_verified", "other"),  # a boolean
        ("token_count", "number"),
        ("legal_name", "text"),
        ("tenant_slug", "text"),
        ("user_agent", "text"),
        ("hotel", "text"),
        ("zipper", "text"),
        ("mac_address", "text"),
        ("plan_code", "text"),
        ("last_four", "text"),
        ("id", "text"),
        ("created_at", "date"),
        ("full_name", "number"),
    ],
)
def test_names_that_are_not_pii(name: str, category: str) -> None:
    assert match_name(name, category) is None  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------
# name and values together
# --------------------------------------------------------------------------------------------


def _emails(count: int) -> list[str]:
    return [f"person{i}@example.org" for i in range(count)]


def test_values_alone_find_a_column_whatever_its_name() -> None:
    verdict = judge("contact", "text", [*_emails(38), "n/a", "unknown"])
    assert verdict is not None
    assert (verdict.kind, verdict.confidence) == ("email", "high")
    assert verdict.reason == "38 of 40 sampled values look like emails"
    medium = judge("contact", "text", _emails(15) + ["n/a"] * 25)
    assert medium is not None and medium.confidence == "medium"
    assert judge("contact", "text", _emails(5) + ["n/a"] * 35) is None


def test_a_name_match_is_high_unless_the_samples_disagree() -> None:
    agreed = judge("email", "text", _emails(40))
    assert agreed is not None and agreed.confidence == "high"
    assert agreed.reason == "column name matches email; 40 of 40 sampled values look like emails"
    unsampled = judge("full_name", "text", [])
    assert unsampled is not None and (unsampled.confidence, unsampled.reason) == (
        "high",
        "column name matches person name",
    )
    disagreeing = judge("email", "text", ["yes", "no"] * 20)
    assert disagreeing is not None and disagreeing.confidence == "medium"
    assert "0 of 40 sampled values look like emails" in disagreeing.reason


def test_free_text_is_graded_by_what_the_samples_hold() -> None:
    prose = ["Called the customer about the invoice; they will pay on Friday."] * 10
    plain = judge("support_notes", "text", prose, what="key name")
    assert plain is not None and (plain.kind, plain.confidence) == ("freeform", "medium")
    assert plain.reason == "key name matches notes (free text); 10 of 10 sampled values are free text"
    with_email = judge("support_notes", "text", [*prose, "Asked to change the contact to jane@acme.com."])
    assert with_email is not None and with_email.confidence == "high"
    assert "1 of 11 contain an email address" in with_email.reason
    short = judge("note", "text", ["ok", "done"] * 5)
    assert short is not None and short.confidence == "low"
    unnamed = judge("body", "text", [f"Please call me at +1 415 555 01{i:02d} tomorrow" for i in range(10)])
    assert unnamed is not None and (unnamed.kind, unnamed.confidence) == ("freeform", "medium")


def test_opaque_ids_are_reported_low_and_tokens_high() -> None:
    ids = judge("id", "text", ["c1a39bc3dd8388644b994f81f296b5c3"] * 10)
    assert ids is not None and (ids.kind, ids.confidence) == ("opaque", "low")
    tokens = judge("reference", "text", [f"tok_{i:024d}" for i in range(10)])
    assert tokens is not None and (tokens.kind, tokens.confidence) == ("token", "high")


# --------------------------------------------------------------------------------------------
# JSON paths and coverage
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("finding", "rules", "covered"),
    [
        ("$.actor.email", ["$.actor.email"], True),
        ("$.actor.email", ["$.actor.ip"], False),
        ("$.actor.email", ["$..email"], True),
        ("$.actor.email", ["$.*.email"], True),
        ("$.actor.email", ["$.actor"], True),  # masking or removing a parent covers its children
        ("$.internal.support_notes", ["$.internal"], True),
        ("$.items[*].email", ["$.items[*].email"], True),
        ("$.items[*].email", ["$.items[0].email"], False),  # only the first element
        ("$.items[*].email", ["$..email"], True),
        ("$.items[*].email", ["$.items"], True),
        ("$.by_id.*.phone", ["$.by_id.*.phone"], True),
        ("$.by_id.*.phone", ["$.by_id.abc.phone"], False),
        ("$['first name']", ["$['first name']"], True),
        ("$.actor.email", ["$"], False),
        ("$.actor.email", [], False),
    ],
)
def test_json_rules_cover_what_they_select(finding: str, rules: list[str], covered: bool) -> None:
    assert bool(json_path_covered(finding, rules)) is covered


def test_two_rules_can_cover_one_path_together() -> None:
    assert json_path_covered("$.items[*].email", ["$.items[0].email", "$.items[1:].email"]) == [
        "$.items[0].email",
        "$.items[1:].email",
    ]


def _finding(table: str, column: str, path: str | None = None, confidence: str = "high") -> Finding:
    return Finding(
        TableName.parse(table),
        column,
        path,
        "email",
        confidence,  # type: ignore[arg-type]
        "column name matches email",
        {"action": "fake", "provider": "email"},
    )


def test_coverage_by_column_rule_passthrough_strategy_and_json_mask(tmp_path: Path) -> None:
    config = _config(
        tmp_path,
        """
        version: "1.0"
        tables:
          users:
            columns:
              email: { action: passthrough }
          public.invoices:
            strategy: exclude
        """,
    )
    assert covered_by(_finding("public.users", "email"), config) == (
        "mask-rules.yaml tables.users.columns.email: passthrough"
    )
    assert "strategy exclude" in str(covered_by(_finding("public.invoices", "notes"), config))
    actor = _finding("public.audit_events", "payload", "$.actor.email")
    assert covered_by(actor, config) == "commercial-extensions.yaml json_mask[0] $.actor.email: fake"
    assert covered_by(_finding("public.audit_events", "payload", "$.actor.phone"), config) is None
    assert covered_by(_finding("public.users", "full_name"), config) is None


def test_require_covered_names_each_column_its_reason_and_rule(tmp_path: Path) -> None:
    config = _config(tmp_path, _strict('version: "1.0"\n'))
    findings = [
        _finding("public.users", "email"),
        _finding("public.audit_events", "payload", "$.actor.email"),  # covered by json_mask
        _finding("public.audit_events", "payload", "$.contact.email", confidence="medium"),
        _finding("public.users", "nickname", confidence="low"),  # low findings are not gated
    ]
    assert [f.location for f in uncovered(findings, config)] == [
        "public.users.email",
        "public.audit_events.payload $.contact.email",
    ]
    with pytest.raises(PolicyGateFailed) as caught:
        require_covered(findings, config)
    assert caught.value.exit_code == 6
    message = str(caught.value)
    assert f"{tmp_path / 'mask-rules.yaml'}: strict_autodetect is on and 2 PII finding(s)" in message
    assert (
        "public.users.email (high): column name matches email; suggested rule in mask-rules.yaml: "
        "tables.public.users.columns: email: { action: fake, provider: email }"
    ) in message
    assert 'paths: - { path: "$.contact.email", action: fake, provider: email }' in message
    assert "passthrough" in caught.value.remedy
    require_covered(findings[1:2] + findings[3:], config)  # nothing uncovered: no error


def test_suggested_rules_are_valid_config(tmp_path: Path) -> None:
    for finding in (
        Finding(TableName("public", "users"), "notes", None, "freeform", "medium", "r", {"action": "null"}),
        Finding(
            TableName("public", "users"),
            "notes",
            None,
            "freeform",
            "medium",
            "r",
            {"action": "static", "value": "0"},
        ),
        _finding("public.users", "email"),
    ):
        document = yaml.safe_load('version: "1.0"\n' + finding.suggested_yaml())
        rules = MaskRules.model_validate(document)
        assert rules.tables["public.users"].columns[finding.column].action == finding.suggested_rule["action"]
    json_finding = Finding(
        TableName("public", "events"),
        "payload",
        "$.items[*]['e-mail']",
        "email",
        "high",
        "r",
        {"action": "remove"},
    )
    document = yaml.safe_load('version: "1.0"\n' + json_finding.suggested_yaml())
    extensions = CommercialExtensions.model_validate(document)
    assert extensions.json_mask[0].paths[0].path == "$.items[*]['e-mail']"
    assert json_path_covered(json_finding.path or "", [extensions.json_mask[0].paths[0].path])


def test_strict_autodetect_is_supported(tmp_path: Path) -> None:
    config = _config(tmp_path, _strict(GUIDE_RULES))
    assert config.mask_rules.strict_autodetect is True
    with pytest.raises(ConfigError) as caught:
        _config(tmp_path, 'version: "1.0"\nauto_detect: false\nstrict_autodetect: true\n')
    assert f"{tmp_path / 'mask-rules.yaml'}:3: strict_autodetect: true needs auto_detect: true" in str(
        caught.value
    )


# --------------------------------------------------------------------------------------------
# on the standby
# --------------------------------------------------------------------------------------------


def _detect(dsn: str, config: ReproConfig, sample_rows: int = 200) -> list[Finding]:
    with open_source_snapshot(dsn) as snapshot:
        return detect(snapshot.conn, read_catalog(snapshot.conn), config, sample_rows=sample_rows)


@pytest.mark.parametrize("files", ["config", "guide"])
def test_the_guide_rules_cover_the_guide_pii(
    stack: Stack, source: SourceSummary, tmp_path: Path, files: str
) -> None:
    directory = PROJECT_ROOT / "config" if files == "config" else FIXTURES / "guide"
    config = _config(
        tmp_path,
        _strict((directory / "mask-rules.yaml").read_text()),
        (directory / "commercial-extensions.yaml").read_text(),
    )
    findings = _detect(stack.standby_dsn, config)
    found = {f.location: f for f in findings}
    for location, kind in [
        ("public.users.email", "email"),
        ("public.users.full_name", "full_name"),
        ("public.payment_methods.provider_token", "token"),
        ("public.audit_events.payload $.actor.email", "email"),
        ("public.audit_events.payload $.actor.ip", "ip_address"),
        ("public.audit_events.payload $.internal.support_notes", "freeform"),
    ]:
        assert found[location].kind == kind and found[location].confidence == "high", location
        assert covered_by(found[location], config) is not None, location
    assert found["public.users.email"].suggested_rule == {"action": "fake", "provider": "email"}
    assert found["public.payment_methods.provider_token"].suggested_rule == {"action": "hash"}
    assert found["public.audit_events.payload $.internal.support_notes"].suggested_rule == {
        "action": "remove"
    }
    assert "sampled values look like emails" in found["public.audit_events.payload $.actor.email"].reason
    assert uncovered(findings, config) == []
    require_covered(findings, config)
    assert policy_diff(findings, config)["strict_passed"] is True


def test_findings_and_the_diff_never_hold_a_sampled_value(
    stack: Stack, source: SourceSummary, tmp_path: Path
) -> None:
    config = _config(tmp_path, _strict('version: "1.0"\n'), 'version: "1.0"\n')
    findings = _detect(stack.standby_dsn, config, sample_rows=500)
    diff = json.dumps(policy_diff(findings, config))
    with psycopg.connect(stack.standby_dsn) as conn:
        emails = [str(row[0]) for row in conn.execute("SELECT email FROM users")]
        names = [str(row[0]) for row in conn.execute("SELECT full_name FROM users")]
        tokens = [str(row[0]) for row in conn.execute("SELECT provider_token FROM payment_methods")]
        ips = [
            str(row[0])
            for row in conn.execute("SELECT DISTINCT payload #>> '{actor,ip}' FROM audit_events LIMIT 2000")
            if row[0]
        ]
    for value in emails + names + tokens + ips:
        assert value not in diff
    assert {f.location for f in uncovered(findings, config)} >= {
        "public.users.email",
        "public.users.full_name",
        "public.payment_methods.provider_token",
        "public.audit_events.payload $.actor.email",
    }


PII_SCHEMA = """
CREATE TABLE contacts (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    reference text,
    handle text,
    note text,
    login_ip inet,
    mobile text,
    card text,
    email_verified boolean NOT NULL DEFAULT false,
    email_domain text GENERATED ALWAYS AS (split_part(reference, '@', 2)) STORED,
    birth_date date,
    profile jsonb
);
INSERT INTO contacts (reference, handle, note, login_ip, mobile, card, birth_date, profile)
SELECT 'user' || g || '@example.org',
       'h' || g,
       CASE WHEN g % 3 = 0 THEN 'Customer asked to call back on +1 415 555 01' || lpad((g % 100)::text, 2, '0') END,
       ('10.1.' || (g % 250) || '.' || (1 + g % 200))::inet,
       '+1 (415) 555-' || lpad((g % 10000)::text, 4, '0'),
       CASE WHEN g % 2 = 0 THEN '4111 1111 1111 1111' ELSE '5555 5555 5555 4444' END,
       date '1980-01-01' + g,
       jsonb_build_object(
           'emails', jsonb_build_array('a' || g || '@example.org', 'b' || g || '@example.org'),
           'devices', jsonb_build_object(g::text, jsonb_build_object('phone', '+4420794609' || lpad((g % 100)::text, 2, '0'))),
           'api', jsonb_build_object('key', 'sk_live_' || md5(g::text)),
           'plan', 'team'
       )
FROM generate_series(1, 20000) AS g;
CREATE TABLE secrets_kept_out (id int PRIMARY KEY, email text);
INSERT INTO secrets_kept_out VALUES (1, 'kept@example.org');
ANALYZE;
"""


@pytest.fixture(scope="module")
def pii_source(stack: Stack) -> Iterator[str]:
    """A schema unlike the guide's, with PII where the names do not say so, inet, arrays in JSON."""
    with psycopg.connect(stack.primary_dsn, autocommit=True) as admin:
        admin.execute("DROP DATABASE IF EXISTS pii_detect")
        admin.execute("CREATE DATABASE pii_detect")
    with psycopg.connect(stack.dsn("primary", "pii_detect"), autocommit=True) as conn:
        conn.execute(PII_SCHEMA)
    wait_for_standby_replay(stack, timeout=30)
    yield stack.dsn("standby", "pii_detect")
    with psycopg.connect(stack.primary_dsn, autocommit=True) as admin:
        admin.execute("DROP DATABASE pii_detect WITH (FORCE)")


def test_detection_on_another_schema(pii_source: str, tmp_path: Path) -> None:
    config = _config(
        tmp_path,
        """
        version: "1.0"
        tables:
          public.secrets_kept_out:
            strategy: exclude
        """,
        'version: "1.0"\n',
    )
    findings = _detect(pii_source, config, sample_rows=100)  # 20,000 rows: TABLESAMPLE
    found = {f.location: f for f in findings}
    expected = {
        "public.contacts.reference": ("email", "high", {"action": "fake", "provider": "email"}),
        "public.contacts.note": ("freeform", "high", {"action": "null"}),
        "public.contacts.login_ip": ("ip_address", "high", {"action": "fake", "provider": "ip_address"}),
        "public.contacts.mobile": ("phone", "high", {"action": "fake", "provider": "phone"}),
        "public.contacts.card": ("credit_card", "high", {"action": "fake", "provider": "credit_card"}),
        "public.contacts.birth_date": ("dob", "high", {"action": "fake", "provider": "dob"}),
        "public.contacts.profile $.emails[*]": ("email", "high", {"action": "fake", "provider": "email"}),
        "public.contacts.profile $.devices.*.phone": (
            "phone",
            "high",
            {"action": "fake", "provider": "phone"},
        ),
        "public.contacts.profile $.api.key": ("token", "high", {"action": "hash"}),
    }
    for location, (kind, confidence, rule) in expected.items():
        assert (found[location].kind, found[location].confidence, dict(found[location].suggested_rule)) == (
            kind,
            confidence,
            rule,
        ), location
    assert (
        "100 of 100 sampled values look like card numbers (Luhn-valid)"
        in found["public.contacts.card"].reason
    )
    # not PII, a boolean, a generated column, and a table that copies no rows
    for location in (
        "public.contacts.handle",
        "public.contacts.email_verified",
        "public.contacts.email_domain",
        "public.contacts.profile $.plan",
        "public.secrets_kept_out.email",
    ):
        assert location not in found
    assert not any(f.path and any(ch.isdigit() for ch in f.path) for f in findings)  # dynamic keys are *


class _Recording:
    """A connection that records the statements run through it."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn, self.statements = conn, list[str]()

    def execute(self, query: Any, params: Any = None) -> Any:
        self.statements.append(query if isinstance(query, str) else query.as_string(self.conn))
        return self.conn.execute(query, params)


def test_sampling_reads_a_bounded_repeatable_sample_and_never_writes(pii_source: str, tmp_path: Path) -> None:
    config = _config(tmp_path, 'version: "1.0"\n', 'version: "1.0"\n')
    with open_source_snapshot(pii_source) as snapshot:
        catalog = read_catalog(snapshot.conn)
        recording = _Recording(snapshot.conn)
        first = detect(recording, catalog, config, sample_rows=50)  # type: ignore[arg-type]
        assert snapshot.conn.read_only is True
    assert all(statement.lstrip().startswith("SELECT") for statement in recording.statements)
    sampled = [statement for statement in recording.statements if '"contacts"' in statement]
    assert len(sampled) == 1 and "TABLESAMPLE SYSTEM" in sampled[0] and "LIMIT" in sampled[0]
    assert first == _detect(pii_source, config, sample_rows=50)
    reference = next(f for f in first if f.location == "public.contacts.reference")
    assert reference.reason == "50 of 50 sampled values look like emails"


def test_json_keys_that_may_be_data_never_reach_a_finding_path() -> None:
    from repro_pipeline.engine.masking.autodetect import _detect_json
    from repro_pipeline.engine.source.catalog import TableName

    documents = [{"contacts": {"Jane Doe": f"jane{n}@corp.com", "x@y.com": "a"}} for n in range(20)]
    paths = [finding.path for finding in _detect_json(TableName("public", "t"), "payload", documents)]
    assert paths and all("Jane" not in str(path) and "@" not in str(path) for path in paths)


def test_deep_array_paths_fail_closed_instead_of_exploding() -> None:
    from repro_pipeline.engine.masking.autodetect import json_path_covered

    assert json_path_covered("$" + "[*]" * 12 + ".email", ["$..email"]) == []
    assert json_path_covered("$" + "[*]" * 8 + ".email", ["$..email"]) == ["$..email"]
