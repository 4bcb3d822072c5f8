"""A table's rows of the closure as a load worker gets them: compact keys, their batches built when asked for,
and segments of consecutive keys that together hold every key once."""

from __future__ import annotations

import pytest
from pyroaring import BitMap64

from repro_pipeline.engine.source.catalog import Column, Table, TableName
from repro_pipeline.engine.subset.closure import KeylessRows, SortedBitmap, TableRows

INVOICES = Table(
    TableName("public", "invoices"),
    columns=(Column("id", "bigint", not_null=True, default=None, identity="", generated=""),),
    primary_key=("id",),
)


def _keys(rows: TableRows) -> list[int]:
    return list(rows.keys)


@pytest.mark.parametrize(("count", "parts"), [(10, 3), (9, 3), (2, 5), (1, 1), (7, 1), (0, 2)])
def test_segments_hold_every_key_once_in_order_and_evenly(count: int, parts: int) -> None:
    rows = TableRows(keys=SortedBitmap(BitMap64(range(100, 100 + 3 * count, 3))))
    segments = rows.segments(parts)
    assert [key for segment in segments for key in _keys(segment)] == _keys(rows)
    assert len(segments) == (parts if count >= parts else 1)
    sizes = [segment.count for segment in segments]
    assert max(sizes) - min(sizes) <= 1
    assert all(isinstance(segment.keys, SortedBitmap) for segment in segments)


def test_a_keyless_tables_selection_is_one_segment() -> None:
    rows = TableRows(keyless=KeylessRows(roots=(), parents=(), rows=12))
    assert rows.segments(4) == [rows]
    assert rows.count == 12


def test_batches_are_built_as_they_are_asked_for_with_their_rows() -> None:
    rows = TableRows(keys=SortedBitmap(BitMap64(range(1, 11))))
    conditions = rows.conditions(INVOICES, 451, batch_size=4)
    _, first_params = next(conditions)
    assert first_params == {"keys_0": "{1,2,3,4}"}
    assert [params for _, params in conditions] == [{"keys_0": "{5,6,7,8}"}, {"keys_0": "{9,10}"}]
    assert list(rows.batch_rows(4)) == [4, 4, 2]
