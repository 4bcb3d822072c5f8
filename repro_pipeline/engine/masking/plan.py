"""The mask plan: every rule of both config files checked against the source catalog and compiled.

Errors here (a rule on a table or column the source does not have, ``null`` on a NOT NULL column, a
JSON rule on a column that is not json, a masked value that cannot fit its column's type, a constant on
a unique column) are caught before any data moves, with the file, line, YAML path and column type.

Type fit (``column_types`` names the kinds):

- text columns take every action. With a length (character varying(n), character(n)), a fake must fit:
  the provider's longest output (plus the 17-character uniqueness tag when tagged) must be at most n,
  else the rule is refused (a cut name, phone or card number would be malformed). ``hash`` keeps the
  first n hex digits when n < 64; n must be at least 16 (64 bits), or 20 (80 bits) on a unique column.
  ``regex_mask`` is refused when its replacement can make a value longer (the plan works that out from
  the pattern and the template), and always on a unique bounded column (no room for the tag). character(n)
  values are masked without their blank padding. ``static`` values must fit the length.
- json/jsonb: ``fake`` and ``hash`` mask the whole document as one leaf and write a JSON string;
  ``regex_mask`` is refused (its output need not be JSON); ``static`` must be JSON.
- uuid: ``fake`` with provider uuid, or ``hash`` written as a uuid (its first 128 bits).
- date and timestamps: ``fake`` with provider dob only. inet/cidr: ``fake`` with ip_address only.
- numbers, arrays and other built-in types: no fake, hash or regex_mask (no provider gives numbers).
  ``static`` values are checked for integers (and their range), numeric, floats and uuids.

Uniqueness: a column under a primary key, a unique constraint or a unique index (any of its columns,
including those an index expression reads) gets collision-free outputs: ``fake`` and ``regex_mask``
append the uniqueness tag (see ``values``), ``hash`` is the full HMAC (or at least 80 bits of it), the
uuid provider is unique as it is. ``static`` is refused; ``null`` too when NULLs count as equal (primary
key, NULLS NOT DISTINCT). A ``seed_alias`` used by a unique column's fake is tagged wherever it is used
(other columns and JSON paths), so aliased values keep agreeing; columns sharing an alias must agree on
``normalize`` and on their key (all ``fake``, seeded by the salt, or all ``pseudonym``). ``normalize: lower`` on a unique column is refused unless the uniqueness is itself
case-insensitive (citext, or a unique index on lower(column)): two rows differing only in case would
otherwise get one output.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation

from repro_pipeline.engine.config import (
    AnyColumnAction,
    FakeAction,
    HashAction,
    HmacHashAction,
    JsonPathRule,
    NerMaskAction,
    NullAction,
    PassthroughAction,
    PseudonymAction,
    RegexMaskAction,
    ReproConfig,
    StaticAction,
    TableRules,
)
from repro_pipeline.engine.errors import ConfigError
from repro_pipeline.engine.masking import in_select, values
from repro_pipeline.engine.masking.column_types import ColumnType, type_of
from repro_pipeline.engine.masking.free_text import (
    FreeTextDictionary,
    NamedEntities,
    detectors,
    free_text_masker,
    spacy_entities,
)
from repro_pipeline.engine.masking.json_paths import (
    JsonPathAction,
    compile_root_masker,
)
from repro_pipeline.engine.masking.providers import max_length
from repro_pipeline.engine.masking.regex import can_lengthen
from repro_pipeline.engine.masking.unique import Uniqueness, unique_columns
from repro_pipeline.engine.masking.values import ValueMasker
from repro_pipeline.engine.secrets import Secret, resolve_pseudonym_key
from repro_pipeline.engine.source.catalog import Catalog, Column, Table, TableName

Row = Sequence[str | None]
KEYED_ACTIONS = (PseudonymAction, HmacHashAction)  # keyed by the pseudonym key, not the salt

TAG_EXTRA = values.TAG_SEPARATOR_LENGTH + values.TAG_LENGTH
MIN_HASH_HEX = 16  # 64 bits
MIN_UNIQUE_HASH_HEX = 20  # 80 bits, as many as the uniqueness tag


@dataclass(frozen=True)
class ColumnMasking:
    """What happens to one column, for reports: ``action`` is e.g. ``fake:email`` or ``json:3 paths``."""

    column: str
    action: str


@dataclass(frozen=True)
class TableMasking:
    table: Table
    strategy: str
    columns: tuple[ColumnMasking, ...]
    maskers: Mapping[int, ValueMasker]  # position in Table.copy_columns -> masker
    batch_size: int | None = None  # rows per COPY batch for this table, when the config sets one

    @property
    def copies_rows(self) -> bool:
        return self.strategy == "transform"

    def with_null_columns(self, columns: Sequence[str], reason: str) -> TableMasking:
        """The same masking, with ``columns`` written as NULL (their parent rows are not copied)."""
        positions = {column.name: position for position, column in enumerate(self.table.copy_columns)}
        maskers = dict(self.maskers) | {positions[column]: in_select.null() for column in columns}
        described = (*self.columns, *(ColumnMasking(column, f"null ({reason})") for column in columns))
        return replace(self, maskers=maskers, columns=described)

    def masker_for(self, column: str) -> ValueMasker | None:
        """The column's masker, or None when its values are copied as they are."""
        positions = [position for position, c in enumerate(self.table.copy_columns) if c.name == column]
        return self.maskers.get(positions[0]) if positions else None

    def mask_row(self, row: Row) -> list[str | None]:
        masked = list(row)
        for position, masker in self.maskers.items():
            masked[position] = masker(masked[position])
        return masked


