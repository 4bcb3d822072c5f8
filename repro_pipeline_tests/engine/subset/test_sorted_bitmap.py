"""The closure's integer keys stay a bitmap, read as the sorted tuple of them would be."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from pyroaring import BitMap64

from repro_pipeline.engine.subset.closure import SortedBitmap
from repro_pipeline.engine.subset.keyset import batches

keys = st.sets(st.integers(min_value=0, max_value=2**64 - 1), max_size=50)


@given(keys, st.integers(min_value=-60, max_value=60), st.integers(min_value=-60, max_value=60))
def test_a_sorted_bitmap_reads_as_the_sorted_tuple_of_its_keys(
    values: set[int], start: int, stop: int
) -> None:
    expected = tuple(sorted(values))
    bitmap = SortedBitmap(BitMap64(values))
    assert len(bitmap) == len(expected) and tuple(bitmap) == expected
    assert bitmap == expected and expected == bitmap and bitmap == SortedBitmap(BitMap64(values))
    assert tuple(bitmap[start:stop]) == expected[start:stop]
    if expected:
        assert bitmap[start % len(expected)] == expected[start % len(expected)] and bitmap[-1] == expected[-1]
    assert [tuple(batch) for batch in batches(bitmap, 7)] == [tuple(b) for b in batches(expected, 7)]
    assert all(value in bitmap for value in values)
    assert -1 not in bitmap and "1" not in bitmap and 2**64 not in bitmap
    assert bitmap != (*expected, 2**64)
    if len(expected) > 1:
        assert bitmap != expected[::-1]
