"""Deterministic synthetic multi-tenant billing source (the seven-table contract in schema.sql)."""

from repro_pipeline.embedded.synthetic.generate import (
    DEMO_ORGANIZATION_ID,
    SCHEMA_SQL_PATH,
    TABLES,
    WHALE_AUDIT_DAYS,
    SourceSpec,
    SourceSummary,
    WhaleSizes,
    build_source,
)

__all__ = [
    "DEMO_ORGANIZATION_ID",
    "SCHEMA_SQL_PATH",
    "TABLES",
    "WHALE_AUDIT_DAYS",
    "SourceSpec",
    "SourceSummary",
    "WhaleSizes",
    "build_source",
]
