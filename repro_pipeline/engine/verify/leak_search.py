"""The search for originals in text: one Aho-Corasick automaton of every original, built once.

``holds`` is the exact test of one value: an original, case-insensitively, whole or at word boundaries.
``candidate_lines`` is its sieve over many rows of COPY text at once (one C loop per chunk): a row without
any original anywhere in its text, and without a backslash, holds none in any of its values, so only the
other rows are taken apart and tested exactly. Without a backslash, COPY's text of a row is its values
verbatim, and a JSON document's text holds its keys and strings verbatim; what a backslash escapes (a quote,
a newline, a ``\\u`` escape of a json document) is why such a row is always tested exactly.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Iterator
from itertools import accumulate
from typing import Any

import ahocorasick

NOTHING, COMMON_WORD, DISTINCTIVE = 0, 1, 2


class OriginalsMatcher:
    def __init__(self, common_words: Iterable[str], distinctive: Iterable[str]) -> None:
        automaton = ahocorasick.Automaton()
        for kind, words in ((COMMON_WORD, common_words), (DISTINCTIVE, distinctive)):
            for original in words:
                folded = original.casefold()
                known = automaton.get(folded, (NOTHING, folded))[0]  # "MARY" and "Mary" fold alike
                automaton.add_word(folded, (max(kind, known), folded))
        self.empty = not len(automaton)
        if not self.empty:
            automaton.make_automaton()
        self._automaton = automaton

    def holds(self, text: str) -> int:
        """``DISTINCTIVE`` if ``text`` holds one of those originals, else ``COMMON_WORD`` if it holds one of
        those, else ``NOTHING``."""
        if self.empty:
            return NOTHING
        folded = text.rstrip(" ").casefold()
        found = NOTHING
        for end, (kind, word) in self._automaton.iter(folded):
            if kind > found and _bounded(folded, end - len(word) + 1, end, word):
                found = kind
                if found == DISTINCTIVE:
                    break
        return found

    def value_holds(self, value: Any) -> int:
        """What a value holds: a text, or a JSON document's strings and keys."""
        return max(map(self.holds, texts(value)), default=NOTHING)

    def candidate_lines(self, chunk: str) -> list[str]:
        """The lines of ``chunk`` that may hold an original: any original anywhere in them, word boundaries
        or not, or a backslash. The others hold none."""
        if self.empty:
            return []
        folded = chunk.casefold()  # character by character: the same lines, some longer
        ends = [end for end, _ in self._automaton.iter(folded)]
        escaped = "\\" in folded
        if not ends and not escaped:
            return []
        folded_lines = folded.split("\n")
        line_ends = list(accumulate(len(line) + 1 for line in folded_lines))
        found = {bisect_right(line_ends, end) for end in ends}
        if escaped:
            found.update(index for index, line in enumerate(folded_lines) if "\\" in line)
        lines = chunk.split("\n")
        return [lines[index] for index in sorted(found)]


def _bounded(text: str, start: int, end: int, found: str) -> bool:
    """``found`` at text[start:end + 1] is not the middle of a longer word (``Ann`` in ``Annual``)."""
    left_open = start == 0 or not (found[0].isalnum() and text[start - 1].isalnum())
    right_open = end == len(text) - 1 or not (found[-1].isalnum() and text[end + 1].isalnum())
    return left_open and right_open


def texts(value: Any) -> Iterator[str]:
    """A value's texts: itself, or a JSON document's string leaves and keys."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from texts(item)
    elif isinstance(value, list):
        for item in value:
            yield from texts(item)
