"""Configuration files and secrets: pure functions, no database.

The guide's two files and the project's own load unchanged; every bad file fails with a ``ConfigError`` that
names the file, the line and the YAML path; secrets resolve from the environment, a file or a literal and
never show up in an error or a log line.
"""

from __future__ import annotations

import os
import re
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

from repro_pipeline.engine.config import (
    CommercialExtensions,
    FakeAction,
    HashAction,
    RegexMaskAction,
    ReproConfig,
    StaticAction,
    load_config,
    read_yaml,
)
from repro_pipeline.engine.errors import ConfigError, SecretError
from repro_pipeline.engine.secrets import MIN_SALT_BYTES, Secret, resolve_salt, resolve_secret
from repro_pipeline_tests.conftest import FIXTURES, PROJECT_ROOT

GUIDE = FIXTURES / "guide"
PROJECT_CONFIG = PROJECT_ROOT / "config"

GUIDE_FILES = (GUIDE / "mask-rules.yaml", GUIDE / "commercial-extensions.yaml")
PROJECT_FILES = (PROJECT_CONFIG / "mask-rules.yaml", PROJECT_CONFIG / "commercial-extensions.yaml")


def _yaml(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def _write(directory: Path, name: str, text: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(text)
    return path


def _load_with(
    tmp_path: Path, *, mask_rules: str | None = None, extensions: str | None = None
) -> ReproConfig:
    """Load the guide's files, with one of them replaced by ``mask_rules`` or ``extensions`` text."""
    config_dir = tmp_path / "config"
    mask_path = (
        _write(config_dir, "mask-rules.yaml", mask_rules) if mask_rules is not None else GUIDE_FILES[0]
    )
    ext_path = (
        _write(config_dir, "commercial-extensions.yaml", extensions)
        if extensions is not None
        else GUIDE_FILES[1]
    )
    return load_config(mask_path, ext_path)


def _error_about(error: ConfigError, path: Path) -> tuple[str, str]:
    """``(position, rest)`` of the first message line that starts with ``path:``.

    ``position`` is ``"12"`` or ``"12:5"`` (line, or line:column) or ``""`` when no line is given. Parsing
    the message this way keeps the assertions independent of ``tmp_path``, whose name may contain any word.
    """
    prefix = f"{path}:"
    for line in str(error).splitlines():
        line = line.strip()
        if line.startswith(prefix):
            rest = line.removeprefix(prefix)
            match = re.match(r"(\d+(?::\d+)?): (.*)", rest)
            if match:
                return match.group(1), match.group(2)
            return "", rest.strip()
    raise AssertionError(f"no line of the error names {path}:\n{error}")


# --- the files users already have load unchanged --------------------------------------------------------


@pytest.mark.parametrize("files", [GUIDE_FILES, PROJECT_FILES], ids=["guide-fixtures", "project-config"])
def test_existing_configuration_files_load_with_the_guides_column_rules(files: tuple[Path, Path]) -> None:
    config = load_config(*files)
    rules = config.mask_rules

    assert rules.version == "1.0"
    assert rules.global_salt == "env://ANONYMIZATION_SALT"
    assert set(rules.tables) == {"public.users", "public.payment_methods"}

    users = rules.tables["public.users"]
    assert users.strategy == "transform"
    assert users.columns["email"] == FakeAction(action="fake", provider="email", seed_alias="user_email")
    assert users.columns["full_name"] == FakeAction(action="fake", provider="full_name")

    payments = rules.tables["public.payment_methods"]
    assert payments.strategy == "transform"
    assert payments.columns["provider_token"] == HashAction(action="hash")
    assert payments.columns["last_four"] == StaticAction(action="static", value="9999")


@pytest.mark.parametrize("files", [GUIDE_FILES, PROJECT_FILES], ids=["guide-fixtures", "project-config"])
def test_existing_configuration_files_load_with_the_guides_json_mask(files: tuple[Path, Path]) -> None:
    extensions = load_config(*files).extensions

    assert extensions.version == "1.0"
    [json_mask] = extensions.json_mask
    assert json_mask.column == "public.audit_events.payload"
    assert [(rule.path, rule.action) for rule in json_mask.paths] == [
        ("$.actor.email", "fake"),
        ("$.actor.ip", "hash"),
        ("$.internal.support_notes", "remove"),
    ]
    actor_email = json_mask.paths[0]
    assert (actor_email.provider, actor_email.seed_alias) == ("email", "user_email")
    assert all(rule.provider is None for rule in json_mask.paths[1:])


def test_guide_subset_roots_use_literal_tenant_451() -> None:
    subset = load_config(*GUIDE_FILES).extensions.subset
    assert [(root.table, root.predicate) for root in subset] == [
        ("public.organizations", "id = 451"),
        ("public.audit_events", "organization_id = 451 AND occurred_at >= now() - interval '90 days'"),
    ]


def test_project_subset_roots_bind_the_tenant_as_a_placeholder() -> None:
    subset = load_config(*PROJECT_FILES).extensions.subset
    assert [(root.table, root.predicate) for root in subset] == [
        ("public.organizations", "id = :organization_id"),
        (
            "public.audit_events",
            "organization_id = :organization_id AND occurred_at >= now() - interval '90 days'",
        ),
    ]


def test_unset_top_level_keys_take_the_documented_defaults() -> None:
    rules = load_config(*GUIDE_FILES).mask_rules
    assert rules.on_existing_data is None  # unset: load --target refuses a target with tables, reruns add one
    assert rules.batch_size == 10_000
    assert (rules.auto_detect, rules.strict_autodetect, rules.audit_log) == (True, False, True)
    assert rules.replicate_all_indexes is False


def test_yaml_document_locates_keys_by_line() -> None:
    doc = read_yaml(GUIDE_FILES[0])
    assert doc.where(["tables", "public.payment_methods", "columns", "last_four"]) == f"{GUIDE_FILES[0]}:14"
    # Keys absent from the document are skipped: the deepest existing node is reported, and a mapping
    # value is reported where its content starts (public.users: is line 5, its strategy: line 6).
    assert doc.where(["tables", "public.users", "nope"]) == f"{GUIDE_FILES[0]}:6"


# --- every bad file says where and what ------------------------------------------------------------------


@dataclass(frozen=True)
class BadFile:
    id: str
    file: str  # "mask_rules" or "extensions"
    text: str
    line: int
    yaml_path: str
    says: tuple[str, ...]


BAD_FILES = [
    BadFile(
        "unknown-top-level-key",
        "mask_rules",
        """
        version: "1.0"
        colour: blue
        """,
        line=2,
        yaml_path="colour",
        says=("unknown key",),
    ),
    BadFile(
        "unknown-top-level-key-in-extensions",
        "extensions",
        """
        version: "1.0"
        subset: []
        notify:
          slack: "#support-repro"
        """,
        line=4,
        yaml_path="notify",
        says=("unknown key",),
    ),
    BadFile(
        "unknown-key-in-a-column-rule",
        "mask_rules",
        """
        version: "1.0"
        tables:
          public.users:
            columns:
              email: { action: fake, provider: email, seed: user_email }
        """,
        line=5,
        yaml_path="tables.public.users.columns.email.seed",
        says=("unknown key",),
    ),
    BadFile(
        "misspelled-action",
        "mask_rules",
        """
        version: "1.0"
        tables:
          public.users:
            columns:
              full_name: { action: fakee, provider: full_name }
        """,
        line=5,
        yaml_path="tables.public.users.columns.full_name",
        says=("unknown action 'fakee'", "'fake'", "'hash'", "'static'", "'null'", "'passthrough'"),
    ),
    BadFile(
        "unknown-provider",
        "mask_rules",
        """
        version: "1.0"
        tables:
          public.users:
            columns:
              email: { action: fake, provider: emial }
        """,
        line=5,
        yaml_path="tables.public.users.columns.email.provider",
        says=("unknown provider 'emial'", "email"),
    ),
    BadFile(
        "top-level-batch-size-not-an-integer",
        "mask_rules",
        """
        version: "1.0"
        batch_size: many
        """,
        line=2,
        yaml_path="batch_size",
        says=("valid integer",),
    ),
    BadFile(
        "table-batch-size-not-an-integer",
        "mask_rules",
        """
        version: "1.0"
        tables:
          public.users:
            batch_size: many
        """,
        line=4,
        yaml_path="tables.public.users.batch_size",
        says=("valid integer",),
    ),
    BadFile(
        "batch-size-zero",
        "mask_rules",
        """
        version: "1.0"
        batch_size: 0
        """,
        line=2,
        yaml_path="batch_size",
        says=("greater than or equal to 1",),
    ),
    BadFile(
        "unknown-strategy",
        "mask_rules",
        """
        version: "1.0"
        tables:
          public.users:
            strategy: skip
        """,
        line=4,
        yaml_path="tables.public.users.strategy",
        says=("'transform'", "'exclude'"),
    ),
    BadFile(
        "unsupported-version",
        "mask_rules",
        """
        version: "2.0"
        """,
        line=1,
        yaml_path="version",
        says=("'2.0' is not supported", 'version: "1.0"'),
    ),
    BadFile(
        "unsupported-version-in-extensions",
        "extensions",
        """
        version: "2.0"
        subset: []
        """,
        line=1,
        yaml_path="version",
        says=("'2.0' is not supported",),
    ),
    BadFile(
        "integer-version",
        "mask_rules",
        """
        version: 1
        """,
        line=1,
        yaml_path="version",
        says=("'1' is not supported",),
    ),
    BadFile(
        "json-path-without-dollar",
        "extensions",
        """
        version: "1.0"
        json_mask:
          - column: public.audit_events.payload
            paths:
              - path: actor.email
                action: hash
        """,
        line=5,
        yaml_path="json_mask.0.paths.0.path",
        says=("'actor.email' must start with $",),
    ),
    BadFile(
        "json-path-syntax",
        "extensions",
        """
        version: "1.0"
        json_mask:
          - column: public.audit_events.payload
            paths:
              - path: $.actor[
                action: hash
        """,
        line=5,
        yaml_path="json_mask.0.paths.0.path",
        says=("'$.actor[' is not a valid JSONPath",),
    ),
    BadFile(
        "param-the-provider-does-not-take",
        "mask_rules",
        """
        version: "1.0"
        tables:
          public.users:
            columns:
              full_name: { action: fake, provider: full_name, params: { domain: example.com } }
        """,
        line=5,
        yaml_path="tables.public.users.columns.full_name",
        says=("provider full_name takes no parameter domain",),
    ),
    BadFile(
        "json-fake-without-provider",
        "extensions",
        """
        version: "1.0"
        json_mask:
          - column: public.audit_events.payload
            paths:
              - path: $.actor.ip
                action: hash
              - path: $.actor.email
                action: fake
                seed_alias: user_email
        """,
        line=7,
        yaml_path="json_mask.0.paths.1",
        says=("action fake needs a provider",),
    ),
    BadFile(
        "json-fake-with-unknown-provider",
        "extensions",
        """
        version: "1.0"
        json_mask:
          - column: public.audit_events.payload
            paths:
              - path: $.actor.email
                action: fake
                provider: emial
        """,
        line=5,
        yaml_path="json_mask.0.paths.0",
        says=("unknown provider 'emial'",),
    ),
    BadFile(
        "json-static-without-value",
        "extensions",
        """
        version: "1.0"
        json_mask:
          - column: public.audit_events.payload
            paths:
              - path: $.actor.ip
                action: static
        """,
        line=5,
        yaml_path="json_mask.0.paths.0",
        says=("action static needs a value",),
    ),
    BadFile(
        "json-hash-with-provider",
        "extensions",
        """
        version: "1.0"
        json_mask:
          - column: public.audit_events.payload
            paths:
              - path: $.actor.ip
                action: hash
                provider: ip_address
        """,
        line=5,
        yaml_path="json_mask.0.paths.0",
        says=("only apply to action fake, not hash",),
    ),
    BadFile(
        "json-mask-without-paths",
        "extensions",
        """
        version: "1.0"
        json_mask:
          - column: public.audit_events.payload
            paths: []
        """,
        line=4,
        yaml_path="json_mask.0.paths",
        says=("at least 1 item",),
    ),
    BadFile(
        "column-static-without-value",
        "mask_rules",
        """
        version: "1.0"
        tables:
          public.payment_methods:
            columns:
              last_four: { action: static }
        """,
        line=5,
        yaml_path="tables.public.payment_methods.columns.last_four",
        says=("required key", "is missing"),
    ),
    BadFile(
        "regex-mask-nested-quantifier",
        "mask_rules",
        """
        version: "1.0"
        tables:
          public.users:
            columns:
              full_name: { action: regex_mask, pattern: "(a+)+", replace: x }
        """,
        line=5,
        yaml_path="tables.public.users.columns.full_name.pattern",
        says=("'(a+)+' can take hours", "catastrophic backtracking", "contains a quantifier"),
    ),
    BadFile(
        "regex-mask-alternation-under-a-star",
        "mask_rules",
        """
        version: "1.0"
        tables:
          public.users:
            columns:
              full_name:
                action: regex_mask
                pattern: "(a|aa)*"
                replace: x
        """,
        line=7,
        yaml_path="tables.public.users.columns.full_name.pattern",
        says=("catastrophic backtracking", "contains an alternation"),
    ),
    BadFile(
        "regex-mask-does-not-compile",
        "mask_rules",
        """
        version: "1.0"
        tables:
          public.users:
            columns:
              full_name:
                action: regex_mask
                pattern: "([a-z]"
                replace: x
        """,
        line=7,
        yaml_path="tables.public.users.columns.full_name.pattern",
        says=("does not compile", "missing ), unterminated subpattern"),
    ),
    BadFile(
        "regex-mask-bad-group-reference",
        "mask_rules",
        """
        version: "1.0"
        tables:
          public.users:
            columns:
              full_name:
                action: regex_mask
                pattern: "(\\\\d+)"
                replace: "\\\\2"
        """,
        line=8,
        yaml_path="tables.public.users.columns.full_name.replace",
        says=("is not a valid replacement", "invalid group reference 2"),
    ),
    BadFile(
        "regex-mask-unknown-flag",
        "mask_rules",
        """
        version: "1.0"
        tables:
          public.users:
            columns:
              full_name:
                action: regex_mask
                pattern: a
                replace: b
                flags: [IGNORECASE, CASELESS]
        """,
        line=9,
        yaml_path="tables.public.users.columns.full_name.flags",
        says=("unknown flag 'CASELESS'", "DOTALL"),
    ),
    BadFile(
        "regex-mask-locale-flag",
        "mask_rules",
        """
        version: "1.0"
        tables:
          public.users:
            columns:
              full_name: { action: regex_mask, pattern: a, replace: b, flags: [locale] }
        """,
        line=5,
        yaml_path="tables.public.users.columns.full_name.flags",
        says=("LOCALE only applies to bytes patterns",),
    ),
    BadFile(
        "regex-mask-without-replace",
        "mask_rules",
        """
        version: "1.0"
        tables:
          public.users:
            columns:
              full_name: { action: regex_mask, pattern: a }
        """,
        line=5,
        yaml_path="tables.public.users.columns.full_name",
        says=("required key 'replace' is missing",),
    ),
    BadFile(
        "normalize-unknown-value",
        "mask_rules",
        """
        version: "1.0"
        tables:
          public.users:
            columns:
              email: { action: fake, provider: email, normalize: upper }
        """,
        line=5,
        yaml_path="tables.public.users.columns.email.normalize",
        says=("'lower'",),
    ),
    BadFile(
        "normalize-on-static",
        "mask_rules",
        """
        version: "1.0"
        tables:
          public.payment_methods:
            columns:
              last_four: { action: static, value: "9999", normalize: lower }
        """,
        line=5,
        yaml_path="tables.public.payment_methods.columns.last_four.normalize",
        says=("unknown key",),
    ),
    BadFile(
        "json-normalize-on-remove",
        "extensions",
        """
        version: "1.0"
        json_mask:
          - column: public.audit_events.payload
            paths:
              - path: $.internal.support_notes
                action: remove
                normalize: lower
        """,
        line=5,
        yaml_path="json_mask.0.paths.0",
        says=("normalize only applies to actions fake and hash, not remove",),
    ),
    BadFile(
        "subset-root-with-empty-predicate",
        "extensions",
        """
        version: "1.0"
        subset:
          - table: public.organizations
            predicate: ""
        """,
        line=4,
        yaml_path="subset.0.predicate",
        says=("at least 1 character",),
    ),
]


@pytest.mark.parametrize("case", BAD_FILES, ids=[case.id for case in BAD_FILES])
def test_invalid_file_names_file_line_yaml_path_and_problem(tmp_path: Path, case: BadFile) -> None:
    with pytest.raises(ConfigError) as raised:
        _load_with(tmp_path, **{case.file: _yaml(case.text)})
    error = raised.value
    bad_path = (
        tmp_path
        / "config"
        / ("mask-rules.yaml" if case.file == "mask_rules" else "commercial-extensions.yaml")
    )

    position, rest = _error_about(error, bad_path)
    assert position == str(case.line)
    yaml_path, _, problem = rest.partition(": ")
    assert yaml_path == case.yaml_path
    for fragment in case.says:
        assert fragment in problem
    assert error.exit_code == 3
    assert bad_path.name in error.remedy


def test_missing_version_is_reported_at_the_top_of_the_file(tmp_path: Path) -> None:
    text = _yaml(
        """
        # no version
        tables: {}
        """
    )
    with pytest.raises(ConfigError) as raised:
        _load_with(tmp_path, mask_rules=text)
    position, rest = _error_about(raised.value, tmp_path / "config" / "mask-rules.yaml")
    assert position == "2"
    assert "required key" in rest
    assert "is missing" in rest
    assert raised.value.exit_code == 3


def test_missing_version_error_names_the_version_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as raised:
        _load_with(tmp_path, mask_rules=_yaml("tables: {}\n"))
    _, rest = _error_about(raised.value, tmp_path / "config" / "mask-rules.yaml")
    assert "version" in rest


def test_static_column_rule_without_value_names_the_value_key(tmp_path: Path) -> None:
    text = _yaml(
        """
        version: "1.0"
        tables:
          public.payment_methods:
            columns:
              last_four: { action: static }
        """
    )
    with pytest.raises(ConfigError) as raised:
        _load_with(tmp_path, mask_rules=text)
    _, rest = _error_about(raised.value, tmp_path / "config" / "mask-rules.yaml")
    assert "value" in rest.partition(": ")[2]


def test_yaml_syntax_error_gives_line_and_column(tmp_path: Path) -> None:
    text = _yaml(
        """
        version: "1.0"
        batch_size: 5: 6
        """
    )
    with pytest.raises(ConfigError) as raised:
        _load_with(tmp_path, mask_rules=text)
    position, rest = _error_about(raised.value, tmp_path / "config" / "mask-rules.yaml")
    assert position == "2:14"  # the second ':' on line 2
    assert rest == "mapping values are not allowed here"
    assert "fix the YAML syntax" in raised.value.remedy
    assert raised.value.exit_code == 3


def test_unclosed_flow_mapping_is_a_syntax_error_with_a_position(tmp_path: Path) -> None:
    text = _yaml(
        """
        version: "1.0"
        tables:
          public.users:
            columns:
              email: { action: hash
        """
    )
    with pytest.raises(ConfigError) as raised:
        _load_with(tmp_path, mask_rules=text)
    position, _ = _error_about(raised.value, tmp_path / "config" / "mask-rules.yaml")
    assert re.fullmatch(r"\d+:\d+", position)


@pytest.mark.parametrize(
    ("text", "line", "key"),
    [
        (
            """
            version: "1.0"
            tables:
              public.users:
                columns:
                  email: { action: hash }
                  email: { action: null }
            """,
            6,
            "email",
        ),
        (
            """
            version: "1.0"
            batch_size: 100
            version: "1.0"
            """,
            3,
            "version",
        ),
    ],
    ids=["duplicate-column", "duplicate-top-level-key"],
)
def test_duplicate_key_is_refused_at_its_second_occurrence(
    tmp_path: Path, text: str, line: int, key: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        _load_with(tmp_path, mask_rules=_yaml(text))
    position, rest = _error_about(raised.value, tmp_path / "config" / "mask-rules.yaml")
    assert position == str(line)
    assert rest == f"key {key!r} appears twice"
    assert raised.value.exit_code == 3


@pytest.mark.parametrize(
    "text",
    ["- version\n- '1.0'\n", "just a sentence\n", "", "# only a comment\n"],
    ids=["list", "scalar", "empty", "comment-only"],
)
def test_top_level_must_be_a_mapping(tmp_path: Path, text: str) -> None:
    with pytest.raises(ConfigError) as raised:
        _load_with(tmp_path, extensions=text)
    position, rest = _error_about(raised.value, tmp_path / "config" / "commercial-extensions.yaml")
    assert position == ""
    assert rest == "the top level must be a mapping"
    assert 'version: "1.0"' in raised.value.remedy
    assert raised.value.exit_code == 3


def test_missing_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "mask-rules.yaml"
    with pytest.raises(ConfigError) as raised:
        load_config(missing, GUIDE_FILES[1])
    position, rest = _error_about(raised.value, missing)
    assert position == ""
    assert rest.startswith("cannot read the file")
    assert "No such file" in rest
    assert raised.value.exit_code == 3


def test_directory_instead_of_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as raised:
        load_config(GUIDE_FILES[0], tmp_path)
    assert str(raised.value).startswith(f"{tmp_path}: cannot read the file")


def test_non_utf8_file_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "mask-rules.yaml"
    path.write_bytes(b'version: "1.0"\nglobal_salt: "\xff\xfe"\n')
    with pytest.raises(ConfigError):
        load_config(path, GUIDE_FILES[1])


def test_only_the_file_at_fault_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as raised:
        _load_with(tmp_path, extensions=_yaml('version: "1.0"\ncolour: blue\n'))
    message = str(raised.value)
    assert str(GUIDE_FILES[0]) not in message
    assert "commercial-extensions.yaml" in message


# --- fingerprint ------------------------------------------------------------------------------------------

REORDERED_MASK_RULES = """
tables:
  public.payment_methods:
    columns:
      last_four: { value: "9999", action: static }
      provider_token: { action: hash }
    strategy: transform
  public.users:
    columns:
      full_name: { provider: full_name, action: fake }
      email: { seed_alias: user_email, provider: email, action: fake }
    strategy: transform
global_salt: env://ANONYMIZATION_SALT
version: "1.0"
"""


def test_fingerprint_ignores_key_order_and_comments(tmp_path: Path) -> None:
    reference = load_config(*GUIDE_FILES).fingerprint()
    reordered = _load_with(tmp_path, mask_rules=REORDERED_MASK_RULES).fingerprint()
    assert reordered == reference
    assert re.fullmatch(r"[0-9a-f]{64}", reference)


def test_fingerprint_is_the_same_for_both_copies_of_the_mask_rules(tmp_path: Path) -> None:
    # The project's mask-rules.yaml differs from the guide's only in its comment.
    assert (
        load_config(PROJECT_FILES[0], GUIDE_FILES[1]).fingerprint() == load_config(*GUIDE_FILES).fingerprint()
    )


@pytest.mark.parametrize(
    ("file", "old", "new"),
    [
        ("mask_rules", 'value: "9999"', 'value: "0000"'),
        ("mask_rules", "provider: full_name", "provider: first_name"),
        ("mask_rules", "seed_alias: user_email", "seed_alias: customer_email"),
        ("mask_rules", "provider_token: { action: hash }", "provider_token: { action: passthrough }"),
        ("extensions", "action: remove", "action: null"),
        ("extensions", "id = 451", "id = 452"),
    ],
    ids=["static-value", "provider", "seed-alias", "action", "json-action", "predicate"],
)
def test_fingerprint_changes_when_a_rule_changes(tmp_path: Path, file: str, old: str, new: str) -> None:
    source = GUIDE_FILES[0] if file == "mask_rules" else GUIDE_FILES[1]
    text = source.read_text()
    assert old in text
    changed = _load_with(tmp_path, **{file: text.replace(old, new, 1)})
    assert changed.fingerprint() != load_config(*GUIDE_FILES).fingerprint()


# --- secrets ----------------------------------------------------------------------------------------------

WHAT = "global_salt in config/mask-rules.yaml"
SECRET_VALUE = "correct-horse-battery-staple-0123456789"


def test_env_reference_reads_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REPRO_TEST_SECRET", SECRET_VALUE)
    assert resolve_secret("env://REPRO_TEST_SECRET", what=WHAT).reveal() == SECRET_VALUE


def test_whole_value_dollar_brace_reads_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REPRO_TEST_SECRET", SECRET_VALUE)
    assert resolve_secret("${REPRO_TEST_SECRET}", what=WHAT).reveal() == SECRET_VALUE


def test_dollar_brace_inside_a_larger_string_is_not_interpolated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REPRO_TEST_SECRET", SECRET_VALUE)
    assert resolve_secret("prefix-${REPRO_TEST_SECRET}", what=WHAT).reveal() == "prefix-${REPRO_TEST_SECRET}"


@pytest.mark.parametrize("ending", ["\n", "\r\n", "\n\n", ""], ids=["lf", "crlf", "two-lf", "none"])
def test_file_reference_reads_a_regular_file_without_trailing_newlines(tmp_path: Path, ending: str) -> None:
    secret_file = tmp_path / "salt"
    secret_file.write_bytes((SECRET_VALUE + ending).encode())
    secret_file.chmod(0o600)
    assert resolve_secret(f"file://{secret_file}", what=WHAT).reveal() == SECRET_VALUE


def test_file_reference_keeps_inner_and_leading_whitespace(tmp_path: Path) -> None:
    secret_file = tmp_path / "salt"
    secret_file.write_text("  two\nlines\n")
    secret_file.chmod(0o600)
    assert resolve_secret(f"file://{secret_file}", what=WHAT).reveal() == "  two\nlines"


def test_plain_string_is_a_literal_secret() -> None:
    assert resolve_secret(SECRET_VALUE, what=WHAT).reveal() == SECRET_VALUE


def _symlink_to_secret(tmp_path: Path) -> str:
    target = tmp_path / "real-salt"
    target.write_text(SECRET_VALUE)
    link = tmp_path / "salt-link"
    link.symlink_to(target)
    return f"file://{link}"


def _readable_by_others(tmp_path: Path) -> str:
    shared = tmp_path / "shared-salt"
    shared.write_text(SECRET_VALUE)
    shared.chmod(0o640)
    return f"file://{shared}"


def _oversized_file(tmp_path: Path) -> str:
    big = tmp_path / "big-salt"
    big.write_text(SECRET_VALUE + "x" * (64 * 1024))
    big.chmod(0o600)
    return f"file://{big}"


SECRET_ERRORS = [
    (
        "env-var-unset",
        lambda tmp_path: "env://REPRO_TEST_UNSET_VARIABLE",
        "REPRO_TEST_UNSET_VARIABLE is not set",
    ),
    (
        "dollar-brace-unset",
        lambda tmp_path: "${REPRO_TEST_UNSET_VARIABLE}",
        "REPRO_TEST_UNSET_VARIABLE is not set",
    ),
    (
        "env-var-empty",
        lambda tmp_path: "env://REPRO_TEST_EMPTY_VARIABLE",
        "REPRO_TEST_EMPTY_VARIABLE is not set or empty",
    ),
    ("env-var-bad-name", lambda tmp_path: "env://1-not-a-name", "not a valid environment variable name"),
    (
        "unknown-scheme",
        lambda tmp_path: f"gcp-sm://projects/{SECRET_VALUE}",
        "secret scheme 'gcp-sm' is not supported",
    ),
    ("relative-file", lambda tmp_path: "file://secrets/salt", "need an absolute path"),
    ("missing-file", lambda tmp_path: f"file://{tmp_path}/no-such-salt", "cannot read secret file"),
    ("symlink", _symlink_to_secret, "symlinks are refused"),
    ("oversized-file", _oversized_file, "larger than 65536 bytes"),
    ("directory", lambda tmp_path: f"file://{tmp_path}", "not a regular file"),
    ("group-readable", _readable_by_others, "readable by group or others (mode 640)"),
    ("proc", lambda tmp_path: "file:///proc/self/environ", "is under /proc or /sys"),
]


@pytest.mark.parametrize(
    ("make_reference", "says"),
    [(make, says) for _, make, says in SECRET_ERRORS],
    ids=[case_id for case_id, _, _ in SECRET_ERRORS],
)
def test_unresolvable_secret_names_the_setting_and_not_the_value(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, make_reference, says: str
) -> None:
    monkeypatch.delenv("REPRO_TEST_UNSET_VARIABLE", raising=False)
    monkeypatch.setenv("REPRO_TEST_EMPTY_VARIABLE", "")
    reference = make_reference(tmp_path)
    with pytest.raises(SecretError) as raised:
        resolve_secret(reference, what=WHAT)
    message = str(raised.value)
    assert message.startswith(f"{WHAT}: ")
    assert says in message
    assert SECRET_VALUE not in message
    assert raised.value.exit_code == 4


def test_binary_secret_file_is_a_secret_error(tmp_path: Path) -> None:
    secret_file = tmp_path / "salt"
    secret_file.write_bytes(b"\xff\xfe" + os.urandom(32))
    secret_file.chmod(0o600)
    with pytest.raises(SecretError, match="is not UTF-8 text"):
        resolve_secret(f"file://{secret_file}", what=WHAT)


def test_literal_secret_containing_scheme_separator_is_not_echoed() -> None:
    literal = "Tr0ub4dor&3-first-half://second-half-of-the-password"
    with pytest.raises(SecretError) as raised:
        resolve_secret(literal, what=WHAT)
    assert "Tr0ub4dor&3-first-half" not in str(raised.value)


def test_salt_shorter_than_32_bytes_is_refused_with_its_own_message() -> None:
    short = "s" * (MIN_SALT_BYTES - 1)
    with pytest.raises(SecretError) as raised:
        resolve_salt(short, what=WHAT)
    message = str(raised.value)
    assert message.startswith(f"{WHAT}: the salt is 31 bytes long; at least 32 are required")
    assert "secrets.token_hex(32)" in raised.value.remedy
    assert short not in message
    assert raised.value.exit_code == 4


def test_salt_length_is_counted_in_bytes_not_characters() -> None:
    assert resolve_salt("é" * 16, what=WHAT).reveal() == "é" * 16  # 16 characters, 32 bytes
    with pytest.raises(SecretError, match="the salt is 30 bytes long"):
        resolve_salt("é" * 15, what=WHAT)


def test_salt_of_exactly_32_bytes_is_accepted() -> None:
    assert resolve_salt("s" * 32, what=WHAT) == Secret("s" * 32)


@pytest.mark.parametrize("reference", [None, ""], ids=["none", "empty"])
def test_salt_falls_back_to_anonymization_salt(
    monkeypatch: pytest.MonkeyPatch, reference: str | None
) -> None:
    monkeypatch.setenv("ANONYMIZATION_SALT", SECRET_VALUE)
    assert resolve_salt(reference, what=WHAT).reveal() == SECRET_VALUE


def test_salt_fallback_without_anonymization_salt_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANONYMIZATION_SALT", raising=False)
    with pytest.raises(SecretError) as raised:
        resolve_salt(None, what=WHAT)
    assert str(raised.value).startswith("ANONYMIZATION_SALT (no global_salt in the config): ")
    assert "export ANONYMIZATION_SALT=" in raised.value.remedy


def test_salt_from_the_guides_env_reference(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANONYMIZATION_SALT", SECRET_VALUE)
    reference = load_config(*GUIDE_FILES).mask_rules.global_salt
    assert resolve_salt(reference, what=WHAT).reveal() == SECRET_VALUE


def test_secret_never_shows_its_value_when_printed() -> None:
    secret = Secret(SECRET_VALUE)
    shown = [
        str(secret),
        repr(secret),
        f"{secret}",
        f"{secret!r}",
        f"{secret!s}",
        "%s" % secret,  # noqa: UP031 - the old formatting path is part of what is checked
        "{}".format(secret),  # noqa: UP032 - likewise
        str([secret]),
        str({"salt": secret}),
    ]
    for text in shown:
        assert SECRET_VALUE not in text
        assert "redacted" in text
    assert secret.reveal() == SECRET_VALUE


def test_secret_fingerprint_is_16_hex_characters_and_tells_secrets_apart() -> None:
    first, second = Secret("a" * 32), Secret("b" * 32)
    assert re.fullmatch(r"[0-9a-f]{16}", first.fingerprint())
    assert first.fingerprint() == Secret("a" * 32).fingerprint()
    assert first.fingerprint() != second.fingerprint()
    assert "a" * 16 not in first.fingerprint()


def test_secrets_compare_by_value() -> None:
    assert Secret("x") == Secret("x")
    assert Secret("x") != Secret("y")
    assert Secret("x") != "x"
    assert len({Secret("x"), Secret("x")}) == 1


# --- regex_mask and normalize ---------------------------------------------------------------------------

NEW_ACTIONS = """
version: "1.0"
tables:
  public.users:
    columns:
      email: { action: fake, provider: email, seed_alias: user_email, normalize: lower }
      full_name:
        action: regex_mask
        pattern: '(?P<first>\\w)\\w*'
        replace: '\\g<first>.'
        flags: [unicode, IGNORECASE, debug]
  public.payment_methods:
    columns:
      provider_token: { action: hash, normalize: lower }
"""


def test_regex_mask_and_normalize_load(tmp_path: Path) -> None:
    rules = _load_with(tmp_path, mask_rules=NEW_ACTIONS).mask_rules
    users = rules.tables["public.users"]
    email, full_name = users.columns["email"], users.columns["full_name"]
    assert email == FakeAction(action="fake", provider="email", seed_alias="user_email", normalize="lower")
    assert isinstance(full_name, RegexMaskAction)
    assert full_name.flags == ["unicode", "IGNORECASE", "debug"]
    compiled = full_name.compiled()
    assert compiled.flags & re.IGNORECASE and compiled.flags & re.UNICODE
    assert compiled.sub(full_name.replace, "Jane Doe") == "J. D."
    assert rules.tables["public.payment_methods"].columns["provider_token"] == HashAction(
        action="hash", normalize="lower"
    )


def test_json_path_rules_take_normalize(tmp_path: Path) -> None:
    text = (
        (GUIDE_FILES[1])
        .read_text()
        .replace(
            "        seed_alias: user_email\n", "        seed_alias: user_email\n        normalize: lower\n"
        )
    )
    assert "normalize: lower" in text
    [json_mask] = _load_with(tmp_path, extensions=text).extensions.json_mask
    assert [rule.normalize for rule in json_mask.paths] == ["lower", None, None]


@pytest.mark.parametrize(
    "pattern",
    [
        r"(a+)+",
        r"(a|aa)*",
        r"(\w+\s?)*",
        r"(?:x+y?)+",
        r"(a|b\d)+?",
        r"((ab)*c)*",
        r"(a+){2,}",
        r"(a+){1,3}",
        r"(a+){2,60}b",
        r"a*a*a*a*b",
        r"\s*\w+",
    ],
)
def test_redos_prone_patterns_are_refused_at_load(tmp_path: Path, pattern: str) -> None:
    text = _yaml(
        f"""
        version: "1.0"
        tables:
          public.users:
            columns:
              full_name: {{ action: regex_mask, pattern: '{pattern}', replace: x }}
        """
    )
    with pytest.raises(ConfigError) as raised:
        _load_with(tmp_path, mask_rules=text)
    position, rest = _error_about(raised.value, tmp_path / "config" / "mask-rules.yaml")
    assert position == "5"
    assert rest.startswith("tables.public.users.columns.full_name.pattern: ")
    assert "catastrophic backtracking" in rest


@pytest.mark.parametrize(
    "pattern",
    [
        r"\d{3}-\d{4}",
        r"(?:a|b)*",
        r"[\w.+-]+@[\w-]+\.[\w.]+",
        r"(a+)*+",
        r"(?>a+)*",
        r"(ab){2}",
        r"\d+-\d+",
        r"a*+a*+b",
    ],
)
def test_safe_patterns_load(tmp_path: Path, pattern: str) -> None:
    text = _yaml(
        f"""
        version: "1.0"
        tables:
          public.users:
            columns:
              full_name: {{ action: regex_mask, pattern: '{pattern}', replace: x }}
        """
    )
    column = _load_with(tmp_path, mask_rules=text).mask_rules.tables["public.users"].columns["full_name"]
    assert isinstance(column, RegexMaskAction)
    assert column.compiled().pattern == pattern


def test_unset_normalize_leaves_the_fingerprint_as_before(tmp_path: Path) -> None:
    # Rules without normalize dump exactly as they did before the key existed.
    config = load_config(*GUIDE_FILES)
    dumped = config.mask_rules.model_dump(mode="json")["tables"]["public.users"]["columns"]["email"]
    assert dumped == {"action": "fake", "provider": "email", "seed_alias": "user_email", "params": {}}
    assert "normalize" not in str(config.extensions.model_dump(mode="json"))
    text = (
        GUIDE_FILES[0]
        .read_text()
        .replace("seed_alias: user_email }", "seed_alias: user_email, normalize: lower }")
    )
    assert "normalize: lower" in text
    assert _load_with(tmp_path, mask_rules=text).fingerprint() != config.fingerprint()


ALIAS_BOMB = _yaml(
    """
    version: "1.0"
    a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]
    b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
    c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
    d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
    e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
    f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]
    g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]
    h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]
    tables: *h
    """
)


def test_a_yaml_alias_bomb_is_refused_before_it_is_expanded(tmp_path: Path) -> None:
    path = _write(tmp_path, "mask-rules.yaml", ALIAS_BOMB)
    with pytest.raises(ConfigError, match="expands to more than 100000 nodes through its aliases"):
        read_yaml(path)


def test_a_few_aliases_are_fine(tmp_path: Path) -> None:
    text = _yaml(
        """
        version: "1.0"
        tables:
          public.users:
            columns:
              email: &email { action: fake, provider: email, seed_alias: user_email }
          public.contacts:
            columns:
              email: *email
        """
    )
    assert read_yaml(_write(tmp_path, "mask-rules.yaml", text)).data["tables"]["public.contacts"]["columns"]


def test_a_recursive_alias_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, "mask-rules.yaml", 'version: "1.0"\ntables: &t {a: *t}\n')
    with pytest.raises(ConfigError, match="expands to more than 100000 nodes"):
        read_yaml(path)


def test_a_config_file_over_one_mib_is_refused_unread(tmp_path: Path) -> None:
    path = _write(tmp_path, "mask-rules.yaml", 'version: "1.0"\n' + "# padding\n" * 110_000)
    with pytest.raises(ConfigError, match="larger than 1024 KiB"):
        read_yaml(path)


def test_a_numeric_version_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="it must be a quoted string"):
        _load_with(tmp_path, mask_rules=_yaml('version: 1.0\nglobal_salt: "${ANONYMIZATION_SALT}"\n'))


# --- virtual foreign keys: a reference held in columns or in JSON ----------------------------------------

JSON_REFERENCE = """
  - table: public.audit_events
    column: payload
    json_path: $.actor.user_id
    references: {table: public.users, columns: [id]}
"""


def _virtual_foreign_keys(tmp_path: Path, entries: str) -> ReproConfig:
    return _load_with(tmp_path, extensions='version: "1.0"\nvirtual_foreign_keys:\n' + entries.lstrip("\n"))


def test_a_reference_held_in_json_loads_with_its_path(tmp_path: Path) -> None:
    (reference,) = _virtual_foreign_keys(tmp_path, JSON_REFERENCE).extensions.virtual_foreign_keys
    assert (reference.column, reference.json_keys, reference.columns) == (
        "payload",
        ("actor", "user_id"),
        None,
    )


def test_a_column_reference_dumps_as_before_the_json_form_existed(tmp_path: Path) -> None:
    config = _virtual_foreign_keys(
        tmp_path,
        "  - {table: public.users, columns: [organization_id], references: {table: public.organizations, columns: [id]}}\n",
    )
    assert config.extensions.model_dump(mode="json")["virtual_foreign_keys"] == [
        {
            "table": "public.users",
            "columns": ["organization_id"],
            "references": {"table": "public.organizations", "columns": ["id"]},
        }
    ]


@pytest.mark.parametrize(
    ("entry", "says"),
    [
        (
            JSON_REFERENCE + "    columns: [actor_id]\n",
            "give either columns .* or column and json_path .*, not both",
        ),
        (JSON_REFERENCE.replace("    column: payload\n    json_path: $.actor.user_id\n", ""), "give columns"),
        (JSON_REFERENCE.replace("    json_path: $.actor.user_id\n", ""), "column needs json_path"),
        (JSON_REFERENCE.replace("    column: payload\n", ""), "json_path needs column"),
        (JSON_REFERENCE.replace("$.actor.user_id", "actor.user_id"), "'actor.user_id' is not supported"),
        (
            JSON_REFERENCE.replace("$.actor.user_id", "$.actors[0].id"),
            "is not supported: .* plain dotted path",
        ),
        (JSON_REFERENCE.replace("$.actor.user_id", "$..user_id"), "is not supported"),
        (JSON_REFERENCE.replace("$.actor.user_id", "$.actor.*"), "is not supported"),
        (JSON_REFERENCE.replace("columns: [id]", "columns: [id, organization_id]"), "one-column key"),
    ],
    ids=[
        "both-forms",
        "neither",
        "no-path",
        "no-column",
        "no-dollar",
        "array-index",
        "descent",
        "wildcard",
        "two-keys",
    ],
)
def test_a_virtual_foreign_key_gives_exactly_one_form(tmp_path: Path, entry: str, says: str) -> None:
    with pytest.raises(ConfigError) as refused:
        _virtual_foreign_keys(tmp_path, entry)
    position, rest = _error_about(refused.value, tmp_path / "config" / "commercial-extensions.yaml")
    assert position == "3", "the error names the entry's line"
    assert rest.startswith("virtual_foreign_keys.0: ")
    assert re.search(says, rest), rest


def test_the_config_schema_describes_the_json_form() -> None:
    schema = CommercialExtensions.model_json_schema()
    properties = schema["$defs"]["VirtualForeignKey"]["properties"]
    assert {"table", "columns", "column", "json_path", "references"} <= set(properties)
    assert "json_path" in schema["$defs"]["VirtualForeignKey"]["description"]
