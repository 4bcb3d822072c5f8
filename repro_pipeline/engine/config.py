"""The two configuration files our users already have: ``mask-rules.yaml`` and ``commercial-extensions.yaml``.

Both load unchanged from the PrivaCI formats. Validation is strict (unknown keys, actions or versions are
errors) and every error names the file, the line and the YAML path at fault.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import yaml
from jsonpath_ng.ext import parse as parse_jsonpath
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_serializer,
    model_validator,
)

from repro_pipeline.engine.errors import ConfigError
from repro_pipeline.engine.masking import regex
from repro_pipeline.engine.masking.providers import PROVIDER_PARAMS, PROVIDERS
from repro_pipeline.engine.subset.predicate import check_predicate

SUPPORTED_VERSION = "1.0"
ModelT = TypeVar("ModelT", bound=BaseModel)


@dataclass(frozen=True)
class Refusal:
    """Why a PrivaCI key, action or provider is refused here, and what to write instead."""

    reason: str
    alternative: str

    def message(self, what: str) -> str:
        return f"{what} is not supported: {self.reason}; {self.alternative}"


_ALWAYS_REPLICATED = Refusal(
    "the repro database's schema is always the source's as pg_dump writes it (views, functions, triggers, "
    "materialized views without their rows; triggers created after the rows are loaded)",
    "remove the key",
)

# PrivaCI keys and actions refused with their own message (docs/privaci-compatibility.md lists each);
# any other unknown key stays "unknown key".
REFUSED_TOP_LEVEL_KEYS: Mapping[str, Refusal] = {
    "schema_mode": Refusal(
        "a repro database is always a new database whose schema is replicated from the source",
        "remove the key",
    ),
    "passthrough_copy": Refusal(
        "every table is copied with COPY in text format, masked or not", "remove the key"
    ),
    "replicate_views": _ALWAYS_REPLICATED,
    "replicate_functions": _ALWAYS_REPLICATED,
    "replicate_triggers": _ALWAYS_REPLICATED,
    "replicate_materialized_views": _ALWAYS_REPLICATED,
    "refresh_materialized_views": Refusal(
        "materialized views are created as pg_dump writes them, and are not refreshed",
        "remove the key, and run REFRESH MATERIALIZED VIEW on the repro database when you need their rows",
    ),
    "elevated_objects": Refusal(
        "SECURITY DEFINER functions and views are replicated as the source has them (pg_dump's schema), "
        "owned by the target's admin role",
        "remove the key",
    ),
}
REFUSED_TABLE_KEYS: Mapping[str, Refusal] = {}
REFUSED_ACTIONS: Mapping[str, Refusal] = {
    "ai_refine": Refusal(
        "no language model is called on the tenant's data", "use fake, hash, static or null"
    ),
}
REFUSED_ACTION_KEYS: Mapping[str, Refusal] = {
    "when": Refusal(
        "conditional masking (a CEL expression per row) is not built",
        "mask the whole column, or use regex_mask to mask only the values of a given shape",
    ),
    "model": Refusal("it is a key of action ai_refine, which is refused", "remove it"),
}
REFUSED_PROVIDERS: Mapping[str, Refusal] = {
    "password": Refusal("it gives one constant", "use action: static with the value you want"),
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


def _check_provider(name: str) -> str:
    if name in REFUSED_PROVIDERS:
        raise ValueError(REFUSED_PROVIDERS[name].message(f"provider {name!r}"))
    if name not in PROVIDERS:
        raise ValueError(f"unknown provider {name!r}; known providers: {', '.join(sorted(PROVIDERS))}")
    return name


def _check_params(provider: str, params: dict[str, str]) -> None:
    unknown = sorted(set(params) - set(PROVIDER_PARAMS.get(provider, ())))
    if unknown:
        accepted = ", ".join(PROVIDER_PARAMS.get(provider, ())) or "none"
        raise ValueError(
            f"provider {provider} takes no parameter {', '.join(unknown)} (it accepts: {accepted})"
        )


def _check_jsonpath(path: str) -> str:
    try:
        parse_jsonpath(path)
    except Exception as exc:  # jsonpath-ng raises several exception types for bad syntax
        raise ValueError(f"{path!r} is not a valid JSONPath: {exc}") from None
    return path


Normalize = Literal["lower"]


def _without_unset(data: dict[str, Any], defaults: Mapping[str, Any]) -> dict[str, Any]:
    """``data`` without the keys that hold their default: keys added since, left out of dumps when unset, so
    the config fingerprints of existing files stay as they were."""
    return {key: value for key, value in data.items() if key not in defaults or value != defaults[key]}


class _NormalizeOmittedWhenUnset(_Strict):
    """``normalize`` is left out of dumps when unset, so config fingerprints of existing files stay as they were."""

    normalize: Normalize | None = None
    """`lower`: lower-case the original before it seeds the fake or the hash, so `A@x.com` and `a@x.com` mask
    alike."""

    @model_serializer(mode="wrap")
    def _without_unset_normalize(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        if self.normalize is None:
            data.pop("normalize", None)
        return data


class FakeAction(_NormalizeOmittedWhenUnset):
    action: Literal["fake"]
    """Replace with a deterministic fake value (seeded by the salt and the original)."""
    provider: str
    """The fake's kind (for example `email`, `full_name`, `phone`); `repro-pipeline validate` lists the known
    ones when it is wrong."""
    seed_alias: str | None = None
    """Columns sharing an alias get the same fake for the same original (joins keep working)."""
    params: dict[str, str] = Field(default_factory=dict)
    """The provider's parameters; an unknown one is refused."""

    _provider = field_validator("provider")(_check_provider)

    @model_validator(mode="after")
    def _known_params(self) -> FakeAction:
        _check_params(self.provider, self.params)
        return self


