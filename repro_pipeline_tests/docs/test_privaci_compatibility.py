"""docs/privaci-compatibility.md is what the engine does: each table is compared with the configuration's JSON
Schema (or the engine's list) and with the refusals, and every refused key is refused with its own message."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from repro_pipeline.engine import secrets
from repro_pipeline.engine.config import (
    REFUSED_ACTION_KEYS,
    REFUSED_ACTIONS,
    REFUSED_PROVIDERS,
    REFUSED_TABLE_KEYS,
    REFUSED_TOP_LEVEL_KEYS,
    CommercialExtensions,
    MaskRules,
    Refusal,
    load_config,
)
from repro_pipeline.engine.errors import ConfigError, SecretError
from repro_pipeline.engine.masking.providers import PROVIDERS

PAGE = Path(__file__).resolve().parents[2] / "docs" / "privaci-compatibility.md"
ACCEPTED = {"supported", "supported, differs", "ours", "accepted, not yet acted on (issue 13)"}
REFUSED = {"refused", "not applicable"}
_ROW = re.compile(r"^\| `([^`]+)` \| ([^|]+?) \|")

Table = dict[str, str]  # key -> status


def page_tables(text: str) -> dict[str, Table]:
    """Each ``## `` section's table: key -> status."""
    tables: dict[str, Table] = {}
    section = ""
    for line in text.splitlines():
        if line.startswith("## "):
            section = line.removeprefix("## ").strip()
        elif (row := _ROW.match(line)) and section:
            tables.setdefault(section, {})[row.group(1)] = row.group(2).strip()
    return tables


def drift(table: Table, accepted: set[str], refused: set[str]) -> list[str]:
    """What the page says that the engine does not do, and what the engine has that the page lacks."""
    problems = [
        f"{key}: unknown status {status!r}"
        for key, status in table.items()
        if status not in ACCEPTED | REFUSED
    ]
    page_accepted = {key for key, status in table.items() if status in ACCEPTED}
    page_refused = {key for key, status in table.items() if status in REFUSED}
    problems += [
        f"{key}: accepted by the engine, not on the page as accepted"
        for key in sorted(accepted - page_accepted)
    ]
    problems += [
        f"{key}: on the page as accepted, not accepted by the engine"
        for key in sorted(page_accepted - accepted)
    ]
    problems += [
        f"{key}: refused by name, not on the page as refused" for key in sorted(refused - page_refused)
    ]
    problems += [
        f"{key}: on the page as refused, not refused by name" for key in sorted(page_refused - refused)
    ]
    return problems


def _defs(schema: Mapping[str, Any]) -> Mapping[str, Any]:
    defs: Mapping[str, Any] = schema["$defs"]
    return defs


def _properties(schema: Mapping[str, Any], name: str | None = None) -> set[str]:
    return set((schema if name is None else _defs(schema)[name])["properties"])


def _engine_tables() -> dict[str, tuple[set[str], set[str]]]:
    """Per section of the page: (what the engine accepts, what it refuses by name)."""
    rules, extensions = MaskRules.model_json_schema(), CommercialExtensions.model_json_schema()
    actions = _defs(rules)["TableRules"]["properties"]["columns"]["additionalProperties"]["discriminator"]
    action_models = {reference.rsplit("/", 1)[-1] for reference in actions["mapping"].values()}
    action_keys = set().union(*(_properties(rules, model) for model in action_models))
    return {
        "mask-rules.yaml: top-level keys": (_properties(rules), set(REFUSED_TOP_LEVEL_KEYS)),
        "mask-rules.yaml: table keys": (_properties(rules, "TableRules"), set(REFUSED_TABLE_KEYS)),
        "mask-rules.yaml: column actions": (set(actions["mapping"]), set(REFUSED_ACTIONS)),
        "mask-rules.yaml: action keys": (action_keys, set(REFUSED_ACTION_KEYS)),
        "fake providers": (set(PROVIDERS), set(REFUSED_PROVIDERS)),
        "secret schemes": (
            {"literal", "${VAR}", *(f"{scheme}://" for scheme in secrets.SUPPORTED_SCHEMES)},
            {"postgres://"},
        ),
        "commercial-extensions.yaml: top-level keys": (_properties(extensions), set()),
        "commercial-extensions.yaml: subset entries": (_properties(extensions, "SubsetRoot"), set()),
        "commercial-extensions.yaml: json_mask entries": (_properties(extensions, "JsonMask"), set()),
        "commercial-extensions.yaml: json_mask path keys": (_properties(extensions, "JsonPathRule"), set()),
        "commercial-extensions.yaml: json_mask path actions": (
            set(_defs(extensions)["JsonPathRule"]["properties"]["action"]["enum"]),
            set(),
        ),
    }


def test_every_table_of_the_page_matches_the_engine() -> None:
    tables, engine = page_tables(PAGE.read_text(encoding="utf-8")), _engine_tables()
    assert set(tables) == set(engine)
    for section, (accepted, refused) in engine.items():
        assert drift(tables[section], accepted, refused) == [], section


def test_a_key_missing_from_the_page_or_from_the_engine_is_reported() -> None:
    table = {"version": "supported", "gone": "supported", "old": "refused", "odd": "maybe"}
    assert drift(table, {"version", "new"}, {"old", "also_refused"}) == [
        "odd: unknown status 'maybe'",
        "new: accepted by the engine, not on the page as accepted",
        "gone: on the page as accepted, not accepted by the engine",
        "also_refused: refused by name, not on the page as refused",
    ]


