"""A set of 64-bit integers in 8 bytes each: what the leak check keeps of each original (its fingerprint, its
anchor), so a whale's hundreds of thousands of originals cost a few megabytes instead of an object each.

The integers are kept sorted in one ``array``, looked up by bisection. Those added since the last merge wait
in a set of at most a quarter of the array's size (64k at least) and are merged in, in one pass, when it
fills: each integer is merged a logarithmic number of times, and the waiting set bounds what the set costs
above its array.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections.abc import Iterator
from heapq import merge

_LEAST_WAITING = 1 << 16


class Int64Set:
    def __init__(self) -> None:
        self._sorted = array("q")
        self._waiting: set[int] = set()

    def add(self, number: int) -> bool:
        """Whether ``number`` may be new: not if it waits to be merged already."""
        if number in self._waiting:
            return False
        self._waiting.add(number)
        if len(self._waiting) >= max(_LEAST_WAITING, len(self._sorted) // 4):
            self._merge_waiting()
        return True

    def __contains__(self, number: int) -> bool:
        if self._waiting:
            self._merge_waiting()
        return _holds(self._sorted, number)

    def __len__(self) -> int:
        if self._waiting:
            self._merge_waiting()
        return len(self._sorted)

    def __iter__(self) -> Iterator[int]:
        """The integers in ascending order."""
        if self._waiting:
            self._merge_waiting()
        return iter(self._sorted)

    def _merge_waiting(self) -> None:
        merged = self._sorted
        new = sorted(number for number in self._waiting if not _holds(merged, number))
        self._waiting = set()
        self._sorted = array("q", merge(merged, new))


def _holds(numbers: array[int], number: int) -> bool:
    index = bisect_left(numbers, number)
    return index < len(numbers) and numbers[index] == number