@dataclass(frozen=True)
class MaskPlan:
    tables: Mapping[TableName, TableMasking]
    # Resolved once, while planning (None when no rule uses it): the load workers build their masks with it
    # rather than each asking its store again.
    pseudonym_key: Secret | None = field(default=None, repr=False)
    # The originals ner_mask replaces inside text, read from the closure's rows (None before the closure is
    # known): the load workers build their masks with it rather than reading the originals again.
    free_text: FreeTextDictionary | None = field(default=None, repr=False)

    def for_table(self, name: TableName) -> TableMasking:
        return self.tables[name]


@dataclass(frozen=True)
class _ColumnRule:
    table: Table
    column: Column
    action: AnyColumnAction
    where: str  # file:line
    yaml_path: str  # tables.<key>.columns.<column>
    unique: Uniqueness | None

    @property
    def qualified(self) -> str:
        return f"{self.table.name}.{self.column.name}"

    def refuse(self, problem: str, remedy: str) -> ConfigError:
        return ConfigError(f"{self.where}: {self.yaml_path}: {problem}", remedy)


@dataclass(frozen=True)
class _JsonRule:
    table: Table
    column: str
    rule: JsonPathRule
    where: str
    yaml_path: str  # json_mask[i].paths[j]


def build_mask_plan(
    config: ReproConfig,
    catalog: Catalog,
    salt: Secret,
    pseudonym_key: Secret | None = None,
    free_text: FreeTextDictionary | None = None,
) -> MaskPlan:
    """The plan of ``config`` over ``catalog``. ``pseudonym_key``, when given, is the key a plan already
    resolved; otherwise it is resolved here, when a rule uses it. ``free_text`` is the dictionary of the
    ``ner_mask`` rules (without it, they replace what the patterns and the names model find)."""
    rules_doc, ext_doc = config.mask_rules_doc, config.extensions_doc
    configured: dict[TableName, tuple[str, TableRules]] = {}
    for key, rules in config.mask_rules.tables.items():
        table = catalog.find(key)
        if table is None:
            raise ConfigError(
                f"{rules_doc.where(['tables', key])}: tables.{key}: the source has no table {key}",
                "check the spelling and the schema (write schema.table), or remove the entry",
            )
        configured[table.name] = (key, rules)

    json_rules: dict[TableName, dict[str, list[_JsonRule]]] = {}
    for index, entry in enumerate(config.extensions.json_mask):
        where = ext_doc.where(["json_mask", index, "column"])
        table_text, _, column_name = entry.column.rpartition(".")
        table = catalog.find(table_text) if table_text else None
        column = table.column(column_name) if table else None
        if table is None or column is None:
            raise ConfigError(
                f"{where}: json_mask[{index}].column: the source has no column {entry.column}",
                "write the column as schema.table.column",
            )
        if column.type not in ("json", "jsonb"):
            raise ConfigError(
                f"{where}: json_mask[{index}].column: {entry.column} is {column.type}, not json"
            )
        json_rules.setdefault(table.name, {}).setdefault(column_name, []).extend(
            _JsonRule(
                table,
                column_name,
                rule,
                ext_doc.where(["json_mask", index, "paths", number]),
                f"json_mask[{index}].paths[{number}]",
            )
            for number, rule in enumerate(entry.paths)
        )

    uniques = unique_columns(catalog)
    column_rules: dict[TableName, list[_ColumnRule]] = {}
    for name, (key, rules) in configured.items():
        table = catalog.tables[name]
        copied = {column.name for column in table.copy_columns}
        for column_name, action in rules.columns.items():
            where = rules_doc.where(["tables", key, "columns", column_name])
            yaml_path = f"tables.{key}.columns.{column_name}"
            column = table.column(column_name)
            if column is None or column_name not in copied:
                raise ConfigError(
                    f"{where}: {yaml_path}: unknown column of {name}",
                    f"columns of {name}: {', '.join(table.column_names)}",
                )
            if isinstance(action, NullAction) and column.not_null:
                raise ConfigError(
                    f"{where}: {yaml_path}: action null on a NOT NULL column",
                    "use static, hash or fake for this column",
                )
            if column_name in json_rules.get(name, {}) and not isinstance(action, PassthroughAction):
                raise ConfigError(
                    f"{where}: {yaml_path}: a column rule and json_mask paths both apply to "
                    f"{name}.{column_name}",
                    "keep one: json_mask for path-level masking, or the column rule for the whole value",
                )
            column_rules.setdefault(name, []).append(
                _ColumnRule(table, column, action, where, yaml_path, uniques.get(name, {}).get(column_name))
            )

    tagged_aliases = _aliases(column_rules, json_rules)
    keys = _Keys(
        salt,
        pseudonym_key or _pseudonym_key(config, column_rules, salt),
        _free_text(config, free_text or FreeTextDictionary()),
    )

    plan = {}
    for name, table in catalog.tables.items():
        key, rules = configured.get(name, (str(name), TableRules()))
        maskers: dict[int, ValueMasker] = {}
        described = []
        positions = {column.name: position for position, column in enumerate(table.copy_columns)}
        for rule in column_rules.get(name, []):
            masker, description = _column_masker(rule, tagged_aliases, keys)
            if masker is not None:
                maskers[positions[rule.column.name]] = masker
            described.append(ColumnMasking(rule.column.name, description))
        for column_name, path_rules in json_rules.get(name, {}).items():
            json_column = table.column(column_name)
            maskers[positions[column_name]] = in_select.document_masker(
                [_json_action(path_rule, tagged_aliases, keys) for path_rule in path_rules],
                jsonb=json_column is not None and json_column.type == "jsonb",
            )
            free_text_paths = [rule.rule.path for rule in path_rules if rule.rule.action == NER_MASK]
            described.append(
                ColumnMasking(
                    column_name,
                    f"json:{len(path_rules)} paths"
                    + _notes(
                        f"{NER_MASK} {', '.join(free_text_paths)}: {keys.free_text.detectors()}"
                        if free_text_paths
                        else None
                    ),
                )
            )
        plan[name] = TableMasking(table, rules.strategy, tuple(described), maskers, rules.batch_size)
    return MaskPlan(plan, keys.pseudonym, free_text)


