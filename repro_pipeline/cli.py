"""``repro-pipeline``: the embedded demo, tenant runs through Dagster, the TTL sweep, config validation.

Connection strings come from ``REPRO_STANDBY_DSN`` and ``REPRO_TARGET_DSN``; when both are unset the
embedded stack (``repro-pipeline stack up``) is used. User mistakes print one clear message, no traceback.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
from collections.abc import Sequence
from pathlib import Path

from repro_pipeline.engine.build import plan_subset
from repro_pipeline.engine.config import ReproConfig, default_config_paths
from repro_pipeline.engine.errors import ReproError
from repro_pipeline.engine.secrets import Secret
from repro_pipeline.stack import Stack

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def main(argv: Sequence[str] | None = None) -> int:
    arguments = _parser().parse_args(argv)
    try:
        return int(arguments.handler(arguments))
    except ReproError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (e.g. `| head`): nothing left to say
        sys.stderr.close()
        return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="repro-pipeline", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    demo = commands.add_parser("demo", help="embedded stack + synthetic source + a run for organization 451")
    demo.add_argument("--scale", type=float, default=1.0, help="synthetic source size (1.0: about 500k rows)")
    demo.add_argument("--organization", default="451")
    demo.set_defaults(handler=_demo)

    stack = commands.add_parser("stack", help="the embedded Postgres stack: up, down, status, destroy")
    stack.add_argument("action", choices=["up", "down", "status", "destroy"])
    stack.set_defaults(handler=_stack)

    source = commands.add_parser("source", help="build the synthetic billing source on the embedded primary")
    source.add_argument("--scale", type=float, default=1.0)
    source.add_argument("--force", action="store_true", help="rebuild even if the same source is there")
    source.set_defaults(handler=_source)

    materialize = commands.add_parser("materialize", help="run the tenant job for one organization")
    materialize.add_argument("organization", help="numeric organization id, e.g. 451")
    materialize.set_defaults(handler=_materialize)

    dev = commands.add_parser(
        "dev", help="`dagster dev` on the embedded stack (the UI at http://127.0.0.1:3000)"
    )
    dev.set_defaults(handler=_dev)

    sweep = commands.add_parser("sweep", help="drop the repro databases whose TTL has run out")
    sweep.set_defaults(handler=_sweep)

    plan = commands.add_parser("plan", help="the closure of one organization on any source, without writing")
    _engine_arguments(plan)
    plan.add_argument("--json", action="store_true", help="print the plan as JSON, for scripts")
    plan.set_defaults(handler=_plan)

    load = commands.add_parser("load", help="plan and masked load into a given empty database (no Dagster)")
    _engine_arguments(load)
    load.add_argument("--target", required=True, help="libpq URL of an empty database to fill")
    load.set_defaults(handler=_load)

    validate = commands.add_parser("validate", help="check the two config files (no database needed)")
    validate.add_argument("--mask-rules", type=Path, default=default_config_paths()[0])
    validate.add_argument("--commercial-extensions", type=Path, default=default_config_paths()[1])
    validate.set_defaults(handler=_validate)

    preview = commands.add_parser(
        "preview", help="PII auto-detection on the source and the policy diff (the strict_autodetect gate)"
    )
    preview.add_argument("--source", required=True, help="libpq URL of the source (a hot standby, read only)")
    preview.add_argument("--mask-rules", type=Path, default=default_config_paths()[0])
    preview.add_argument("--commercial-extensions", type=Path, default=default_config_paths()[1])
    preview.add_argument(
        "--policy-diff", type=Path, metavar="FILE", help="write the policy diff JSON here (before any exit 3)"
    )
    preview.add_argument(
        "--sample", type=_positive_int, default=200, metavar="N", help="rows sampled per table (200)"
    )
    preview.set_defaults(handler=_preview)

    schema = commands.add_parser(
        "schema", help="the JSON Schema of mask-rules.yaml and commercial-extensions.yaml"
    )
    schema.set_defaults(handler=_schema)
    return parser


def _positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive integer")
    return int(text)


def _engine_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--source", required=True, help="libpq URL of the source (a hot standby, read only)")
    parser.add_argument("--organization", required=True, help="numeric organization id")
    parser.add_argument("--mask-rules", type=Path, default=default_config_paths()[0])
    parser.add_argument("--commercial-extensions", type=Path, default=default_config_paths()[1])


def _plan(arguments: argparse.Namespace) -> int:
    import json

    from repro_pipeline.engine.build import open_source_snapshot
    from repro_pipeline.engine.report import plan_summary, plan_text

    config, salt, organization_id = _engine_inputs(arguments)
    with open_source_snapshot(arguments.source) as snapshot:
        summary = plan_summary(plan_subset(snapshot, config, salt, organization_id))
    print(json.dumps(summary, indent=2) if arguments.json else plan_text(summary))
    return 0


def _load(arguments: argparse.Namespace) -> int:
    import uuid
    from datetime import UTC, datetime

    from repro_pipeline.engine.build import load_repro, open_source_snapshot, require_empty_target

    config, salt, organization_id = _engine_inputs(arguments)
    require_empty_target(arguments.target)
    with open_source_snapshot(arguments.source) as snapshot:
        plan = plan_subset(snapshot, config, salt, organization_id)
        report = load_repro(
            snapshot,
            arguments.target,
            plan,
            run_id=f"cli-{uuid.uuid4().hex}",
            started_at=datetime.now(UTC),
            batch_size=config.mask_rules.batch_size,
        )
    for table, rows in sorted(report.loaded_rows.items()):
        print(f"{table!s:<36} {rows:>9}")
    print(f"loaded {sum(report.loaded_rows.values())} rows in {report.seconds:.1f} s")
    return 0


def _engine_inputs(arguments: argparse.Namespace) -> tuple[ReproConfig, Secret, int]:
    from repro_pipeline.engine.config import load_config
    from repro_pipeline.engine.secrets import resolve_salt
    from repro_pipeline.engine.tenant import parse_organization_id

    organization_id = parse_organization_id(arguments.organization)
    config = load_config(arguments.mask_rules, arguments.commercial_extensions)
    salt = resolve_salt(config.mask_rules.global_salt, what=f"global_salt in {arguments.mask_rules}")
    return config, salt, organization_id


def _stack(arguments: argparse.Namespace) -> int:
    from repro_pipeline.stack.__main__ import main as stack_main

    return stack_main([arguments.action])


def _source(arguments: argparse.Namespace) -> int:
    from repro_pipeline.synthetic import SourceSpec, build_source

    stack = _running_stack()
    summary = build_source(stack.primary_dsn, SourceSpec(scale=arguments.scale), force=arguments.force)
    print(f"source: {summary.total_rows} rows ({'built' if summary.generated else 'already built'})")
    return 0


def _validate(arguments: argparse.Namespace) -> int:
    from repro_pipeline.engine.config import load_config

    load_config(arguments.mask_rules, arguments.commercial_extensions)
    print(f"{arguments.mask_rules} and {arguments.commercial_extensions} are valid")
    return 0


def _preview(arguments: argparse.Namespace) -> int:
    """Findings, covered or not, on stdout; the policy diff to --policy-diff; exit 3 when the gate fails."""
    import json

    from repro_pipeline.engine.autodetect import detect, policy_diff, require_covered
    from repro_pipeline.engine.build import open_source_snapshot
    from repro_pipeline.engine.catalog import read_catalog
    from repro_pipeline.engine.config import load_config
    from repro_pipeline.engine.masking.plan import build_mask_plan

    config = load_config(arguments.mask_rules, arguments.commercial_extensions)
    with open_source_snapshot(arguments.source) as snapshot:
        catalog = read_catalog(snapshot.conn)
        # Every rule checked against the source as a run would; nothing is masked, so no salt is needed.
        build_mask_plan(config, catalog, Secret(secrets.token_hex(32)))
        findings = detect(snapshot.conn, catalog, config, sample_rows=arguments.sample)
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


def _schema(arguments: argparse.Namespace) -> int:
    import json

    from repro_pipeline.engine.config import CommercialExtensions, MaskRules

    schemas = {
        "mask-rules.yaml": MaskRules.model_json_schema(),
        "commercial-extensions.yaml": CommercialExtensions.model_json_schema(),
    }
    print(json.dumps(schemas, indent=2))
    return 0


def _demo(arguments: argparse.Namespace) -> int:
    from repro_pipeline.engine.tenant import parse_organization_id
    from repro_pipeline.stack import up
    from repro_pipeline.synthetic import SourceSpec, build_source

    organization_id = parse_organization_id(arguments.organization)
    print("1/3 starting the embedded stack (primary, streaming standby, target)...", flush=True)
    stack = up()
    print(f"    {stack.binaries.describe()}")
    print(
        "2/3 building the synthetic billing source on the primary (skipped when already built)...", flush=True
    )
    summary = build_source(stack.primary_dsn, SourceSpec(scale=arguments.scale))
    print(f"    {summary.total_rows} rows, {'built now' if summary.generated else 'already there'}")
    print(f"3/3 materializing partition {organization_id} through the Dagster instance...", flush=True)
    return _run_tenant(str(organization_id))


def _materialize(arguments: argparse.Namespace) -> int:
    from repro_pipeline.engine.tenant import parse_organization_id

    return _run_tenant(str(parse_organization_id(arguments.organization)))


def _dev(arguments: argparse.Namespace) -> int:
    from repro_pipeline.stack import up

    up()
    _use_embedded_stack_unless_configured()
    dagster = Path(sys.executable).with_name("dagster")
    os.execv(dagster, [str(dagster), "dev", "-w", str(PROJECT_ROOT / "workspace.yaml")])


def _sweep(arguments: argparse.Namespace) -> int:
    import dagster as dg

    from repro_pipeline.defs.launch import run_ttl_sweep

    _use_embedded_stack_unless_configured()
    with dg.DagsterInstance.get() as instance:
        outcome = run_ttl_sweep(instance, console_log_level="WARNING")
    if not outcome.success:
        print("error: the TTL sweep failed; see the run in the Dagster UI", file=sys.stderr)
        return 1
    print(f"dropped {len(outcome.dropped)} expired repro database(s): {', '.join(outcome.dropped) or '-'}")
    return 0


def _run_tenant(organization_key: str) -> int:
    import dagster as dg

    from repro_pipeline.defs.launch import materialize_tenant
    from repro_pipeline.demo_report import print_run_report

    stack = _use_embedded_stack_unless_configured()
    with dg.DagsterInstance.get() as instance:
        result = materialize_tenant(organization_key, instance, console_log_level="WARNING")
        password_file = str(stack.root / "credentials") if stack else ""
        return print_run_report(result, int(organization_key), password_file)


def _use_embedded_stack_unless_configured() -> Stack | None:
    """The embedded stack, unless both DSNs are set (then None: the user's own servers are used)."""
    os.environ.setdefault("DAGSTER_HOME", str(PROJECT_ROOT / "dagster_home"))
    configured = [name for name in ("REPRO_STANDBY_DSN", "REPRO_TARGET_DSN") if os.environ.get(name)]
    if len(configured) == 2:
        return None
    if configured:
        raise ReproError(
            f"only {configured[0]} is set: repro_pipeline needs both the standby and the target server",
            "set both REPRO_STANDBY_DSN and REPRO_TARGET_DSN, or neither to use the embedded stack",
        )
    stack = _running_stack()
    os.environ["REPRO_STANDBY_DSN"] = stack.standby_dsn
    os.environ["REPRO_TARGET_DSN"] = stack.target_admin_dsn
    if not os.environ.get("ANONYMIZATION_SALT"):
        os.environ["ANONYMIZATION_SALT"] = _demo_salt(stack.root)
    return stack


def _running_stack() -> Stack:
    from repro_pipeline.stack import status

    stack = status()
    if stack is None:
        raise ReproError(
            "the embedded stack is not set up, and REPRO_STANDBY_DSN / REPRO_TARGET_DSN are not set",
            "run `make demo` (or `repro-pipeline stack up`), or export the DSNs of your own servers",
        )
    return stack


def _demo_salt(stack_root: Path) -> str:
    """A random salt kept beside the embedded stack, so demo reruns mask the same way."""
    path = stack_root / "demo-salt"
    if not path.exists():
        path.touch(mode=0o600)
        path.write_text(secrets.token_hex(32))
    return path.read_text().strip()


if __name__ == "__main__":
    sys.exit(main())
