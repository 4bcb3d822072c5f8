"""``python -m repro_pipeline_tests.bench.free_text [--quick]``: what ``ner_mask`` on the whale's support notes
costs, on the bench's own stack (the source ``make bench`` builds): the plan with and without its dictionary, the
dictionary's size (what each load worker is sent), and the notes masked per second, as ratios to the plan."""

from __future__ import annotations

import argparse
import json
import pickle
import secrets
import tempfile
import time
from pathlib import Path

import psycopg

from repro_pipeline.embedded.stack import down
from repro_pipeline.embedded.synthetic import SourceSpec
from repro_pipeline.engine.config import ReproConfig, load_config
from repro_pipeline.engine.load.plan import plan_subset
from repro_pipeline.engine.masking.free_text_originals import read_free_text_dictionary
from repro_pipeline.engine.secrets import Secret
from repro_pipeline.engine.source.catalog import TableName
from repro_pipeline.engine.source.snapshot import open_source_snapshot
from repro_pipeline_tests.bench.__main__ import PROJECT_ROOT, QUICK_SOURCE_SCALE, QUICK_WHALE_SCALE
from repro_pipeline_tests.bench.measures import EXTENSIONS, MASK_RULES
from repro_pipeline_tests.bench.source import BenchTenant, bench_source

REMOVED = "      - path: $.internal.support_notes\n        action: remove"
NER_MASKED = "      - path: $.internal.support_notes\n        action: ner_mask"
NOTES = (
    "SELECT payload #>> '{internal,support_notes}' FROM audit_events WHERE organization_id = %s "
    "AND payload #> '{internal}' ? 'support_notes' AND occurred_at >= now() - interval '90 days'"
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--quick", action="store_true", help="the quick bench's source (as make bench --quick)"
    )
    quick = parser.parse_args(argv).quick
    spec = SourceSpec(
        scale=QUICK_SOURCE_SCALE if quick else 1.0, whale_scale=QUICK_WHALE_SCALE if quick else 1.0
    )
    stack_root = PROJECT_ROOT / ".bench" / ("stack-quick" if quick else "stack")
    source = bench_source(stack_root, spec)
    try:
        with tempfile.TemporaryDirectory() as folder:
            extensions = Path(folder) / "commercial-extensions.yaml"
            extensions.write_text(EXTENSIONS.read_text().replace(REMOVED, NER_MASKED))
            shipped, masked = load_config(MASK_RULES, EXTENSIONS), load_config(MASK_RULES, extensions)
            for tenant in source.tenants(secrets.token_hex(32)):
                _measure(tenant, shipped, masked)
    finally:
        down(stack_root)
    return 0


def _measure(tenant: BenchTenant, shipped: ReproConfig, masked: ReproConfig) -> None:
    salt = Secret(tenant.salt)
    with open_source_snapshot(tenant.standby_dsn) as snapshot:
        plan_subset(snapshot, shipped, salt, tenant.organization)  # warms the server's caches for both plans
        began = time.perf_counter()
        plan = plan_subset(snapshot, shipped, salt, tenant.organization)
        plan_seconds = time.perf_counter() - began
        began = time.perf_counter()
        dictionary = read_free_text_dictionary(
            snapshot.conn,
            masked,
            plan.catalog,
            plan.mask_plan,
            lambda table: plan.closure.row_conditions(
                table, tenant.organization, masked.mask_rules.batch_size
            ),
        )
        dictionary_seconds = time.perf_counter() - began
        began = time.perf_counter()
        ner_plan = plan_subset(snapshot, masked, salt, tenant.organization)
        ner_plan_seconds = time.perf_counter() - began
    with psycopg.connect(tenant.standby_dsn) as conn:
        notes = [note for (note,) in conn.execute(NOTES, (tenant.organization,))]
    payload = ner_plan.mask_plan.for_table(TableName("public", "audit_events")).masker_for("payload")
    if payload is None:
        raise RuntimeError("the payload has no masker")
    documents = [json.dumps({"internal": {"support_notes": note}}) for note in notes]
    began = time.perf_counter()
    for document in documents:
        payload(document)
    mask_seconds = time.perf_counter() - began
    print(
        f"{tenant.label}: {plan.closure.total_rows:,} rows; plan {plan_seconds:.2f} s, with ner_mask "
        f"{ner_plan_seconds:.2f} s ({ner_plan_seconds / plan_seconds:.2f}x); dictionary read "
        f"{dictionary_seconds:.2f} s ({dictionary_seconds / plan_seconds:.2f}x the plan), "
        f"{dictionary.describe()}, {len(pickle.dumps(dictionary)) / 1e6:.1f} MB pickled per worker; "
        f"{len(notes):,} notes masked in {mask_seconds:.2f} s "
        f"({len(notes) / mask_seconds if mask_seconds else 0:,.0f} documents/s)",
        flush=True,
    )


if __name__ == "__main__":
    raise SystemExit(main())
