"""JSONB path rules: mask or remove values inside a JSON document, leaving the rest untouched.

Plain dotted paths (``$.actor.email``) walk the parsed document directly; other JSONPath forms (array
indexes, wildcards, recursive descent, bracketed keys) go through jsonpath-ng. A missing path is a no-op
and the output is always valid JSON.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, AnyStr

from jsonpath_ng.ext import parse as parse_jsonpath

from repro_pipeline.engine.masking.values import ValueMasker

_DOTTED = re.compile(r"\$(\.[A-Za-z_][A-Za-z0-9_-]*)+")

DocumentEdit = Callable[[Any], None]


@dataclass(frozen=True)
class JsonPathAction:
    path: str
    masker: ValueMasker | None  # None removes the key


def compile_document_masker(actions: Sequence[JsonPathAction], *, jsonb: bool = False) -> ValueMasker:
    """A masker for a json/jsonb column's text that applies ``actions`` in order.

    With ``jsonb`` (the text as PostgreSQL prints a jsonb value, keys written as they are) and only dotted
    paths, a document in which no path's last key appears is returned as it came, without being parsed.
    """
    edits = [_compile(action) for action in actions]
    decode, encode = _decoder().decode, _encoder().encode
    last_keys = _last_keys(actions) if jsonb else None

    def mask(text: str | None) -> str | None:
        if text is None:
            return None
        if last_keys is not None and not any(key in text for key in last_keys):
            return text
        document = decode(text)
        for edit in edits:
            edit(document)
        return _with_exact_numbers(encode(document))

    return mask


def _last_keys(actions: Sequence[JsonPathAction]) -> tuple[str, ...] | None:
    """Each dotted path's last key as it appears in jsonb text (quoted), or None when a path is not dotted."""
    if not all(_DOTTED.fullmatch(action.path) for action in actions):
        return None
    return tuple(dict.fromkeys(f'"{action.path.rpartition(".")[2]}"' for action in actions))


def compile_root_masker(masker: ValueMasker) -> ValueMasker:
    """A column rule (fake, hash) on a json/jsonb column: the whole document is masked as one leaf.

    A string document is masked as its text, any other as its JSON text (as under a path rule); the
    output is a JSON string, so it stays valid JSON. SQL NULL and JSON null stay as they are.
    """
    decode, encode = _decoder().decode, _encoder().encode

    def mask(text: str | None) -> str | None:
        if text is None:
            return None
        document = decode(text)
        if document is None:
            return text
        return encode(_masked_leaf(masker, document))

    return mask


PARTS_SEPARATOR = "\x01"  # a raw control character never occurs in jsonb text (it is written as \u0001)


class PartsMasker:
    """A masker for a jsonb document the server sent in parts (see ``in_select``): the document without
    ``top_keys``, then the value of each of them (empty when absent), separated by ``PARTS_SEPARATOR``.

    Only the values of ``top_keys`` are parsed and masked by ``actions`` (dotted paths under them); they are
    appended to the rest, which goes on as the server printed it. The text differs from the whole document's
    in its keys' order, which jsonb does not keep: the target stores the same value. ``members`` is the part
    the masks write, for a caller that passes the rest on as it came (the load's COPY text).
    """

    def __init__(self, actions: Sequence[JsonPathAction], top_keys: Sequence[str]) -> None:
        self._edits = [_compile(action) for action in actions]
        self._decode, self._encode = _decoder().decode, _encoder().encode
        self._keys = tuple(top_keys)

    def __call__(self, text: str | None) -> str | None:
        if text is None:
            return None
        rest, separator, parts = text.partition(PARTS_SEPARATOR)
        if not separator:
            return text  # not an object: no path applies
        return with_members(rest, self.members(parts))

    def members(self, parts: str) -> str:
        """The masked values of the top keys (the text after the first ``PARTS_SEPARATOR``) as the members of
        a JSON object (``"actor": {...}``), or ``""`` when none is left."""
        decode = self._decode
        document = {
            key: decode(part)
            for key, part in zip(self._keys, parts.split(PARTS_SEPARATOR), strict=True)
            if part
        }
        for edit in self._edits:
            edit(document)
        return _with_exact_numbers(
            ", ".join(f'"{key}": {self._encode(value)}' for key, value in document.items())
        )


def with_members(rest: AnyStr, members: AnyStr) -> AnyStr:
    """The JSON object text ``rest`` with ``members`` (JSON text of members, or empty) added before its closing
    brace: as text, or as bytes of an encoding in which ``{``, ``}``, ``,`` and space are their ASCII bytes
    (as in COPY text, which escapes none of them)."""
    if not members:
        return rest
    if len(rest) > 2:  # not the empty object
        members = (", " if isinstance(rest, str) else b", ") + members
    return rest[:-1] + members + rest[-1:]


def _decoder() -> json.JSONDecoder:
    """One decoder per masker, built once: ``json.loads`` with a ``parse_float`` builds one per call."""
    return json.JSONDecoder(parse_float=_parse_float)


def _encoder() -> json.JSONEncoder:
    return json.JSONEncoder(ensure_ascii=False, separators=(", ", ": "))


class _ExactNumber(str):
    """A JSON number kept as its literal (see ``_parse_float``) inside a placeholder string that the output
    gets back as the literal (``_with_exact_numbers``). NUL cannot occur in jsonb text, so the placeholder
    never collides with a real string."""

    literal: str

    def __new__(cls, literal: str) -> _ExactNumber:
        placeholder = super().__new__(cls, f"\0{literal}\0")
        placeholder.literal = literal
        return placeholder


_PLACEHOLDER = re.compile(r'"\\u0000(-?[0-9][0-9.eE+-]*)\\u0000"')


def _with_exact_numbers(output: str) -> str:
    """``output`` with the exact numbers' placeholders (written as JSON strings) back as their literals."""
    return _PLACEHOLDER.sub(r"\1", output) if '"\\u0000' in output else output


def _parse_float(literal: str) -> float | _ExactNumber:
    """A float when Python writes it back as the same text, else the literal: ``1.50``, ``1E3`` and numbers a
    float cannot hold stay as the source wrote them (and as PostgreSQL prints a jsonb number)."""
    value = float(literal)
    return value if repr(value) == literal else _ExactNumber(literal)


def _masked_leaf(masker: ValueMasker, value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, _ExactNumber):
        return masker(value.literal)
    return masker(value if isinstance(value, str) else _json_text(value))


def _json_text(value: Any) -> str:
    """``value`` as JSON text, with the literals of exact numbers inside it (not their placeholders)."""
    return _with_exact_numbers(json.dumps(value, sort_keys=True))


def dotted_keys(path: str) -> tuple[str, ...] | None:
    """The keys of a plain dotted path (``$.actor.email``: actor, email), or None for any other JSONPath."""
    return tuple(path[2:].split(".")) if _DOTTED.fullmatch(path) else None


def _compile(action: JsonPathAction) -> DocumentEdit:
    keys = dotted_keys(action.path)
    if keys is not None:
        return _dotted_edit(keys, action.masker)
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