NER_MASK = "ner_mask"


@dataclass(frozen=True)
class _FreeText:
    """What ``ner_mask`` rules replace: the dictionary's originals and, when installed, spaCy's entities."""

    dictionary: FreeTextDictionary
    named: NamedEntities | None

    def detectors(self, entities: Sequence[str] = ("PERSON", "ORG", "GPE", "LOC")) -> str:
        return detectors(self.dictionary, self.named, entities)


@dataclass(frozen=True)
class _Keys:
    salt: Secret
    pseudonym: Secret | None  # None when no rule uses it
    free_text: _FreeText


def masks_free_text(config: ReproConfig) -> bool:
    """Whether a rule of either file is ``ner_mask``."""
    return any(
        isinstance(action, NerMaskAction)
        for rules in config.mask_rules.tables.values()
        for action in rules.columns.values()
    ) or any(path.action == NER_MASK for entry in config.extensions.json_mask for path in entry.paths)


def _free_text(config: ReproConfig, dictionary: FreeTextDictionary) -> _FreeText:
    """The names model is loaded only when a ``ner_mask`` rule is there to use it."""
    return _FreeText(dictionary, spacy_entities() if masks_free_text(config) else None)


def _pseudonym_key(
    config: ReproConfig, column_rules: Mapping[TableName, Sequence[_ColumnRule]], salt: Secret
) -> Secret | None:
    """The pseudonym key, resolved only when a rule is keyed by it (its store is not asked otherwise)."""
    if not any(isinstance(rule.action, KEYED_ACTIONS) for rules in column_rules.values() for rule in rules):
        return None
    what = f"pseudonym_key in {config.mask_rules_doc.path}"
    return resolve_pseudonym_key(config.mask_rules.pseudonym_key, what=what, salt=salt)