class HashAction(_NormalizeOmittedWhenUnset):
    action: Literal["hash"]
    """Replace with a keyed hash of the original (HMAC with the salt)."""


class PseudonymAction(_NormalizeOmittedWhenUnset):
    action: Literal["pseudonym"]
    """Replace with a deterministic fake value seeded by the pseudonym key (not the salt)."""
    provider: str
    """The fake's kind, as for `fake`."""
    seed_alias: str | None = None
    """Columns sharing an alias get the same pseudonym for the same original."""
    params: dict[str, str] = Field(default_factory=dict)
    """The provider's parameters; an unknown one is refused."""

    _provider = field_validator("provider")(_check_provider)

    @model_validator(mode="after")
    def _known_params(self) -> PseudonymAction:
        _check_params(self.provider, self.params)
        return self


class HmacHashAction(_Strict):
    action: Literal["hmac_hash"]
    """Replace with HMAC-SHA256 keyed by the pseudonym key over the column's path and the original: the same
    original hashes differently in another column."""
    encoding: Literal["hex", "base64url"] = "hex"
    """`hex` (64 characters) or `base64url` (43 characters, unpadded)."""


class RegexMaskAction(_Strict):
    """``re.sub(pattern, replace, value)``; compiled and checked for catastrophic shapes at load."""

    action: Literal["regex_mask"]
    """Replace what a regular expression matches."""
    flags: list[str] = Field(default_factory=list)  # validated before pattern, which compiles with them
    """Python `re` flag names, for example `IGNORECASE`."""
    pattern: str
    """The regular expression; refused when it can backtrack catastrophically."""
    replace: str
    """The replacement (`re.sub` syntax)."""

    @field_validator("flags")
    @classmethod
    def _known_flags(cls, flags: list[str]) -> list[str]:
        regex.flag_bits(flags)
        return flags

    @field_validator("pattern")
    @classmethod
    def _safe_pattern(cls, pattern: str, info: ValidationInfo) -> str:
        if "flags" in info.data:
            regex.compile_pattern(pattern, regex.flag_bits(info.data["flags"]))
        return pattern

    @field_validator("replace")
    @classmethod
    def _valid_replacement(cls, replace: str, info: ValidationInfo) -> str:
        if "flags" in info.data and "pattern" in info.data:
            compiled = regex.compile_pattern(info.data["pattern"], regex.flag_bits(info.data["flags"]))
            regex.check_replacement(compiled, replace)
        return replace

    def compiled(self) -> re.Pattern[str]:
        return regex.compile_pattern(self.pattern, regex.flag_bits(self.flags))


