"""The engine's import rule (stated in ``repro_pipeline/engine/__init__.py``): stages import only the stages
before them, the shared modules stay shared, and nothing under ``engine/`` imports dagster."""

from __future__ import annotations

import ast
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

import repro_pipeline.engine

ENGINE = "repro_pipeline.engine"
STAGES = ("source", "subset", "masking", "load", "verify")
TARGET_SIDE = "repro_databases"
SHARED = frozenset({"config", "secrets", "secret_stores", "errors", "dsn", "pg_binaries", "exit_codes"})
CONFIG_VALIDATORS = frozenset(
    {f"{ENGINE}.subset.predicate", f"{ENGINE}.masking.regex", f"{ENGINE}.masking.providers"}
)


def engine_sources() -> dict[str, str]:
    """Every module under ``engine/`` by dotted name, with its source text; a package's ``__init__`` also
    stands as ``<package>.__init__`` (empty), so relative imports inside it resolve from the package."""
    root = Path(repro_pipeline.engine.__file__).parent
    sources = {}
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        text = path.read_text(encoding="utf-8")
        if parts[-1] == "__init__":
            sources[".".join((ENGINE, *parts))] = ""
            parts = parts[:-1]
        sources[".".join((ENGINE, *parts))] = text
    return sources


def _imports(module: str, source: str, known: frozenset[str]) -> Iterator[str]:
    """Every module ``source`` imports, at any depth (function-level imports too)."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                # In a package's __init__ the package itself is the first level: `from . import x` is in it.
                level = node.level - (f"{module}.__init__" in known)
                package = module.rsplit(".", level)[0] if level else module
                base = f"{package}.{base}" if base else package
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                yield submodule if submodule in known else base


def _part(module: str) -> str:
    """The stage, ``repro_databases``, or the shared module a module of the engine belongs to."""
    return module.removeprefix(f"{ENGINE}.").split(".")[0] if module != ENGINE else ""


def _allowed(importer: str, imported: str) -> bool:
    part, other = _part(importer), _part(imported)
    if part == other or other == "":
        return True
    if part in SHARED:
        return other in SHARED or (part == "config" and imported in CONFIG_VALIDATORS)
    if other in SHARED:
        return True
    if part == TARGET_SIDE:
        return other == "source"
    if other == TARGET_SIDE:
        return part in ("load", "verify")
    return other in STAGES[: STAGES.index(part)]


def violations(sources: Mapping[str, str]) -> list[str]:
    known = frozenset(sources)
    found = []
    for module, source in sorted(sources.items()):
        if module.endswith(".__init__"):
            continue  # a marker of the package, whose source stands under the package's name
        if _part(module) not in {"", *STAGES, TARGET_SIDE, *SHARED}:
            found.append(f"{module} belongs to no stage: place it in one, or name it in engine/__init__.py")
            continue
        for imported in _imports(module, source, known):
            top = imported.split(".")[0]
            if top == "dagster" or top.startswith("dagster_"):
                found.append(f"{module} imports {imported}: the engine never imports dagster")
            elif imported.startswith("repro_pipeline") and not (
                imported == ENGINE or imported.startswith(f"{ENGINE}.")
            ):
                found.append(f"{module} imports {imported}: the engine imports nothing outside engine/")
            elif imported.startswith(f"{ENGINE}.") and not _allowed(module, imported):
                found.append(f"{module} imports {imported}: against the stage order")
    for validator in sorted(CONFIG_VALIDATORS):
        for imported in _imports(validator, sources.get(validator, ""), known):
            if imported.startswith(f"{ENGINE}.") and imported != f"{ENGINE}.errors":
                found.append(f"{validator} imports {imported}: config's validators import only errors")
    return found


def test_the_engine_keeps_its_import_rule() -> None:
    sources = engine_sources()
    assert {_part(module) for module in sources} >= {*STAGES, TARGET_SIDE, *SHARED}
    assert violations(sources) == []


@pytest.mark.parametrize(
    ("module", "source", "complaint"),
    [
        (
            f"{ENGINE}.source.catalog",
            "from repro_pipeline.engine.subset.closure import Closure",
            "stage order",
        ),
        (f"{ENGINE}.masking.plan", "from repro_pipeline.engine.load import plan", "stage order"),
        (
            f"{ENGINE}.load.loader",
            "def f():\n    from repro_pipeline.engine.verify import leaks",
            "stage order",
        ),
        (f"{ENGINE}.verify.leaks", "from ..load.schema import sequence_positions", None),
        (f"{ENGINE}.subset.closure", "from ..verify.orphans import count_orphans", "stage order"),
        (
            f"{ENGINE}.repro_databases.lifecycle",
            "from repro_pipeline.engine.load import loader",
            "stage order",
        ),
        (
            f"{ENGINE}.masking.plan",
            "from repro_pipeline.engine.repro_databases import manifest",
            "stage order",
        ),
        (f"{ENGINE}.errors", "from repro_pipeline.engine.source.catalog import TableName", "stage order"),
        (f"{ENGINE}.dsn", "from repro_pipeline.engine.subset import predicate", "stage order"),
        (f"{ENGINE}.config", "from repro_pipeline.engine.masking.plan import MaskPlan", "stage order"),
        (f"{ENGINE}.config", "from repro_pipeline.engine.masking import regex", None),
        (f"{ENGINE}.subset.predicate", "from repro_pipeline.engine.config import ReproConfig", "only errors"),
        (f"{ENGINE}.verify.counts", "import dagster as dg", "never imports dagster"),
        (f"{ENGINE}.load.loader", "def f():\n    from dagster_postgres import x", "never imports dagster"),
        (
            f"{ENGINE}.load.loader",
            "from repro_pipeline.defs.resources import TargetServer",
            "outside engine/",
        ),
        (f"{ENGINE}.reports", "import os", "belongs to no stage"),
        (f"{ENGINE}.subset", "from ..load import plan", "stage order"),
        (f"{ENGINE}.subset", "from .closure import Root", None),
        (f"{ENGINE}.verify", "from ..masking import regex", None),
        (f"{ENGINE}.verify.leaks", "from ..masking import regex", None),
        (f"{ENGINE}.source.catalog", "from ..load import plan", "stage order"),
    ],
)
def test_a_backward_import_or_a_dagster_import_is_found(
    module: str, source: str, complaint: str | None
) -> None:
    sources = {**engine_sources(), module: source}
    found = [line for line in violations(sources) if line.startswith(f"{module} ")]
    if complaint is None:
        assert found == []
    else:
        assert found and all(complaint in line for line in found), found