def _aliases(
    column_rules: Mapping[TableName, Sequence[_ColumnRule]],
    json_rules: Mapping[TableName, Mapping[str, Sequence[_JsonRule]]],
) -> dict[str, str]:
    """The seed_aliases to tag (alias -> the unique column that needs it); refuses an alias whose rules
    disagree on normalize, or on the key that seeds them (``fake`` the salt, ``pseudonym`` the pseudonym key)."""
    seen: dict[str, tuple[str, str | None, str, str]] = {}  # alias -> (action, normalize, where, yaml path)
    tagged: dict[str, str] = {}
    uses: list[tuple[str, str, str | None, str, str]] = []
    for rules in column_rules.values():
        for rule in rules:
            if isinstance(rule.action, FakeAction | PseudonymAction) and rule.action.seed_alias is not None:
                uses.append(
                    (
                        rule.action.seed_alias,
                        rule.action.action,
                        rule.action.normalize,
                        rule.where,
                        rule.yaml_path,
                    )
                )
                if rule.unique is not None and rule.action.provider not in values.UNTAGGED_PROVIDERS:
                    tagged.setdefault(rule.action.seed_alias, f"{rule.qualified} ({rule.unique.describe()})")
    for columns in json_rules.values():
        for path_rules in columns.values():
            for path_rule in path_rules:
                if path_rule.rule.action == "fake" and path_rule.rule.seed_alias is not None:
                    uses.append(
                        (
                            path_rule.rule.seed_alias,
                            "fake",
                            path_rule.rule.normalize,
                            path_rule.where,
                            path_rule.yaml_path,
                        )
                    )
    for alias, action, normalize, where, yaml_path in uses:
        first = seen.setdefault(alias, (action, normalize, where, yaml_path))
        if first[0] != action:
            raise ConfigError(
                f"{where}: {yaml_path}: seed_alias {alias} is used by {first[0]} at {first[2]} ({first[3]}) "
                f"and by {action} here: a fake is seeded by the salt and a pseudonym by pseudonym_key, so "
                "the two would give different values for the same original",
                "use the same action (fake or pseudonym) on every rule sharing the alias, or another alias",
            )
        if first[1] != normalize:
            raise ConfigError(
                f"{where}: {yaml_path}: seed_alias {alias} is used with normalize {normalize or 'unset'} "
                f"here and with normalize {first[1] or 'unset'} at {first[2]} ({first[3]})",
                "set the same normalize on every rule sharing the alias, or their fakes stop agreeing",
            )
    return tagged


def _column_masker(
    rule: _ColumnRule, tagged_aliases: Mapping[str, str], keys: _Keys
) -> tuple[ValueMasker | None, str]:
    salt = keys.salt
    action, kind = rule.action, type_of(rule.column)
    is_type = f"{rule.qualified} is {kind.text}"
    if isinstance(action, PassthroughAction):
        return None, action.action
    if isinstance(action, NullAction):
        if rule.unique is not None and rule.unique.nulls_collide:
            raise rule.refuse(
                f"action null on a unique column whose NULLs count as equal ({rule.unique.describe()}): "
                "every row would collide",
                "use fake, hash or regex_mask (their outputs are made unique), or passthrough",
            )
        return in_select.null(), action.action
    if isinstance(action, StaticAction):
        if rule.unique is not None:
            raise rule.refuse(
                f"action static on a unique column ({rule.unique.describe()}): every row would get the same "
                "value and collide",
                "use fake, hash or regex_mask (their outputs are made unique), or passthrough",
            )
        problem = _static_misfit(action.value, kind)
        if problem is not None:
            raise rule.refuse(
                f"static value {action.value!r} does not fit: {problem}; {is_type}", _TYPE_REMEDY
            )
        return in_select.static(action.value), action.action
    if isinstance(action, NerMaskAction):
        return _free_text_masker(rule, action, kind, keys)
    if isinstance(action, FakeAction | HashAction | PseudonymAction) and action.normalize is not None:
        _check_normalize_on_unique(rule, kind)
    if isinstance(action, FakeAction):
        return _fake_masker(rule, action, kind, tagged_aliases, salt)
    if isinstance(action, HashAction):
        return _hash_masker(rule, action, kind, salt)
    if isinstance(action, KEYED_ACTIONS):
        if keys.pseudonym is None:
            raise ValueError("a keyed rule's pseudonym key is resolved before its maskers are built")
        if isinstance(action, PseudonymAction):
            return _fake_masker(rule, action, kind, tagged_aliases, keys.pseudonym)
        return _hmac_hash_masker(rule, action, kind, keys.pseudonym)
    return _regex_masker(rule, action, kind, salt)


