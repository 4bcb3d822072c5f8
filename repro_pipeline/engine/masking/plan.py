"""The mask plan: every rule of both config files checked against the source catalog and compiled.

Errors here (a rule on a table or column the source does not have, ``null`` on a NOT NULL column, a
JSON rule on a column that is not json) are caught before any data moves, with the file and line.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from repro_pipeline.engine.catalog import Catalog, Table, TableName
from repro_pipeline.engine.config import (
    FakeAction,
    HashAction,
    NullAction,
    PassthroughAction,
    ReproConfig,
    StaticAction,
    TableRules,
)
from repro_pipeline.engine.errors import ConfigError
from repro_pipeline.engine.masking import values
from repro_pipeline.engine.masking.json_paths import JsonPathAction, compile_document_masker
from repro_pipeline.engine.masking.values import ValueMasker
from repro_pipeline.engine.secrets import Secret

Row = Sequence[str | None]


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

    @property
    def is_passthrough(self) -> bool:
        return not self.maskers

    def with_null_columns(self, columns: Sequence[str], reason: str) -> TableMasking:
        """The same masking, with ``columns`` written as NULL (their parent rows are not copied)."""
        positions = {column.name: position for position, column in enumerate(self.table.copy_columns)}
        maskers = dict(self.maskers) | {positions[column]: values.null() for column in columns}
        described = (*self.columns, *(ColumnMasking(column, f"null ({reason})") for column in columns))
        return replace(self, maskers=maskers, columns=described)

    def mask_row(self, row: Row) -> list[str | None]:
        masked = list(row)
        for position, masker in self.maskers.items():
            masked[position] = masker(masked[position])
        return masked


@dataclass(frozen=True)
class MaskPlan:
    tables: Mapping[TableName, TableMasking]

    def for_table(self, name: TableName) -> TableMasking:
        return self.tables[name]


def build_mask_plan(config: ReproConfig, catalog: Catalog, salt: Secret) -> MaskPlan:
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

    json_rules: dict[TableName, dict[str, list[JsonPathAction]]] = {}
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
        scope_prefix = f"{table.name}.{column_name}"
        json_rules.setdefault(table.name, {}).setdefault(column_name, []).extend(
            JsonPathAction(
                path=rule.path,
                masker=None
                if rule.action == "remove"
                else _json_leaf_masker(
                    rule.action,
                    rule.provider,
                    rule.seed_alias,
                    rule.value,
                    rule.params,
                    f"{scope_prefix}:{rule.path}",
                    salt,
                ),
            )
            for rule in entry.paths
        )

    plan = {}
    for name, table in catalog.tables.items():
        key, rules = configured.get(name, (str(name), TableRules()))
        strategy = rules.strategy
        maskers: dict[int, ValueMasker] = {}
        described = []
        positions = {column.name: position for position, column in enumerate(table.copy_columns)}
        for column_name, action in rules.columns.items():
            where = rules_doc.where(["tables", key, "columns", column_name])
            column = table.column(column_name)
            if column is None or column_name not in positions:
                raise ConfigError(
                    f"{where}: tables.{key}.columns.{column_name}: unknown column of {name}",
                    f"columns of {name}: {', '.join(table.column_names)}",
                )
            if isinstance(action, NullAction) and column.not_null:
                raise ConfigError(
                    f"{where}: tables.{key}.columns.{column_name}: action null on a NOT NULL column",
                    "use static, hash or fake for this column",
                )
            masker = _column_masker(action, f"{name}.{column_name}", salt)
            if masker is not None:
                maskers[positions[column_name]] = masker
            described.append(ColumnMasking(column_name, _describe(action)))
        for column_name, path_actions in json_rules.get(name, {}).items():
            position = positions[column_name]
            if position in maskers:
                raise ConfigError(
                    f"{rules_doc.where(['tables', key, 'columns', column_name])}: tables.{key}.columns."
                    f"{column_name}: a column rule and json_mask paths both apply to {name}.{column_name}",
                    "keep one: json_mask for path-level masking, or the column rule for the whole value",
                )
            maskers[position] = compile_document_masker(path_actions)
            described.append(ColumnMasking(column_name, f"json:{len(path_actions)} paths"))
        plan[name] = TableMasking(table, strategy, tuple(described), maskers, rules.batch_size)
    return MaskPlan(plan)


def _column_masker(
    action: FakeAction | HashAction | StaticAction | NullAction | PassthroughAction, scope: str, salt: Secret
) -> ValueMasker | None:
    if isinstance(action, FakeAction):
        return values.fake(salt, action.seed_alias or scope, action.provider, action.params)
    if isinstance(action, HashAction):
        return values.hashed(salt)
    if isinstance(action, StaticAction):
        return values.static(action.value)
    if isinstance(action, NullAction):
        return values.null()
    return None


def _json_leaf_masker(
    action: str,
    provider: str | None,
    seed_alias: str | None,
    value: str | None,
    params: Mapping[str, str],
    scope: str,
    salt: Secret,
) -> ValueMasker:
    if action == "fake" and provider is not None:
        return values.fake(salt, seed_alias or scope, provider, params)
    if action == "hash":
        return values.hashed(salt)
    if action == "static" and value is not None:
        return values.static(value)
    return values.null()


def _describe(action: FakeAction | HashAction | StaticAction | NullAction | PassthroughAction) -> str:
    if isinstance(action, FakeAction):
        return f"fake:{action.provider}" + (f" (seed_alias {action.seed_alias})" if action.seed_alias else "")
    return action.action
