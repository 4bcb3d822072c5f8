"""``suggest-references``: the references a source keeps without foreign keys, as ``virtual_foreign_keys``
entries ready to paste into ``commercial-extensions.yaml`` (or ``--json``). It reads only, in one snapshot."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

import yaml

from repro_pipeline.cli.environment import source_dsn
from repro_pipeline.cli.json_output import add_json_argument, print_json
from repro_pipeline.cli.progress import progress_display
from repro_pipeline.cli.standby import add_allow_primary, add_source_argument, standby_snapshot
from repro_pipeline.engine.config import ReproConfig, default_config_paths
from repro_pipeline.engine.source.reference_suggestions import ColumnRef, ReferenceSuggestions, Suggestion

DESCRIPTION = """\
Lists the references the source keeps without a foreign key: a <name>_id column with no declared (or
already virtual) foreign key, whose non-null values ALL exist in the one-column primary key or unique
key, of the same type, of a table named <name>s, <name>es (category_id: categories), <name> or
<app>_<name> (Django), in any schema; best name match first. Each candidate is one read-only anti-join
that stops at the first missing value, all in one snapshot. The output is YAML to paste into
commercial-extensions.yaml as it is, with the distinct values checked per entry and, as comments, the
columns left out and why (or JSON with --json). Review each entry before pasting: values that all match
make a reference likely, not certain."""


def add_commands(commands: argparse._SubParsersAction[Any]) -> None:
    suggest = commands.add_parser(
        "suggest-references",
        help="likely references without a foreign key, as virtual_foreign_keys YAML to paste",
        description=DESCRIPTION,
    )
    add_source_argument(suggest)
    suggest.add_argument(
        "--mask-rules",
        type=Path,
        help="mask-rules.yaml, validated with the other file; its implied_fk_ignore columns are not suggested "
        "(default: $REPRO_MASK_RULES or config/mask-rules.yaml)",
    )
    suggest.add_argument(
        "--commercial-extensions",
        type=Path,
        help="its virtual_foreign_keys are not suggested again (default: $REPRO_COMMERCIAL_EXTENSIONS or "
        "config/commercial-extensions.yaml; without either file at its default path, none is read)",
    )
    suggest.add_argument(
        "--statement-timeout",
        type=_positive_seconds,
        default=60.0,
        metavar="SECONDS",
        help="the longest one check may run; a column whose check runs longer is reported as not checked (60)",
    )
    add_json_argument(suggest, "the suggestions")
    add_allow_primary(suggest)
    suggest.set_defaults(handler=_suggest_references)


def _positive_seconds(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        seconds = 0.0
    if not seconds > 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number of seconds")
    return seconds


def _suggest_references(arguments: argparse.Namespace) -> int:
    from repro_pipeline.engine.source.catalog import read_catalog
    from repro_pipeline.engine.source.reference_suggestions import (
        declared_virtual_columns,
        ignored_columns,
        suggest_references,
    )

    config, config_note = _config(arguments)
    source, _ = source_dsn(arguments.source)
    with (
        progress_display() as display,
        standby_snapshot(source, allow_primary=arguments.allow_primary) as snapshot,
        display.step("references without a foreign key") as step,
    ):
        catalog = read_catalog(snapshot.conn)
        ignored = ignored_columns(config, catalog)
        if ignored:
            config_note += f"; {len(ignored)} column(s) of implied_fk_ignore left out"
        found = suggest_references(
            snapshot.conn,
            catalog,
            declared_virtual_columns(config.extensions if config else None) | ignored,
            statement_timeout_seconds=arguments.statement_timeout,
        )
        step.done(f"{len(found.suggestions)} suggestion(s)")
    if arguments.json:
        print_json(_as_json(found, snapshot.source))
    else:
        print(_as_yaml(found, snapshot.source, config_note))
    return 0


def _config(arguments: argparse.Namespace) -> tuple[ReproConfig | None, str]:
    """The configuration, read as ``plan`` reads it when a file is given or at its default path."""
    from repro_pipeline.engine.config import load_config

    default_rules, default_extensions = default_config_paths()
    rules: Path | None = arguments.mask_rules
    extensions: Path | None = arguments.commercial_extensions
    if rules is None and extensions is None and not (default_rules.exists() or default_extensions.exists()):
        return None, f"no configuration read ({default_extensions} does not exist)"
    extensions = extensions or default_extensions
    config = load_config(rules or default_rules, extensions)
    return config, f"virtual_foreign_keys of {extensions} left out"


def _as_json(found: ReferenceSuggestions, source: str) -> dict[str, Any]:
    def key(ref: ColumnRef) -> dict[str, str]:
        return {"table": str(ref.table), "column": ref.column}

    return {
        "source": source,
        "columns_considered": found.columns_considered,
        "suggestions": [
            {
                **key(suggestion.child),
                "references": key(suggestion.key),
                "name_match": suggestion.name_match.label,
                "distinct_values_checked": suggestion.distinct_values,
                "all_found": True,
                "alternatives": [key(other) for other in suggestion.alternatives],
                "virtual_foreign_key": _entry(suggestion),
            }
            for suggestion in found.suggestions
        ],
        "not_suggested": [
            {
                **key(left.child),
                "references": None if left.key is None else key(left.key),
                "reason": left.reason,
            }
            for left in found.not_suggested
        ],
    }


def _entry(suggestion: Suggestion) -> dict[str, Any]:
    return {
        "table": str(suggestion.child.table),
        "columns": [suggestion.child.column],
        "references": {"table": str(suggestion.key.table), "columns": [suggestion.key.column]},
    }


def _as_yaml(found: ReferenceSuggestions, source: str, config_note: str) -> str:
    lines = [
        _comment(
            f"repro-pipeline suggest-references on {source}: {len(found.suggestions)} suggestion(s) among "
            f"{found.columns_considered} <name>_id column(s) without a declared reference; {config_note}."
        ),
        _comment("Each reference below holds for every non-null value of the column today: review it, then"),
        _comment(
            "paste the entries into commercial-extensions.yaml (under its virtual_foreign_keys: if any)."
        ),
        "virtual_foreign_keys:" if found.suggestions else "virtual_foreign_keys: []",
    ]
    for suggestion in found.suggestions:
        also = "".join(f"; also found in {other}" for other in suggestion.alternatives)
        lines += [
            "  "
            + _comment(
                f"{suggestion.child}: {suggestion.distinct_values} distinct value(s) checked, all found in "
                f"{suggestion.key} (name match: {suggestion.name_match.label}){also}"
            ),
            f"  - table: {_scalar(str(suggestion.child.table))}",
            f"    columns: [{_scalar(suggestion.child.column)}]",
            f"    references: {{table: {_scalar(str(suggestion.key.table))}, "
            f"columns: [{_scalar(suggestion.key.column)}]}}",
        ]
    for left in found.not_suggested:
        references = "" if left.key is None else f" -> {left.key}"
        lines.append(_comment(f"not suggested: {left.child}{references}: {left.reason}"))
    return "\n".join(lines)


def _scalar(text: str) -> str:
    """A name as a YAML scalar: plain when YAML reads it back as that string (``on`` and ``null`` it does
    not), else double-quoted (a JSON string is valid YAML)."""
    plain = re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.$]*", text) and yaml.safe_load(text) == text
    return text if plain else json.dumps(text)


def _comment(text: str) -> str:
    """A comment line: a line break in a name (Postgres allows one) would end the comment."""
    return "# " + text.replace("\r", "\\r").replace("\n", "\\n")