_TYPE_REMEDY = "pick an action whose output fits the column's type (see docs/masking.md)"


def _check_normalize_on_unique(rule: _ColumnRule, kind: ColumnType) -> None:
    if rule.unique is None or rule.unique.case_insensitive or kind.case_insensitive:
        return
    raise rule.refuse(
        f"normalize: lower on a unique column whose uniqueness is case-sensitive ({rule.unique.describe()}): "
        "two rows differing only in case would get one output and collide",
        "remove normalize from this rule (and from the rules sharing its seed_alias); it is accepted where "
        "the uniqueness is case-insensitive (citext, or a unique index on lower(column))",
    )


def _fake_masker(
    rule: _ColumnRule,
    action: FakeAction | PseudonymAction,
    kind: ColumnType,
    tagged_aliases: Mapping[str, str],
    salt: Secret,
) -> tuple[ValueMasker, str]:
    """``fake`` seeded by the salt, or ``pseudonym`` (the same, seeded by the pseudonym key, given as ``salt``)."""
    provider, alias = action.provider, action.seed_alias
    why_tagged = None
    if rule.unique is not None:
        why_tagged = f"the column is unique ({rule.unique.describe()})"
    elif alias is not None and alias in tagged_aliases:
        why_tagged = f"seed_alias {alias} is shared with unique column {tagged_aliases[alias]}"
    tagged = why_tagged is not None and provider not in values.UNTAGGED_PROVIDERS
    is_type = f"{rule.qualified} is {kind.text}"
    expected = {"uuid": "uuid", "date": "dob", "inet": "ip_address"}.get(kind.kind)
    if kind.kind in ("number", "array", "enum", "other") or (expected is not None and provider != expected):
        fitting = f"only provider {expected} fits it" if expected else "no provider gives values of that type"
        raise rule.refuse(
            f"{action.action} {provider} gives text that does not fit the column: {is_type}, and {fitting}",
            "use static with a value of that type, null or passthrough"
            if expected is None
            else f"use provider {expected}, or static, null or passthrough",
        )
    if tagged and kind.kind in ("date", "inet"):
        raise rule.refuse(
            f"{action.action} {provider} cannot be made unique in this column: {is_type}, which cannot hold the "
            f"uniqueness tag, and {why_tagged}",
            "use passthrough for this column, or drop the seed_alias that ties it to a unique column",
        )
    longest = max_length(provider, action.params) + (TAG_EXTRA if tagged else 0)
    if kind.length is not None and longest > kind.length:
        tag_note = f", with the {TAG_EXTRA}-character uniqueness tag because {why_tagged}" if tagged else ""
        raise rule.refuse(
            f"{action.action} {provider} gives up to {longest} characters{tag_note}, more than the column holds: {is_type}",
            "use a provider with shorter values, or hash (cut to the column's length), or passthrough",
        )
    masker = values.fake(
        salt,
        action.seed_alias or rule.qualified,
        provider,
        action.params,
        normalize=action.normalize,
        tagged=tagged,
    )
    described = f"{action.action}:{provider}" + _notes(
        f"seed_alias {action.seed_alias}" if action.seed_alias else None,
        f"normalize {action.normalize}" if action.normalize else None,
        "uniqueness tag" if tagged else None,
    )
    return _fitted(masker, kind), described


