"""The search for originals in text: Aho-Corasick automata of every original, built once (``ahocorasick_rs``,
over the Rust ``aho-corasick`` crate: its searches run outside the GIL, and its automaton takes less than half
the memory of ``pyahocorasick``'s).

``holds`` is the exact test of one value: an original, case-insensitively, whole or at word boundaries.
``candidate_values`` is its sieve over many values at once (one C loop over their text): a value without any
original anywhere in it, and without a backslash, holds none, so only the others are tested exactly. A JSON
document's text without a backslash holds its keys and strings verbatim; what a backslash escapes (a quote,
a newline, a ``\\u`` escape of a json document) is why such a value is always tested exactly.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from ahocorasick_rs import AhoCorasick, Implementation

NOTHING, COMMON_WORD, DISTINCTIVE = 0, 1, 2


class OriginalsMatcher:
    def __init__(self, common_words: Collection[str], distinctive: Collection[str]) -> None:
        # The patterns are folded one at a time as the automata take them, never all kept at once: the
        # matcher costs its automata. Two originals that fold alike ("MARY", "Mary") are two patterns of one
        # text: the exact test sees both matches, and the stronger kind counts.
        originals = ((COMMON_WORD, common_words), (DISTINCTIVE, distinctive))
        self._automata = _automata(originals, lambda folded: len(folded) <= _SHORT)
        # A long original that holds a shorter distinctive one (a note quoting an email) is found wherever
        # that one is, and nothing is more than distinctive: the automaton of the short ones is the same
        # search without it, and much smaller to build.
        self._automata += _automata(
            originals,
            lambda folded: len(folded) > _SHORT and self._holds_folded(folded) != DISTINCTIVE,
            longer_than=_SHORT // _MOST_FOLDED_PER_CHARACTER,
        )
        self.empty = not self._automata

    def holds(self, text: str) -> int:
        """``DISTINCTIVE`` if ``text`` holds one of those originals, else ``COMMON_WORD`` if it holds one of
        those, else ``NOTHING``."""
        return self._holds_folded(text.rstrip(" ").casefold())

    def _holds_folded(self, folded: str) -> int:
        found = NOTHING
        for automaton in self._automata:
            for pattern, start, end in automaton.matcher.find_matches_as_indexes(folded, overlapping=True):
                kind = automaton.kinds[pattern]
                if kind > found and _bounded(folded, start, end - 1):
                    found = kind
                    if found == DISTINCTIVE:
                        return found
        return found

    def value_holds(self, value: Any) -> int:
        """What a value holds: a text, or a JSON document's strings and keys."""
        return max(map(self.holds, texts(value)), default=NOTHING)

    def candidate_values(self, values: Sequence[str]) -> list[int]:
        """The indexes of ``values`` that may hold an original: any original anywhere in them, word boundaries
        or not, or a backslash. The others hold none."""
        if self.empty or not values:
            return []
        # NUL is in no text or JSON value of PostgreSQL's, so no original spans two values; casefold works
        # character by character, so the n-th NUL still ends the n-th value.
        folded = "\0".join(values).casefold()
        # Any match in a value shows it: the search need not report overlapping ones (a value holding an
        # original has a first match that ends in it, as no original spans a NUL).
        positions = [
            start
            for automaton in self._automata
            for _, start, _ in automaton.matcher.find_matches_as_indexes(folded)
        ]
        escape = folded.find("\\")
        while escape != -1:
            positions.append(escape)
            value_end = folded.find("\0", escape)
            escape = -1 if value_end == -1 else folded.find("\\", value_end)
        found: list[int] = []
        index, counted_to = 0, 0
        for position in sorted(positions):
            index += folded.count("\0", counted_to, position)
            counted_to = position
            if not found or found[-1] != index:
                found.append(index)
        return found


_SHORT = 64  # characters: an email, a name; longer ones are mostly notes
_MOST_FOLDED_PER_CHARACTER = 3  # casefold makes "ΐ" three characters, and no character more


@dataclass(frozen=True)
class _Automaton:
    matcher: AhoCorasick
    kinds: bytes  # the kind of each pattern, by its index


def _automata(
    originals: Iterable[tuple[int, Iterable[str]]], wanted: Callable[[str], bool], longer_than: int = 0
) -> list[_Automaton]:
    """The automaton of the ``wanted`` originals (folded) of each kind, or none for none; originals of at most
    ``longer_than`` characters are not even folded."""
    kinds = bytearray()

    def patterns() -> Iterator[str]:
        for kind, words in originals:
            for original in words:
                if len(original) <= longer_than:
                    continue
                folded = original.casefold()
                if wanted(folded):
                    kinds.append(kind)
                    yield folded

    # The contiguous NFA: for the bench whale's 172,000 originals 29 MB, against 66 MB for pyahocorasick's
    # automaton and 306 MB for a DFA that searches them only about a third faster.
    matcher = AhoCorasick(patterns(), implementation=Implementation.ContiguousNFA, store_patterns=False)
    return [_Automaton(matcher, bytes(kinds))] if kinds else []


def _bounded(text: str, start: int, end: int) -> bool:
    """The original found at text[start:end + 1] is not the middle of a longer word (``Ann`` in ``Annual``)."""
    left_open = start == 0 or not (text[start].isalnum() and text[start - 1].isalnum())
    right_open = end == len(text) - 1 or not (text[end].isalnum() and text[end + 1].isalnum())
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
