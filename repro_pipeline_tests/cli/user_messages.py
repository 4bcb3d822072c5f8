"""The error messages ``repro-pipeline`` can print to a user, read from the code: the first argument of every
``raise`` of an error class of repro_pipeline (``ReproError``, ``StackError`` and their subclasses), the
``error: ...`` lines the CLI prints itself, and the problems it reports for a failed run. Each message is
known by its signature: its longest literal text, the part a troubleshooting entry quotes."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "repro_pipeline"
BASE_ERRORS = frozenset({"ReproError", "StackError"})
_WORD = re.compile(r"\w")


@dataclass(frozen=True)
class UserMessage:
    where: str  # path:line in the package
    code: str  # the message's expression, as written
    signature: str  # its longest literal text, spaces normalized; "" when it has none worth quoting


def _trees(package: Path) -> dict[str, ast.Module]:
    return {
        str(path.relative_to(package.parent)): ast.parse(path.read_text(encoding="utf-8"))
        for path in sorted(package.rglob("*.py"))
    }


def error_classes(trees: dict[str, ast.Module]) -> frozenset[str]:
    """The names of the base errors and of every class that derives from one, in any module."""
    names = set(BASE_ERRORS)
    classes = [node for tree in trees.values() for node in ast.walk(tree) if isinstance(node, ast.ClassDef)]
    grown = True
    while grown:
        grown = False
        for node in classes:
            bases = {
                base.id if isinstance(base, ast.Name) else getattr(base, "attr", "") for base in node.bases
            }
            if node.name not in names and bases & names:
                names.add(node.name)
                grown = True
    return frozenset(names)


def _literals(node: ast.expr, helpers: dict[str, list[ast.expr]]) -> list[str] | None:
    """The literal parts of a string expression (a constant, an f-string, a sum of them, a call of a
    function of the same module that returns one), or None when it has none: a variable, another module's
    call."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.JoinedStr):
        parts: list[str] = []
        for value in node.values:
            if isinstance(value, ast.Constant):
                parts.append(str(value.value))
            elif isinstance(value, ast.FormattedValue):
                parts += _literals(value.value, helpers) or []
        return parts
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _literals(node.left, helpers), _literals(node.right, helpers)
        return None if left is None and right is None else (left or []) + (right or [])
    if isinstance(node, ast.Call):
        called = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")
        if called in helpers:
            found = [_literals(returned, helpers) for returned in helpers[called]]
            return [part for parts in found if parts for part in parts] or None
    return None


def _helpers(tree: ast.Module) -> dict[str, list[ast.expr]]:
    """What each function of a module returns, by its name."""
    return {
        node.name: [
            returned.value
            for returned in ast.walk(node)
            if isinstance(returned, ast.Return) and returned.value is not None
        ]
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef)
    }


SIGNATURE_CHARACTERS = 40


def signature(parts: list[str]) -> str:
    """The start of the longest literal part (an entry quotes a message's start), cut at a word's end."""
    longest = max((" ".join(part.split()) for part in parts), key=len, default="").strip(" :;,.")
    if len(_WORD.findall(longest)) < 3:
        return ""
    if len(longest) <= SIGNATURE_CHARACTERS:
        return longest
    return longest[: longest.rfind(" ", 0, SIGNATURE_CHARACTERS + 1)].rstrip(" :;,.")


def _message(where: str, node: ast.expr, helpers: dict[str, list[ast.expr]], prefix: str = "") -> UserMessage:
    parts = _literals(node, helpers)
    if parts and prefix and parts[0].startswith(prefix):
        parts = [parts[0].removeprefix(prefix), *parts[1:]]
    return UserMessage(where, ast.unparse(node), "" if parts is None else signature(parts))


def user_messages(package: Path = PACKAGE) -> Iterator[UserMessage]:
    trees = _trees(package)
    errors = error_classes(trees)
    for path, tree in trees.items():
        helpers = _helpers(tree)
        for node in ast.walk(tree):
            where = f"{path}:{getattr(node, 'lineno', 0)}"
            if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call) and node.exc.args:
                called = node.exc.func
                name = called.id if isinstance(called, ast.Name) else getattr(called, "attr", "")
                if name in errors:
                    yield _message(where, node.exc.args[0], helpers)
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.args:
                if node.func.id == "print":
                    parts = _literals(node.args[0], helpers)
                    if parts and parts[0].startswith("error: "):
                        yield _message(where, node.args[0], helpers, "error: ")
                elif node.func.id == "report_failure" and len(node.args) >= 2:
                    yield _message(where, node.args[1], helpers)
