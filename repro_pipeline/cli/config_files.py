"""The two config files: ``validate`` (no database), ``preview`` (PII auto-detection on the source and the
strict_autodetect policy gate) and ``schema`` (their JSON Schema)."""

from __future__ import annotations

import argparse
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

from repro_pipeline.cli.config_arguments import add_config_file_arguments
from repro_pipeline.cli.environment import source_dsn
from repro_pipeline.cli.json_output import add_json_argument, print_json, report_with_error
from repro_pipeline.cli.progress import progress_display
from repro_pipeline.cli.standby import add_allow_primary, add_source_argument, standby_snapshot
from repro_pipeline.engine.errors import PolicyGateFailed, ReproError
from repro_pipeline.engine.secrets import Secret


def add_commands(commands: argparse._SubParsersAction[Any]) -> None:
    validate = commands.add_parser("validate", help="check the two config files (no database needed)")
    add_config_file_arguments(validate)
    add_json_argument(validate, "the files checked")
    validate.set_defaults(handler=_validate)

    preview = commands.add_parser(
        "preview", help="PII auto-detection on the source and the policy diff (the strict_autodetect gate)"
    )
    add_source_argument(preview)
    add_config_file_arguments(preview)
    preview.add_argument(
        "--policy-diff", type=Path, metavar="FILE", help="write the policy diff JSON here (before any exit 6)"
    )
    preview.add_argument(
        "--sample", type=_positive_int, default=200, metavar="N", help="rows sampled per table (200)"
    )
    add_allow_primary(preview)
    add_json_argument(preview, "the policy diff")
    preview.set_defaults(handler=_preview)

    schema = commands.add_parser(
        "schema", help="the JSON Schema of mask-rules.yaml and commercial-extensions.yaml"
    )
    schema.set_defaults(handler=_schema)


def _positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive integer")
    return int(text)


def _validate(arguments: argparse.Namespace) -> int:
    from repro_pipeline.engine.config import load_config

    load_config(arguments.mask_rules, arguments.commercial_extensions)
    if arguments.json:
        print_json(
            {"valid": True, "files": [str(arguments.mask_rules), str(arguments.commercial_extensions)]}
        )
    else:
        print(f"{arguments.mask_rules} and {arguments.commercial_extensions} are valid")
    return 0


def _preview(arguments: argparse.Namespace) -> int:
    """Findings, covered or not, on stdout; the policy diff to --policy-diff; exit 6 when the gate fails."""
    import json

    from repro_pipeline.engine.config import load_config
    from repro_pipeline.engine.masking.autodetect import detect, policy_diff, require_covered
    from repro_pipeline.engine.masking.plan import build_mask_plan
    from repro_pipeline.engine.source.catalog import read_catalog

    config = load_config(arguments.mask_rules, arguments.commercial_extensions)
    source, _ = source_dsn(arguments.source)
    with (
        progress_display() as display,
        standby_snapshot(source, allow_primary=arguments.allow_primary) as snapshot,
        display.step("PII auto-detection on the source") as step,
    ):
        catalog = read_catalog(snapshot.conn)
        # Every rule checked against the source as a run would; nothing is masked, so neither the salt nor
        # the pseudonym key is needed (the policy gate runs in CI, which has neither).
        build_mask_plan(config, catalog, Secret(secrets.token_hex(32)), Secret(secrets.token_hex(32)))
        findings = detect(snapshot.conn, catalog, config, sample_rows=arguments.sample)
        step.done(f"{len(findings)} finding(s)")
    diff = policy_diff(findings, config)
    if arguments.policy_diff is not None:
        target = arguments.policy_diff
        partial = target.with_name(f".{target.name}.partial")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            partial.write_text(json.dumps(diff, indent=2) + "\n", encoding="utf-8")
            partial.replace(target)
        except OSError as exc:
            raise ReproError(
                f"cannot write the policy diff {target}: {exc.strerror}", "give a writable --policy-diff path"
            ) from None
    if arguments.json:
        return _preview_json(
            diff, lambda: require_covered(findings, config), config.mask_rules.strict_autodetect
        )
    for entry in diff["findings"]:
        where = f"{entry['table']}.{entry['column']}" + (f" {entry['path']}" if "path" in entry else "")
        state = "covered" if entry["covered_by"] else "NO RULE" if entry["confidence"] != "low" else "review"
        print(f"{where:<48} {entry['confidence']:<6} {state:<8} {entry['reason']}")
    summary = diff["summary"]
    print(
        f"{summary['findings']} finding(s): {summary['high']} high, {summary['medium']} medium, "
        f"{summary['low']} low; {summary['uncovered']} high/medium without a rule; "
        f"strict_autodetect: {'on' if diff['strict_autodetect'] else 'off'}"
    )
    if arguments.policy_diff is not None:
        print(f"policy diff written to {arguments.policy_diff}")
    if config.mask_rules.strict_autodetect:
        require_covered(findings, config)
    return 0


def _preview_json(diff: dict[str, Any], gate: Callable[[], None], strict: bool) -> int:
    """The diff as the document; a refusal of the gate is its ``error``, with exit 6."""
    if strict:
        try:
            gate()
        except PolicyGateFailed as refusal:
            return report_with_error(diff, refusal)
    print_json(diff)
    return 0


def _schema(arguments: argparse.Namespace) -> int:
    import json

    from repro_pipeline.engine.config import CommercialExtensions, MaskRules

    schemas = {
        "mask-rules.yaml": MaskRules.model_json_schema(),
        "commercial-extensions.yaml": CommercialExtensions.model_json_schema(),
    }
    print(json.dumps(schemas, indent=2))
    return 0
