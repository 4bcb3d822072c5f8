"""The catalog snapshot's file: written and read back, and refused with one message when it cannot be read."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from repro_pipeline.engine.errors import ConfigError
from repro_pipeline.engine.source.catalog import TableName
from repro_pipeline.engine.source.catalog_snapshot import CatalogSnapshot, CatalogTable, load_catalog_snapshot

SNAPSHOT = CatalogSnapshot(
    source="127.0.0.1:5433/billing",
    taken_at=datetime(2026, 12, 6, 22, 0, tzinfo=UTC),
    tables=(
        CatalogTable(schema_name="public", name="invoices"),
        CatalogTable(schema_name="app", name="users"),
    ),
)


def test_a_written_snapshot_reads_back_the_same(tmp_path: Path) -> None:
    path = tmp_path / "state"
    path.write_text(SNAPSHOT.to_json())
    read = load_catalog_snapshot(path)
    assert read == SNAPSHOT
    assert read.table_names == (TableName("public", "invoices"), TableName("app", "users"))


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("{not json", "invalid field(s), the first at the top: Invalid JSON"),
        (
            '{"source": "s", "taken_at": "2026-12-06T22:00:00Z", "tables": [{"name": "x"}]}',
            "tables.0.schema_name",
        ),
        (
            '{"source": "s", "taken_at": "2026-12-06T22:00:00Z", "tables": [], "extra": 1}',
            "extra: Extra inputs are not permitted",
        ),
    ],
)
def test_an_unreadable_snapshot_is_one_message_naming_the_file_and_the_command(
    tmp_path: Path, text: str, reason: str
) -> None:
    path = tmp_path / "state"
    path.write_text(text)
    with pytest.raises(ConfigError) as raised:
        load_catalog_snapshot(path)
    assert str(path) in raised.value.problem and reason in raised.value.problem
    assert "repro-pipeline catalog refresh" in raised.value.remedy
