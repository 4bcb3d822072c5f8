"""Work on a stream of items in threads, the results in the items' order, a few at a time: the leak scan
searches chunks of the target's text on every core (the Aho-Corasick search releases the GIL) while this
thread reads and folds the next rows."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Generator, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def in_threads(work: Callable[[T], R], items: Iterable[T], threads: int) -> Generator[tuple[T, R]]:
    """Each item with ``work(item)``, in order; ``work`` runs in ``threads`` threads, on at most one item
    more than that at once, while this thread takes the next items. An error of ``work`` is raised where
    its result would have come; closed early, it waits for the items being worked on."""
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="in-threads") as pool:
        working: deque[tuple[T, Future[R]]] = deque()
        for item in items:
            working.append((item, pool.submit(work, item)))
            if len(working) > threads:
                done, result = working.popleft()
                yield done, result.result()
        while working:
            done, result = working.popleft()
            yield done, result.result()
