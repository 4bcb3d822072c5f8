"""SortedKeys: the closure's keys in order, whatever their kind, as a sequence equal to the tuple it replaces."""

from __future__ import annotations

import pickle

import pytest
from hypothesis import given
from hypothesis import strategies as st

from repro_pipeline.engine.subset.sorted_keys import SortedKeys

INTEGER_KEYS = st.lists(st.integers(min_value=-(2**70), max_value=2**70), max_size=60)
TEXT_KEYS = st.lists(st.text(max_size=5), max_size=30)
COMPOSITE_KEYS = st.lists(st.tuples(st.integers(), st.text(max_size=3)), max_size=30)


@given(st.one_of(INTEGER_KEYS, TEXT_KEYS, COMPOSITE_KEYS), st.integers(0, 70), st.integers(0, 70))
def test_behaves_as_the_sorted_tuple_of_its_distinct_keys(keys: list[object], start: int, stop: int) -> None:
    expected = tuple(sorted(set(keys)))  # type: ignore[type-var]
    found = SortedKeys.of(keys)
    assert found == expected and expected == found
    assert tuple(found) == expected and len(found) == len(expected)
    assert tuple(found[start:stop]) == expected[start:stop]
    assert [found[i] for i in range(-len(found), len(found))] == list(expected * 2)
    assert all(key in found for key in keys)
    assert pickle.loads(pickle.dumps(found)) == expected


def test_a_missing_key_is_not_contained_and_unequal_sequences_differ() -> None:
    keys = SortedKeys.of([3, 1, 2])
    assert 4 not in keys and -1 not in keys and "1" not in keys
    assert keys != (1, 2) and keys != (1, 2, 4) and keys != "123"
    with pytest.raises(IndexError):
        keys[3]


def test_dense_integer_keys_stay_compact() -> None:
    keys = SortedKeys.of(range(1_000_000))
    assert len(pickle.dumps(keys)) < 100_000  # a tuple of them pickles to about 5 MB