NerEntity = Literal["PERSON", "ORG", "GPE", "LOC"]
NER_ENTITIES: tuple[NerEntity, ...] = ("PERSON", "ORG", "GPE", "LOC")


class NerMaskAction(_Strict):
    action: Literal["ner_mask"]
    """Free text: replace, inside the text, the run's masked originals (by their columns' fakes), detected
    emails, phone numbers, IP addresses and card numbers (by fakes of their kind), and with spaCy installed
    the named entities."""
    entities: list[NerEntity] = Field(default_factory=lambda: list(NER_ENTITIES))
    """The spaCy entity labels replaced when spaCy and its `en_core_web_sm` model are installed (`PERSON`,
    `ORG`, `GPE`, `LOC`); ignored without them."""


class StaticAction(_Strict):
    action: Literal["static"]
    """Replace every value with one constant."""
    value: str
    """The constant."""


class NullAction(_Strict):
    action: Literal["null"]
    """Write NULL (the column must be nullable)."""


class PassthroughAction(_Strict):
    action: Literal["passthrough"]
    """Copy as it is, on purpose: covers the column for the policy gate."""


AnyColumnAction = (
    FakeAction
    | HashAction
    | PseudonymAction
    | HmacHashAction
    | RegexMaskAction
    | NerMaskAction
    | StaticAction
    | NullAction
    | PassthroughAction
)
ColumnAction = Annotated[AnyColumnAction, Field(discriminator="action")]


def _unquoted_null_action(rule: Any) -> Any:
    """YAML reads an unquoted ``action: null`` as no value; it means the ``null`` action."""
    if isinstance(rule, dict) and "action" in rule and rule["action"] is None:
        return {**rule, "action": "null"}
    return rule