def _hash_masker(
    rule: _ColumnRule, action: HashAction, kind: ColumnType, salt: Secret
) -> tuple[ValueMasker, str]:
    is_type = f"{rule.qualified} is {kind.text}"
    if kind.kind == "uuid":
        masker = values.hashed(salt, normalize=action.normalize, uuid_shaped=True)
        return masker, "hash" + _notes("as uuid", _normalize_note(action))
    if kind.kind not in ("text", "json"):
        raise rule.refuse(f"hash gives hex text that does not fit the column: {is_type}", _TYPE_REMEDY)
    length = values.HASH_HEX_LENGTH if kind.length is None else min(kind.length, values.HASH_HEX_LENGTH)
    least = MIN_UNIQUE_HASH_HEX if rule.unique is not None else MIN_HASH_HEX
    if length < least:
        why = f" on a unique column ({rule.unique.describe()})" if rule.unique is not None else ""
        raise rule.refuse(
            f"hash needs at least {least} hex digits{why} ({4 * least} bits; fewer would collide), but {is_type}",
            "use passthrough, static or null for such a short column, or fake with a provider that fits",
        )
    masker = values.hashed(salt, normalize=action.normalize, length=length)
    cut = f"first {length} hex" if length < values.HASH_HEX_LENGTH else None
    return _fitted(masker, kind), "hash" + _notes(cut, _normalize_note(action))


MIN_HMAC_CHARACTERS = {"hex": (MIN_HASH_HEX, MIN_UNIQUE_HASH_HEX), "base64url": (11, 14)}  # 64 / 80 bits
HMAC_LENGTHS = {"hex": values.HASH_HEX_LENGTH, "base64url": values.HMAC_BASE64URL_LENGTH}


def _hmac_hash_masker(
    rule: _ColumnRule, action: HmacHashAction, kind: ColumnType, key: Secret
) -> tuple[ValueMasker, str]:
    is_type = f"{rule.qualified} is {kind.text}"
    if kind.kind == "uuid" and action.encoding == "hex":
        return values.hmac_hashed(key, rule.qualified, uuid_shaped=True), "hmac_hash (as uuid)"
    if kind.kind not in ("text", "json"):
        raise rule.refuse(
            f"hmac_hash gives {action.encoding} text that does not fit the column: {is_type}", _TYPE_REMEDY
        )
    full = HMAC_LENGTHS[action.encoding]
    length = full if kind.length is None else min(kind.length, full)
    least = MIN_HMAC_CHARACTERS[action.encoding][rule.unique is not None]
    if length < least:
        why = f" on a unique column ({rule.unique.describe()})" if rule.unique is not None else ""
        raise rule.refuse(
            f"hmac_hash needs at least {least} {action.encoding} characters{why} (fewer would collide), but "
            f"{is_type}",
            "use passthrough, static or null for such a short column, or fake with a provider that fits",
        )
    masker = values.hmac_hashed(key, rule.qualified, encoding=action.encoding, length=length)
    cut = f"first {length} characters" if length < full else None
    return _fitted(
        masker, kind
    ), f"hmac_hash ({action.encoding})" if cut is None else f"hmac_hash ({action.encoding}, {cut})"


def _regex_masker(
    rule: _ColumnRule, action: RegexMaskAction, kind: ColumnType, salt: Secret
) -> tuple[ValueMasker, str]:
    is_type = f"{rule.qualified} is {kind.text}"
    if kind.kind != "text":
        raise rule.refuse(f"regex_mask works on text, and its output need not fit: {is_type}", _TYPE_REMEDY)
    compiled = action.compiled()
    tagged = rule.unique is not None
    if kind.length is not None and tagged:
        raise rule.refuse(
            f"regex_mask on a unique column ({rule.unique.describe() if rule.unique else ''}) needs the "
            f"{TAG_EXTRA}-character uniqueness tag, which a full value leaves no room for: {is_type}",
            "use fake or hash on this column (they fit its length and stay unique)",
        )
    if kind.length is not None and can_lengthen(compiled, action.replace):
        raise rule.refuse(
            f"regex_mask can make a value longer (replace {action.replace!r} can be longer than what the "
            f"pattern matches), so it may not fit: {is_type}",
            "use a replacement no longer than the shortest match (e.g. one X per matched character), or hash",
        )
    masker = values.regex_mask(salt, rule.qualified, compiled, action.replace, tagged=tagged)
    return _fitted(masker, kind), "regex_mask" + _notes("uniqueness tag" if tagged else None)


