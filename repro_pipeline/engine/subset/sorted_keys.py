"""A table's keys in order, as a read-only sequence that keeps integer keys compact."""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, overload

from pyroaring import BitMap64, FrozenBitMap64

Key = Any  # a scalar for one-column primary keys, a tuple for composite ones
_BITMAP_END = 1 << 64


def bitmap_key(key: Key) -> bool:
    """Whether ``key`` fits a 64-bit bitmap: a non-negative integer below 2**64."""
    return type(key) is int and 0 <= key < _BITMAP_END


class SortedKeys(Sequence[Key]):
    """Keys in ascending order. Non-negative integers (nearly every primary key) stay in a compressed bitmap,
    a few bits each for the usual dense ids, where a tuple would hold a Python int (about 36 bytes) per key:
    the whale's million keys are a few MB instead of 40. Other keys (text, uuid, composite, and integers out
    of the bitmap's range) are a sorted tuple. Equal to any sequence of the same keys in the same order."""

    __slots__ = ("_bitmap", "_other")

    def __init__(self, bitmap: BitMap64 | FrozenBitMap64 | None = None, other: Iterable[Key] = ()) -> None:
        others = sorted(other)
        if bitmap and others:  # both kinds in one table is rare: one sorted tuple
            self._bitmap, self._other = FrozenBitMap64(), tuple(heapq.merge(bitmap, others))
        else:
            self._bitmap, self._other = FrozenBitMap64(bitmap or ()), tuple(others)

    @classmethod
    def of(cls, keys: Iterable[Key]) -> SortedKeys:
        bitmap, other = BitMap64(), set()
        for key in keys:
            if bitmap_key(key):
                bitmap.add(key)
            else:
                other.add(key)
        return cls(bitmap, other)

    def __len__(self) -> int:
        return len(self._bitmap) + len(self._other)

    @overload
    def __getitem__(self, index: int) -> Key: ...

    @overload
    def __getitem__(self, index: slice) -> SortedKeys: ...

    def __getitem__(self, index: int | slice) -> Key | SortedKeys:
        if isinstance(index, slice):
            if index.step not in (None, 1):
                raise ValueError("SortedKeys slices take no step")
            return SortedKeys(self._bitmap[index]) if self._bitmap else SortedKeys(other=self._other[index])
        return self._bitmap[index] if self._bitmap else self._other[index]

    def __iter__(self) -> Iterator[Key]:
        return iter(self._bitmap) if self._bitmap else iter(self._other)

    def __contains__(self, key: object) -> bool:
        if not self._bitmap:
            return key in self._other
        return isinstance(key, int) and bitmap_key(key) and key in self._bitmap

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence) or isinstance(other, str):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        shown = ", ".join(map(repr, self[:5]))
        return f"SortedKeys({len(self)} keys: {shown}{', ...' if len(self) > 5 else ''})"
