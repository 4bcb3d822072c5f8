"""JSONB path rules: mask or remove values inside a JSON document, leaving the rest untouched.

Plain dotted paths (``$.actor.email``) walk the parsed document directly; other JSONPath forms (array
indexes, wildcards, recursive descent, bracketed keys) go through jsonpath-ng. A missing path is a no-op
and the output is always valid JSON.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from jsonpath_ng.ext import parse as parse_jsonpath

from repro_pipeline.engine.masking.values import ValueMasker

_DOTTED = re.compile(r"\$(\.[A-Za-z_][A-Za-z0-9_-]*)+")

DocumentEdit = Callable[[Any], None]


@dataclass(frozen=True)
class JsonPathAction:
    path: str
    masker: ValueMasker | None  # None removes the key


def compile_document_masker(actions: Sequence[JsonPathAction]) -> ValueMasker:
    """A masker for a json/jsonb column's text that applies ``actions`` in order."""
    edits = [_compile(action) for action in actions]

    def mask(text: str | None) -> str | None:
        if text is None:
            return None
        exact: list[_ExactNumber] = []
        document = json.loads(text, parse_float=lambda literal: _parse_float(literal, exact))
        for edit in edits:
            edit(document)
        output = json.dumps(document, ensure_ascii=False, separators=(", ", ": "))
        for number in exact:
            output = output.replace(json.dumps(number), number.literal, 1)
        return output

    return mask


def compile_root_masker(masker: ValueMasker) -> ValueMasker:
    """A column rule (fake, hash) on a json/jsonb column: the whole document is masked as one leaf.

    A string document is masked as its text, any other as its JSON text (as under a path rule); the
    output is a JSON string, so it stays valid JSON. SQL NULL and JSON null stay as they are.
    """

    def mask(text: str | None) -> str | None:
        if text is None:
            return None
        exact: list[_ExactNumber] = []
        document = json.loads(text, parse_float=lambda literal: _parse_float(literal, exact))
        if document is None:
            return text
        return json.dumps(_masked_leaf(masker, document), ensure_ascii=False)

    return mask


class _ExactNumber(str):
    """A JSON number a float cannot hold exactly, kept as its literal (and a unique placeholder text).

    NUL cannot occur in jsonb text, so the placeholder never collides with a real string.
    """

    literal: str

    def __new__(cls, literal: str, index: int) -> _ExactNumber:
        placeholder = super().__new__(cls, f"\0{index}\0")
        placeholder.literal = literal
        return placeholder


def _parse_float(literal: str, exact: list[_ExactNumber]) -> float | _ExactNumber:
    value = float(literal)
    if math.isfinite(value) and Decimal(repr(value)) == Decimal(literal):
        return value
    exact.append(_ExactNumber(literal, len(exact)))
    return exact[-1]


def _masked_leaf(masker: ValueMasker, value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, _ExactNumber):
        return masker(value.literal)
    return masker(value if isinstance(value, str) else _json_text(value))


def _json_text(value: Any) -> str:
    """``value`` as JSON text, with the literals of exact numbers inside it (not their placeholders)."""
    text = json.dumps(value, sort_keys=True)
    for number in _exact_numbers(value):
        text = text.replace(json.dumps(number), number.literal, 1)
    return text


def _exact_numbers(value: Any) -> Iterator[_ExactNumber]:
    if isinstance(value, _ExactNumber):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _exact_numbers(item)
    elif isinstance(value, list):
        for item in value:
            yield from _exact_numbers(item)


def _compile(action: JsonPathAction) -> DocumentEdit:
    if _DOTTED.fullmatch(action.path):
        return _dotted_edit(tuple(action.path[2:].split(".")), action.masker)
    return _jsonpath_edit(action.path, action.masker)


def _dotted_edit(keys: tuple[str, ...], masker: ValueMasker | None) -> DocumentEdit:
    parents, leaf = keys[:-1], keys[-1]

    def edit(document: Any) -> None:
        node = document
        for key in parents:
            if not isinstance(node, dict):
                return
            node = node.get(key)
        if not isinstance(node, dict) or leaf not in node:
            return
        if masker is None:
            del node[leaf]
        else:
            node[leaf] = _masked_leaf(masker, node[leaf])

    return edit


def _jsonpath_edit(path: str, masker: ValueMasker | None) -> DocumentEdit:
    expression = parse_jsonpath(path)

    def edit(document: Any) -> None:
        if masker is None:
            expression.filter(lambda _value: True, document)
            return
        for match in expression.find(document):
            match.full_path.update(document, _masked_leaf(masker, match.value))

    return edit


def values_at(document: Any, path: str) -> list[Any]:
    """The values ``path`` selects in ``document`` (empty when the path is missing)."""
    return path_reader(path)(document)


def path_reader(path: str) -> Callable[[Any], list[Any]]:
    """``values_at`` for one path, parsed once: for reading the same path in many documents."""
    if _DOTTED.fullmatch(path):
        keys = path[2:].split(".")

        def dotted(document: Any) -> list[Any]:
            node = document
            for key in keys:
                if not isinstance(node, dict) or key not in node:
                    return []
                node = node[key]
            return [node]

        return dotted
    parsed = parse_jsonpath(path)
    return lambda document: [match.value for match in parsed.find(document)]


def string_leaves(document: Any) -> Iterator[str]:
    """Every string value in a JSON document, at any depth (keys excluded)."""
    if isinstance(document, str):
        yield document
    elif isinstance(document, dict):
        for value in document.values():
            yield from string_leaves(value)
    elif isinstance(document, list):
        for value in document:
            yield from string_leaves(value)