def _free_text_masker(
    rule: _ColumnRule, action: NerMaskAction, kind: ColumnType, keys: _Keys
) -> tuple[ValueMasker, str]:
    is_type = f"{rule.qualified} is {kind.text}"
    if kind.kind != "text" or kind.length is not None:
        raise rule.refuse(
            f"ner_mask masks free text, whose fakes can be longer than what they replace: {is_type}, and it "
            "takes text or varchar without a length",
            "use json_mask paths with action ner_mask for text inside a json column; for a bounded column, "
            "regex_mask with a replacement no longer than what it matches, or static",
        )
    if rule.unique is not None:
        raise rule.refuse(
            f"ner_mask on a unique column ({rule.unique.describe()}): two values that differ only in what it "
            "replaces would collide",
            "use fake, hash or regex_mask (their outputs are made unique)",
        )
    masker = free_text_masker(
        keys.free_text.dictionary,
        keys.salt,
        named=keys.free_text.named,
        entities=action.entities,
    )
    return masker, f"{NER_MASK} ({keys.free_text.detectors(action.entities)})"


def _fitted(masker: ValueMasker, kind: ColumnType) -> ValueMasker:
    if kind.padded:
        return values.unpadded(masker)
    if kind.kind == "json":
        return compile_root_masker(masker)
    return masker


def _notes(*notes: str | None) -> str:
    shown = [note for note in notes if note]
    return f" ({', '.join(shown)})" if shown else ""


def _normalize_note(action: FakeAction | HashAction | PseudonymAction) -> str | None:
    return f"normalize {action.normalize}" if action.normalize else None


def _static_misfit(value: str, kind: ColumnType) -> str | None:
    """Why a static value cannot be written to the column, or None (types not listed are left to the target)."""
    if kind.kind == "text" and kind.length is not None:
        length = len(value.rstrip(" ") if kind.padded else value)
        if length > kind.length:
            return f"it is {length} characters long"
    if kind.kind == "json":
        try:
            json.loads(value)
        except ValueError:
            return "it is not JSON"
    if kind.kind == "uuid":
        try:
            uuid.UUID(value.strip())
        except ValueError:
            return "it is not a uuid"
    if kind.kind == "number":
        return _number_misfit(value.strip(), kind)
    if kind.kind == "enum" and value not in kind.labels:
        return f"it is not a label of the enum ({', '.join(kind.labels)})"
    return None


def _number_misfit(text: str, kind: ColumnType) -> str | None:
    bounds = kind.integer_range
    if bounds is not None:
        number = _integer(text)
        if number is None:
            return "it is not an integer"
        if not bounds[0] <= number <= bounds[1]:
            return f"it is outside {bounds[0]}..{bounds[1]}"
        return None
    if kind.text == "money":
        return None
    try:
        Decimal(text)
    except InvalidOperation:
        return "it is not a number"
    return None


def _integer(text: str) -> int | None:
    for base in (10, 0):  # decimal (leading zeros allowed), then 0x / 0o / 0b as PostgreSQL 16 reads them
        try:
            return int(text, base)
        except ValueError:
            continue
    return None


def _json_action(path_rule: _JsonRule, tagged_aliases: Mapping[str, str], keys: _Keys) -> JsonPathAction:
    rule, salt = path_rule.rule, keys.salt
    scope = f"{path_rule.table.name}.{path_rule.column}:{rule.path}"
    if rule.action == "remove":
        return JsonPathAction(rule.path, None)
    if rule.action == "fake" and rule.provider is not None:
        tagged = rule.seed_alias in tagged_aliases and rule.provider not in values.UNTAGGED_PROVIDERS
        masker = values.fake(
            salt,
            rule.seed_alias or scope,
            rule.provider,
            rule.params,
            normalize=rule.normalize,
            tagged=tagged,
        )
    elif rule.action == "hash":
        masker = values.hashed(salt, normalize=rule.normalize)
    elif rule.action == NER_MASK:
        masker = free_text_masker(keys.free_text.dictionary, salt, named=keys.free_text.named)
    elif rule.action == "static" and rule.value is not None:
        masker = values.static(rule.value)
    else:
        masker = values.null()
    return JsonPathAction(rule.path, masker)
