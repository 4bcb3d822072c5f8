"""Masks the source server applies in the load's ``COPY (SELECT ...)``, so their columns are not touched in
Python: ``null`` and ``static`` column rules as literals, and ``remove`` paths of a jsonb column with ``#-``.

Each is still a ``ValueMasker`` giving the same text as the expression (``mask_row``, the reference checks
and the tests use it); the load selects ``expression`` instead of the column and runs ``remaining`` (the
rules the server cannot apply, None when there are none) on what the server sent.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from psycopg import sql

from repro_pipeline.engine.masking import values
from repro_pipeline.engine.masking.json_paths import JsonPathAction, compile_document_masker, dotted_keys

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
    """``compile_document_masker(actions)``, with the removals the server can apply moved to the SELECT.

    A dotted ``remove`` moves when it gives the same result done first: every rule before it is a dotted
    removal or a dotted rule whose path is not a proper prefix of its path (a rule masking ``$.actor`` as a
    whole would mask the subtree still holding ``$.actor.email``). Only on jsonb, whose text the server
    prints the way the Python masker writes it.
    """
    python = compile_document_masker(actions, jsonb=jsonb)
    if not jsonb:
        return python
    hoisted: list[tuple[str, ...]] = []
    remaining: list[JsonPathAction] = []
    for action in actions:
        keys = dotted_keys(action.path)
        if action.masker is None and keys is not None and _commutes_with(keys, remaining):
            hoisted.append(keys)
        else:
            remaining.append(action)
    if not hoisted:
        return python
    return SelectMask(
        python,
        lambda column: _removals(column, hoisted),
        compile_document_masker(remaining, jsonb=True) if remaining else None,
    )


def _commutes_with(removed: tuple[str, ...], earlier: Sequence[JsonPathAction]) -> bool:
    for action in earlier:
        keys = dotted_keys(action.path)
        if keys is None or (len(keys) < len(removed) and removed[: len(keys)] == keys):
            return False
    return True


def _removals(column: sql.Composable, paths: Sequence[tuple[str, ...]]) -> sql.Composable:
    """``column`` without the keys at ``paths``, as the Python masker removes them: only where the parent
    is an object (``#-`` fails on a scalar document and on a text key inside an array)."""
    removed: sql.Composable = column
    for keys in paths:
        parent = sql.Literal(list(keys[:-1])) + sql.SQL("::text[]")
        removed = sql.SQL(
            "({removed} #- CASE WHEN jsonb_typeof({column} #> {parent}) = 'object' THEN {path} "
            "ELSE '{{}}'::text[] END)"
        ).format(
            removed=removed, column=column, parent=parent, path=sql.Literal(list(keys)) + sql.SQL("::text[]")
        )
    return sql.SQL("CASE WHEN jsonb_typeof({column}) = 'object' THEN {removed} ELSE {column} END").format(
        column=column, removed=removed
    )
