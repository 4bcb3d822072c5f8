"""Masks the source server applies in the load's ``COPY (SELECT ...)``, so their columns are not touched in
Python: ``null`` and ``static`` column rules as literals, ``remove`` paths of a jsonb column with ``#-``, and
a jsonb document split so that Python parses only the parts its path rules reach.

Each is still a ``ValueMasker`` giving the same value as the expression (``mask_row``, the reference checks
and the tests use it; for jsonb, the same value up to the order of its keys, which jsonb does not keep); the
load selects ``expression`` instead of the column and runs ``remaining`` (the rules the server cannot apply,
None when there are none) on what the server sent.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from psycopg import sql

from repro_pipeline.engine.masking import values
from repro_pipeline.engine.masking.json_paths import (
    PARTS_SEPARATOR,
    JsonPathAction,
    PartsMasker,
    compile_document_masker,
    dotted_keys,
)

ColumnExpression = Callable[[sql.Composable], sql.Composable]  # the column's reference -> what to select


@dataclass(frozen=True)
class SelectMask:
    python: values.ValueMasker  # the whole mask, in Python
    expression: ColumnExpression
    remaining: values.ValueMasker | None = None

    def __call__(self, value: str | None) -> str | None:
        return self.python(value)


def null() -> SelectMask:
    return SelectMask(values.null(), lambda column: sql.SQL("NULL"))


def static(replacement: str) -> SelectMask:
    def expression(column: sql.Composable) -> sql.Composable:
        return sql.SQL("CASE WHEN {column} IS NULL THEN NULL ELSE {value}::text END").format(
            column=column, value=sql.Literal(replacement)
        )

    return SelectMask(values.static(replacement), expression)


def document_masker(actions: Sequence[JsonPathAction], *, jsonb: bool) -> values.ValueMasker:
    """``compile_document_masker(actions)``, with what the server can do moved to the SELECT (jsonb only).

    A dotted ``remove`` outside the keys the other rules mask moves when it gives the same result done first:
    every rule before it is a dotted removal or a dotted rule whose path is not a proper prefix of its path (a
    rule masking ``$.actor`` as a whole would mask the subtree still holding ``$.actor.email``).

    When every other rule is a dotted path, the server sends the document in parts (``_in_parts``): Python
    parses and masks only the values of the top-level keys the rules start with, and the rest of the
    document goes on as the server printed it.
    """
    python = compile_document_masker(actions, jsonb=jsonb)
    if not jsonb:
        return python
    edited_tops = {
        keys[0] for action in actions if action.masker is not None and (keys := dotted_keys(action.path))
    }
    hoisted: list[tuple[str, ...]] = []
    remaining: list[JsonPathAction] = []
    for action in actions:
        keys = dotted_keys(action.path)
        removable = action.masker is None and keys is not None and keys[0] not in edited_tops
        if removable and keys is not None and _commutes_with(keys, remaining):
            hoisted.append(keys)
        else:
            remaining.append(action)
    remaining_keys = [dotted_keys(action.path) for action in remaining]
    if remaining and all(remaining_keys):
        top_keys = list(dict.fromkeys(keys[0] for keys in remaining_keys if keys))
        return SelectMask(
            python,
            lambda column: _in_parts(column, hoisted, top_keys),
            PartsMasker(remaining, top_keys),
        )
    if not hoisted:
        return python
    return SelectMask(
        python,
        lambda column: _object_only(column, _removals(column, hoisted)),
        compile_document_masker(remaining, jsonb=True) if remaining else None,
    )


def _commutes_with(removed: tuple[str, ...], earlier: Sequence[JsonPathAction]) -> bool:
    for action in earlier:
        keys = dotted_keys(action.path)
        if keys is None or (len(keys) < len(removed) and removed[: len(keys)] == keys):
            return False
    return True


def _removals(column: sql.Composable, paths: Sequence[tuple[str, ...]]) -> sql.Composable:
    """An object ``column`` without the keys at ``paths``, as the Python masker removes them: only where the
    parent is an object (``#-`` fails on a text key inside an array)."""
    removed: sql.Composable = column
    for keys in paths:
        parent = sql.Literal(list(keys[:-1])) + sql.SQL("::text[]")
        removed = sql.SQL(
            "({removed} #- CASE WHEN jsonb_typeof({column} #> {parent}) = 'object' THEN {path} "
            "ELSE '{{}}'::text[] END)"
        ).format(
            removed=removed, column=column, parent=parent, path=sql.Literal(list(keys)) + sql.SQL("::text[]")
        )
    return removed


def _object_only(
    column: sql.Composable, expression: sql.Composable, otherwise: sql.Composable | None = None
) -> sql.Composable:
    """``expression`` where ``column`` is a JSON object, else ``otherwise`` (the column itself by default):
    ``#-`` fails on a scalar, and no path applies to what is not an object."""
    return sql.SQL(
        "CASE WHEN jsonb_typeof({column}) = 'object' THEN {expression} ELSE {otherwise} END"
    ).format(column=column, expression=expression, otherwise=column if otherwise is None else otherwise)


def _in_parts(
    column: sql.Composable, removed: Sequence[tuple[str, ...]], top_keys: Sequence[str]
) -> sql.Composable:
    """An object ``column`` as ``PartsMasker`` takes it: the document without ``removed`` paths and
    ``top_keys``, then the value of each top key (empty when absent), separated by ``PARTS_SEPARATOR``."""
    parts = [
        sql.SQL("({rest} - {keys})::text").format(
            rest=_removals(column, removed), keys=sql.Literal(list(top_keys)) + sql.SQL("::text[]")
        ),
        *(
            sql.SQL("coalesce(({column} -> {key})::text, '')").format(column=column, key=sql.Literal(key))
            for key in top_keys
        ),
    ]
    return _object_only(
        column,
        sql.SQL("concat_ws({separator}, {parts})").format(
            separator=sql.Literal(PARTS_SEPARATOR), parts=sql.SQL(", ").join(parts)
        ),
        sql.SQL("{}::text").format(column),
    )