class TableRules(_Strict):
    strategy: Literal["transform", "exclude", "empty", "truncate"] = "transform"
    """`transform`: copy the closure's rows, masked; `exclude`: do not create the table; `empty` / `truncate`:
    create it without rows. Only `transform` tables are traversed."""
    columns: dict[str, ColumnAction] = Field(default_factory=dict)
    """Masking action per column; a column without one is copied as it is."""
    batch_size: int | None = Field(default=None, ge=1)
    """Rows per masking batch for this table (the file's `batch_size` otherwise)."""
    null_orphan_fks: bool | None = None
    """PrivaCI's key, always on here: a reference of this table to a table that gets no rows (`exclude`,
    `empty`, `truncate`) is written as NULL where its column allows it (the plan lists each); `false` is
    refused."""

    @field_validator("null_orphan_fks")
    @classmethod
    def _orphans_always_nulled(cls, value: bool | None) -> bool | None:
        if value is False:
            raise ValueError(
                "false is not supported: a reference to a table that gets no rows is always written as NULL "
                "where its column allows it, and refused where it is NOT NULL; remove the key"
            )
        return value

    @model_serializer(mode="wrap")
    def _new_keys_omitted_when_unset(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        return _without_unset(handler(self), {"null_orphan_fks": None})

    @field_validator("columns", mode="before")
    @classmethod
    def _null_actions(cls, columns: Any) -> Any:
        if isinstance(columns, dict):
            return {name: _unquoted_null_action(rule) for name, rule in columns.items()}
        return columns


def _check_version(value: Any) -> str:
    text = str(value)
    if not isinstance(value, str):
        raise ValueError(
            f"version {text!r} is not supported: it must be a quoted string, as in "
            f'version: "{SUPPORTED_VERSION}" (YAML reads 1.0 unquoted as a number)'
        )
    if text != SUPPORTED_VERSION:
        raise ValueError(
            f'version {text!r} is not supported; this engine reads version: "{SUPPORTED_VERSION}"'
        )
    return text


APPEND_REFUSED = (
    "append is not supported: rows are never added to a database that holds some; use fail, truncate or "
    "drop_create"
)


class MaskRules(_Strict):
    """``mask-rules.yaml``."""

    version: str
    """The guide's format version: `"1.0"`, quoted (YAML reads 1.0 unquoted as a number)."""
    global_salt: str | None = None
    """Where the masking salt comes from: `env://NAME` reads it from that variable (the shipped file:
    `env://ANONYMIZATION_SALT`). Never the salt itself."""
    pseudonym_key: str | None = None
    """Where the key of `pseudonym` and `hmac_hash` comes from, as `global_salt` (`env://PSEUDONYM_KEY`,
    `vault://...`); without it, the `PSEUDONYM_KEY` variable. At least 32 bytes, not the salt; resolved only
    when a rule uses it. Never the key itself."""
    on_existing_data: Literal["fail", "truncate", "drop_create"] | None = None
    """What a load does when its target already holds data. `repro-pipeline load --target`: `fail` (also when
    unset) refuses a target with tables, `truncate` empties the load's tables (defined as the source's) and
    fills them again, `drop_create` drops every object of the schemas the load writes and replicates afresh.
    A partition run, when the organization has a live repro database: unset, a new one beside it (each lives
    to its TTL); `fail` refuses; `drop_create` drops the old one once the new one passed its checks;
    `truncate` is refused. `append` is refused."""
    # PII auto-detection (engine/autodetect.py): findings by column name and sampled values. With
    # strict_autodetect, a high or medium finding without a rule (passthrough counts) fails the run.
    auto_detect: bool = True
    """Run PII auto-detection (`repro-pipeline preview`) on name and sampled values."""
    strict_autodetect: bool = False
    """The policy gate: a high or medium finding without a rule (`passthrough` counts) fails `preview` (exit 6)
    and the run."""
    batch_size: int = Field(default=10_000, ge=1)
    """Rows per masking batch."""
    audit_log: bool = True
    """Write the run's audit log in the repro database (`_repro_pipeline.audit_log`, no values): its start, each
    table loaded, each check, its handoff. `false` (or `load --no-audit-table`) leaves it out; the run's record
    stays."""
    implied_fk_ignore: list[str] = Field(default_factory=list)
    """Columns, `schema.table.column`, that `repro-pipeline suggest-references` does not suggest as references
    (each must be a column of the source)."""
    replicate_all_indexes: bool = False
    """Also recreate the source's non-constraint indexes in the repro database (slower load)."""
    # Refuse a superuser source role (it is warned about otherwise): the read needs SELECT and pg_monitor.
    require_least_privilege: bool = False
    """Refuse a source role that is a superuser (plan time)."""
    tables: dict[str, TableRules] = Field(default_factory=dict)
    """Rules per table, keyed by `schema.table`."""

    _version = field_validator("version", mode="before")(_check_version)

    @model_serializer(mode="wrap")
    def _new_keys_omitted_when_unset(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        return _without_unset(
            handler(self), {"pseudonym_key": None, "implied_fk_ignore": [], "on_existing_data": None}
        )

    @field_validator("on_existing_data", mode="before")
    @classmethod
    def _no_append(cls, value: Any) -> Any:
        if value == "append":
            raise ValueError(APPEND_REFUSED)
        return value

    @field_validator("implied_fk_ignore")
    @classmethod
    def _qualified_columns(cls, columns: list[str]) -> list[str]:
        for column in columns:
            if len(column.split(".")) != 3 or not all(column.split(".")):
                raise ValueError(f"{column!r} is not a column written as schema.table.column")
        return columns

    @field_validator("strict_autodetect")
    @classmethod
    def _strict_needs_detection(cls, strict: bool, info: ValidationInfo) -> bool:
        # auto_detect is declared first, so it is validated by now.
        if strict and info.data.get("auto_detect") is False:
            raise ValueError(
                "true needs auto_detect: true (with detection off the gate would pass without checking "
                "anything); remove auto_detect: false, or set strict_autodetect: false"
            )
        return strict


class SubsetRoot(_Strict):
    table: str
    """The root table, `schema.table`."""
    predicate: str = Field(min_length=1)
    """One boolean SQL expression; `:organization_id` is the partition's organization (bound, never spliced).
    Only IMMUTABLE or STABLE functions."""

    @field_validator("predicate")
    @classmethod
    def _one_expression(cls, predicate: str) -> str:
        check_predicate(predicate)
        return predicate


class JsonPathRule(_NormalizeOmittedWhenUnset):
    path: str
    """A JSONPath (`$.actor.email`, `$..email`, `$.items[*].ip`)."""
    action: Literal["fake", "hash", "static", "null", "remove", "ner_mask"]
    """`fake`, `hash`, `static`, `null`, `remove` (drop the key), or `ner_mask` (free text: masked inside, as
    the column action)."""
    provider: str | None = None
    """The fake's kind (with `action: fake`)."""
    seed_alias: str | None = None
    """Shares fakes with columns or paths of the same alias."""
    params: dict[str, str] = Field(default_factory=dict)
    """The provider's parameters."""
    value: str | None = None
    """The constant (with `action: static`)."""

    @model_validator(mode="before")
    @classmethod
    def _null_action(cls, rule: Any) -> Any:
        return _unquoted_null_action(rule)

    @field_validator("path")
    @classmethod
    def _path_syntax(cls, path: str) -> str:
        if not path.startswith("$"):
            raise ValueError(f"{path!r} must start with $ (for example $.actor.email)")
        return _check_jsonpath(path)

    @model_validator(mode="after")
    def _fields_fit_action(self) -> JsonPathRule:
        if self.action == "fake":
            if self.provider is None:
                raise ValueError("action fake needs a provider (for example provider: email)")
            _check_provider(self.provider)
            _check_params(self.provider, self.params)
        elif self.provider is not None or self.seed_alias is not None:
            raise ValueError(f"provider and seed_alias only apply to action fake, not {self.action}")
        if self.normalize is not None and self.action not in ("fake", "hash"):
            raise ValueError(f"normalize only applies to actions fake and hash, not {self.action}")
        if self.action == "static" and self.value is None:
            raise ValueError("action static needs a value")
        return self


class JsonMask(_Strict):
    column: str
    """The json/jsonb column, `schema.table.column`."""
    paths: list[JsonPathRule] = Field(min_length=1)
    """The rules for paths inside it."""


class ForeignKeyRule(_Strict):
    """How the closure follows one foreign key (named by its table and columns, or by its name)."""

    table: str
    """The referencing table, `schema.table`."""
    columns: list[str] | None = None
    """The FK's columns; needed when the table has several FKs (or give `name`)."""
    name: str | None = None
    """The FK constraint's name, instead of `columns`."""
    down: Literal["follow", "skip"] = "follow"
    """`skip`: do not follow it downward (upward it is always followed)."""
    max_rows_per_parent: int | None = Field(default=None, ge=1)
    """Bring down at most this many rows per parent, newest first."""
    from_pulled_up_parents: bool = False
    """Also follow it down from parents that were only pulled up."""


class ReferencedColumns(_Strict):
    table: str
    """The referenced table, `schema.table`."""
    columns: list[str] = Field(min_length=1)
    """Its referenced columns (a primary or unique key)."""


_DOTTED_JSON_PATH = re.compile(r"\$(\.[A-Za-z_][A-Za-z0-9_-]*)+")


class VirtualForeignKey(_Strict):
    """A reference the schema does not declare (our addition): followed both ways like a declared FK, and
    checked for orphans, but never created as a constraint on the target. Held in ``columns``, or in JSON:
    the value at ``json_path`` (a dotted path such as ``$.actor.user_id``) of the json/jsonb ``column``."""

    table: str
    """The referencing table, `schema.table`."""
    columns: list[str] | None = Field(default=None, min_length=1)
    """The referencing columns (or `column` with `json_path`)."""
    column: str | None = None
    """A json/jsonb column holding the reference (with `json_path`)."""
    json_path: str | None = None
    """A dotted path in `column` (`$.invoice.id`)."""
    references: ReferencedColumns
    """The referenced table and columns."""

    @model_validator(mode="after")
    def _one_form(self) -> VirtualForeignKey:
        held_in_json = self.column is not None or self.json_path is not None
        if self.columns is not None and held_in_json:
            raise ValueError(
                "give either columns (a reference held in columns) or column and json_path (a reference "
                "held in JSON), not both"
            )
        if self.columns is None and not held_in_json:
            raise ValueError(
                "give columns (a reference held in columns), or column and json_path (a reference held in "
                "JSON)"
            )
        if self.columns is not None and len(self.columns) != len(self.references.columns):
            raise ValueError(
                f"{len(self.columns)} column(s) {self.columns} reference {len(self.references.columns)} "
                f"column(s) {self.references.columns}: give as many on each side"
            )
        if held_in_json:
            self._check_json_form()
        return self

    def _check_json_form(self) -> None:
        if self.column is None or self.json_path is None:
            given, missing = ("column", "json_path") if self.json_path is None else ("json_path", "column")
            raise ValueError(
                f"{given} needs {missing}: a reference held in JSON names its json/jsonb column and the "
                "path of the value in it"
            )
        if not _DOTTED_JSON_PATH.fullmatch(self.json_path):
            raise ValueError(
                f"json_path {self.json_path!r} is not supported: a reference is read at a plain dotted path "
                "such as $.actor.user_id (no array index, wildcard, filter, quoted key or recursive descent)"
            )
        if len(self.references.columns) != 1:
            raise ValueError(
                f"a reference held in JSON is one value, but references.columns names "
                f"{len(self.references.columns)} columns: reference the parent's one-column key"
            )

    @property
    def json_keys(self) -> tuple[str, ...]:
        """The keys of ``json_path`` (``$.actor.user_id``: actor, user_id); empty for the column form."""
        return tuple(self.json_path[2:].split(".")) if self.json_path else ()

    @model_serializer(mode="wrap")
    def _only_the_given_form(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """The keys of the other form are left out of dumps, so fingerprints of existing files stay."""
        data: dict[str, Any] = handler(self)
        return {key: value for key, value in data.items() if value is not None}


class TenantRule(_Strict):
    """Which table holds the tenants (our addition; the guide's tenant is ``public.organizations``)."""

    table: str = "public.organizations"
    """The table whose rows are the tenants."""
    key: str = "id"
    """Its key column (the partition's organization id)."""
    cross_tenant_references: Literal["refuse", "null", "allow"] = "refuse"
    """`refuse`: a closure reaching another tenant's row fails at plan time; `"null"` (quoted): those rows are
    left out and references to them written as NULL; `allow`: they are copied and the plan names them."""

    @field_validator("cross_tenant_references", mode="before")
    @classmethod
    def _null_in_quotes(cls, value: object) -> object:
        if value is None:
            raise ValueError('write "null" in quotes: unquoted, YAML reads null as no value at all')
        return value


class CommercialExtensions(_Strict):
    """``commercial-extensions.yaml``: subset roots and JSONB path rules, plus per-FK closure rules and the
    tenant table."""

    version: str
    """The guide's format version: `"1.0"`, quoted (YAML reads 1.0 unquoted as a number)."""
    subset: list[SubsetRoot] = Field(default_factory=list)
    """The closure's roots: a table and the predicate selecting its rows."""
    json_mask: list[JsonMask] = Field(default_factory=list)
    """Masking rules for paths inside json/jsonb columns."""
    foreign_keys: list[ForeignKeyRule] = Field(default_factory=list)
    """Per-FK rules for the closure's walk (our addition)."""
    tenant: TenantRule | None = None
    """Which table holds the tenants (default `public.organizations`, key `id`)."""
    virtual_foreign_keys: list[VirtualForeignKey] = Field(default_factory=list)
    """References the schema does not declare, followed both ways like a declared FK."""

    _version = field_validator("version", mode="before")(_check_version)


@dataclass(frozen=True)
class YamlDocument:
    """A parsed YAML file that can say on which line a key path stands."""

    path: Path
    data: Any
    node: yaml.Node

    def where(self, key_path: Sequence[str | int]) -> str:
        """``file:line`` of the deepest node on ``key_path`` (keys not in the document are skipped)."""
        node = self.node
        for part in key_path:
            child = _child(node, part)
            if child is not None:
                node = child
        return f"{self.path}:{node.start_mark.line + 1}"


@dataclass(frozen=True)
class ReproConfig:
    """Both files, validated, plus where each came from."""

    mask_rules: MaskRules
    extensions: CommercialExtensions
    mask_rules_doc: YamlDocument
    extensions_doc: YamlDocument

    def fingerprint(self) -> str:
        """sha256 of both files' canonical JSON: equal for equal content whatever the key order."""
        canonical = json.dumps(
            [self.mask_rules.model_dump(mode="json"), self.extensions.model_dump(mode="json")],
            sort_keys=True,
            separators=(",", ":"),
        )
        return hashlib.sha256(canonical.encode()).hexdigest()


def default_config_paths() -> tuple[Path, Path]:
    """``$REPRO_MASK_RULES`` and ``$REPRO_COMMERCIAL_EXTENSIONS``, else the two files in ./config."""
    return (
        Path(os.environ.get("REPRO_MASK_RULES") or "config/mask-rules.yaml"),
        Path(os.environ.get("REPRO_COMMERCIAL_EXTENSIONS") or "config/commercial-extensions.yaml"),
    )


def load_config(mask_rules_path: Path, extensions_path: Path) -> ReproConfig:
    mask_doc = read_yaml(mask_rules_path)
    ext_doc = read_yaml(extensions_path)
    return ReproConfig(
        mask_rules=_validate(MaskRules, mask_doc),
        extensions=_validate(CommercialExtensions, ext_doc),
        mask_rules_doc=mask_doc,
        extensions_doc=ext_doc,
    )


MAX_CONFIG_BYTES = 1024 * 1024
MAX_YAML_NODES = 100_000  # after alias expansion; the guide's files have about a hundred


def read_yaml(path: Path) -> YamlDocument:
    try:
        with path.open("rb") as file:
            raw = file.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the file ({exc.strerror})", "check the path") from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(
            f"{path}: the file is larger than {MAX_CONFIG_BYTES // 1024} KiB",
            "check that the path names the config file: these files are a few kilobytes",
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: byte {exc.start} is not UTF-8", "save the file as UTF-8") from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        if node is not None and _expanded_size(node) > MAX_YAML_NODES:
            raise ConfigError(
                f"{path}: the YAML expands to more than {MAX_YAML_NODES} nodes through its aliases",
                "write the entries out instead of nesting anchors and aliases",
            )
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigError(f"{where}: {problem}", "fix the YAML syntax at that position") from None
    except RecursionError:
        raise ConfigError(f"{path}: the YAML is nested too deeply", "flatten the file") from None
    if node is None or not isinstance(node, yaml.MappingNode):
        raise ConfigError(f"{path}: the top level must be a mapping", 'start the file with version: "1.0"')
    duplicate = _first_duplicate_key(node)
    if duplicate is not None:
        key, line = duplicate
        raise ConfigError(f"{path}:{line}: key {key!r} appears twice", "keep one of the two entries")
    return YamlDocument(path=path, data=data, node=node)


def _validate(model: type[ModelT], doc: YamlDocument) -> ModelT:
    try:
        return model.model_validate(doc.data)
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            key_path = [part for part in error["loc"] if isinstance(part, str | int)]
            shown = ".".join(str(part) for part in _yaml_path(doc, key_path))
            lines.append(f"{doc.where(key_path)}: {shown or '(top level)'}: {_message(model, error)}")
        raise ConfigError(
            "invalid configuration:\n  " + "\n  ".join(lines),
            f"correct {doc.path.name} at the lines shown; see docs/masking.md and docs/configuration.md",
        ) from None


def _message(model: type[BaseModel], error: Any) -> str:
    kind, msg = error["type"], error["msg"]
    if kind == "extra_forbidden":
        refusal = _refused_key(model, tuple(error["loc"]))
        if refusal is not None:
            return refusal.message(f"key {error['loc'][-1]!r}")
        return "unknown key (misspelled, or not supported by this engine)"
    if kind == "union_tag_invalid":
        action = error["input"].get("action")
        if action in REFUSED_ACTIONS:
            return REFUSED_ACTIONS[action].message(f"action {action!r}")
        return f"unknown action {action!r}; use one of {error['ctx']['expected_tags']}"
    if kind == "missing":
        return f"required key {error['loc'][-1]!r} is missing"
    return str(msg).removeprefix("Value error, ")


def _refused_key(model: type[BaseModel], loc: tuple[Any, ...]) -> Refusal | None:
    """The refusal of a PrivaCI key at ``loc`` in ``mask-rules.yaml``, if it is one we refuse by name."""
    if model is not MaskRules:
        return None
    key = loc[-1]
    if len(loc) == 1:
        return REFUSED_TOP_LEVEL_KEYS.get(key)
    if loc[0] == "tables" and len(loc) == 3:
        return REFUSED_TABLE_KEYS.get(key)
    if loc[0] == "tables" and len(loc) == 6 and loc[2] == "columns":  # tables.T.columns.C.<action tag>.key
        return REFUSED_ACTION_KEYS.get(key)
    return None


def _yaml_path(doc: YamlDocument, key_path: Sequence[str | int]) -> list[str | int]:
    """The parts of a pydantic location that are keys of the document (drops union tags)."""
    node, shown = doc.node, []
    for part in key_path:
        child = _child(node, part)
        if child is not None:
            node = child
            shown.append(part)
        elif not isinstance(node, yaml.MappingNode | yaml.SequenceNode) or isinstance(part, int):
            shown.append(part)
    return shown


def _child(node: yaml.Node, part: str | int) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if key.value == part:
                found: yaml.Node = value
                return found
    if isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
        child: yaml.Node = node.value[part]
        return child
    return None


def _expanded_size(root: yaml.Node) -> int:
    """How many nodes the document has once every alias is expanded; each shared node is sized once,
    and an alias inside its own anchor counts as more than any limit (it expands forever)."""
    sizes: dict[int, int] = {}
    expanding: set[int] = set()

    def size(node: yaml.Node) -> int:
        if id(node) in expanding:
            return MAX_YAML_NODES + 1
        if id(node) not in sizes:
            if isinstance(node, yaml.MappingNode):
                children = [child for pair in node.value for child in pair]
            elif isinstance(node, yaml.SequenceNode):
                children = list(node.value)
            else:
                children = []
            expanding.add(id(node))
            sizes[id(node)] = 1 + sum(size(child) for child in children)
            expanding.discard(id(node))
        return sizes[id(node)]

    return size(root)


def _first_duplicate_key(node: yaml.Node) -> tuple[str, int] | None:
    if isinstance(node, yaml.MappingNode):
        seen: set[Any] = set()
        for key, value in node.value:
            if key.value in seen:
                return str(key.value), key.start_mark.line + 1
            seen.add(key.value)
            found = _first_duplicate_key(value)
            if found:
                return found
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            found = _first_duplicate_key(item)
            if found:
                return found
    return None