def _load(tmp_path: Path, rules: dict[str, Any]) -> None:
    (tmp_path / "mask-rules.yaml").write_text(yaml.safe_dump(rules))
    (tmp_path / "ext.yaml").write_text('version: "1.0"\n')
    load_config(tmp_path / "mask-rules.yaml", tmp_path / "ext.yaml")


def _column(rule: dict[str, Any]) -> dict[str, Any]:
    return {"version": "1.0", "tables": {"public.users": {"columns": {"email": rule}}}}


REFUSED_IN_FILES = [
    *(
        (f"top:{key}", {"version": "1.0", key: "x"}, f"key {key!r}", refusal)
        for key, refusal in REFUSED_TOP_LEVEL_KEYS.items()
    ),
    *(
        (f"table:{key}", {"version": "1.0", "tables": {"public.users": {key: True}}}, f"key {key!r}", refusal)
        for key, refusal in REFUSED_TABLE_KEYS.items()
    ),
    *(
        (f"action:{key}", _column({"action": key}), f"action {key!r}", refusal)
        for key, refusal in REFUSED_ACTIONS.items()
    ),
    *(
        (
            f"action-key:{key}",
            _column({"action": "fake", "provider": "email", key: "x"}),
            f"key {key!r}",
            refusal,
        )
        for key, refusal in REFUSED_ACTION_KEYS.items()
    ),
    *(
        (f"provider:{key}", _column({"action": "fake", "provider": key}), f"provider {key!r}", refusal)
        for key, refusal in REFUSED_PROVIDERS.items()
    ),
]


@pytest.mark.parametrize(
    ("rules", "what", "refusal"),
    [case[1:] for case in REFUSED_IN_FILES],
    ids=[case[0] for case in REFUSED_IN_FILES],
)
def test_each_refused_privaci_key_is_refused_with_its_reason_and_alternative(
    tmp_path: Path, rules: dict[str, Any], what: str, refusal: Refusal
) -> None:
    with pytest.raises(ConfigError) as raised:
        _load(tmp_path, rules)
    assert refusal.message(what) in str(raised.value)
    assert "unknown key" not in str(raised.value)


def test_append_is_refused_with_the_policies_to_use_instead(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"append is not supported: .*use fail, truncate or drop_create"):
        _load(tmp_path, {"version": "1.0", "on_existing_data": "append"})
    _load(tmp_path, {"version": "1.0", "on_existing_data": "drop_create"})


def test_an_unknown_key_that_is_no_privaci_key_stays_unknown(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="global_slat: unknown key"):
        _load(tmp_path, {"version": "1.0", "global_slat": "x"})


@pytest.mark.parametrize("scheme", ["postgres", "postgresql", "gcp-sm"])
def test_refused_secret_schemes_are_named(scheme: str) -> None:
    with pytest.raises(SecretError, match=f"secret scheme {scheme!r} is not supported"):
        secrets.resolve_secret(f"{scheme}://somewhere/secret-value", what="global_salt")


@pytest.mark.parametrize("entry", ["members.account_id", "app..account_id", "a.b.c.d"])
def test_implied_fk_ignore_entries_are_schema_table_column(tmp_path: Path, entry: str) -> None:
    with pytest.raises(ConfigError, match=r"is not a column written as schema.table.column"):
        _load(tmp_path, {"version": "1.0", "implied_fk_ignore": [entry]})
    _load(tmp_path, {"version": "1.0", "implied_fk_ignore": ["app.members.account_id"]})


def test_null_orphan_fks_true_is_accepted_and_false_refused(tmp_path: Path) -> None:
    _load(tmp_path, {"version": "1.0", "tables": {"public.users": {"null_orphan_fks": True}}})
    with pytest.raises(ConfigError, match="false is not supported: a reference to a table that gets no rows"):
        _load(tmp_path, {"version": "1.0", "tables": {"public.users": {"null_orphan_fks": False}}})


def test_keys_added_for_privaci_are_left_out_of_dumps_when_unset(tmp_path: Path) -> None:
    """Config fingerprints of files written before these keys existed stay as they were."""
    (tmp_path / "ext.yaml").write_text('version: "1.0"\n')
    (tmp_path / "mask-rules.yaml").write_text('version: "1.0"\ntables:\n  public.users: {strategy: empty}\n')
    plain = load_config(tmp_path / "mask-rules.yaml", tmp_path / "ext.yaml")
    dumped = plain.mask_rules.model_dump(mode="json")
    assert "pseudonym_key" not in dumped and "implied_fk_ignore" not in dumped
    assert "null_orphan_fks" not in dumped["tables"]["public.users"]
    (tmp_path / "mask-rules.yaml").write_text(
        'version: "1.0"\npseudonym_key: env://PSEUDONYM_KEY\nimplied_fk_ignore: [public.users.org_id]\n'
        "tables:\n  public.users: {strategy: empty, null_orphan_fks: true}\n"
    )
    keyed = load_config(tmp_path / "mask-rules.yaml", tmp_path / "ext.yaml")
    dumped = keyed.mask_rules.model_dump(mode="json")
    assert dumped["pseudonym_key"] == "env://PSEUDONYM_KEY"
    assert dumped["implied_fk_ignore"] == ["public.users.org_id"]
    assert dumped["tables"]["public.users"]["null_orphan_fks"] is True
    assert keyed.fingerprint() != plain.fingerprint()
