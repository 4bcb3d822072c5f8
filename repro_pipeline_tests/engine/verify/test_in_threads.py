"""The leak scan's threads: every item's result in the items' order, worked on in other threads, a few at a
time; an error raised where its result would come."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import closing

import pytest

from repro_pipeline.engine.verify.in_threads import in_threads


def test_every_result_comes_in_order_worked_on_in_other_threads() -> None:
    workers: set[str] = set()

    def square(number: int) -> int:
        workers.add(threading.current_thread().name)
        return number * number

    assert list(in_threads(square, range(200), threads=2)) == [(n, n * n) for n in range(200)]
    assert workers and threading.current_thread().name not in workers
    assert list(in_threads(square, [], threads=2)) == []


def test_an_error_of_the_work_is_raised_where_its_result_would_come() -> None:
    def fails_on_three(number: int) -> int:
        if number == 3:
            raise ValueError("three")
        return number

    results = in_threads(fails_on_three, range(10), threads=2)
    assert [next(results) for _ in range(3)] == [(0, 0), (1, 1), (2, 2)]
    with pytest.raises(ValueError, match="three"):
        next(results)


def test_closed_early_it_takes_no_more_items_than_it_works_on() -> None:
    taken: list[int] = []

    def items() -> Iterator[int]:
        for number in range(1_000):
            taken.append(number)
            yield number

    with closing(in_threads(lambda number: number, items(), threads=2)) as results:
        assert next(results) == (0, 0)
    assert taken == [0, 1, 2]
