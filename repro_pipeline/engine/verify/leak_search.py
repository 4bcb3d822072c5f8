"""The search for originals in text, in a few bytes per original: no original is kept as text.

Each original is kept as a 64-bit fingerprint of its folded text (``hash``: this process's SipHash), in the
set of its kind, and as its anchor: the first characters of its folded text, at most ``ANCHOR_BYTES`` of
UTF-8, packed into a 64-bit integer with its length. The anchors are all that goes into the Aho-Corasick
automaton (``ahocorasick_rs``, over the Rust ``aho-corasick`` crate: its searches run outside the GIL), and
they are few: the originals of a whale's audit log share a handful of IP prefixes and first words. A text
holds an original where an anchor starts at a word boundary and the text from there to a word boundary, no
longer than that anchor's longest original (or, for originals of ``_LONG`` characters or more, as long as one
of them), has an original's fingerprint. Two texts share a fingerprint once in 2^64 pairs: a text that is
no original may then be reported as one, and an original added while the other waits in its set to be merged
is not anchored (a repeat is passed over so). The fingerprints are this process's (``hash`` is seeded per
process): they are never sent to another.

``holds`` is the exact test of one value: an original, case-insensitively, whole or at word boundaries.
``candidate_values`` is its sieve over many values at once (one C loop over their text): a value without any
anchor anywhere in it, and without a backslash, holds no original, so only the others are tested exactly. A
JSON document's text without a backslash holds its keys and strings verbatim; what a backslash escapes (a
quote, a newline, a ``\\u`` escape of a json document) is why such a value is always tested exactly.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterator, Sequence
from itertools import chain, groupby
from typing import Any

from ahocorasick_rs import AhoCorasick, Implementation

from repro_pipeline.engine.verify.int_set import Int64Set

NOTHING, COMMON_WORD, DISTINCTIVE = 0, 1, 2
ANCHOR_BYTES = 7  # of UTF-8: 7 characters of most text; with a byte of length, a 64-bit integer
_LONG = 255  # the length byte of an original this long or longer
_MOST_DFA_ANCHORS = 8192


class OriginalsIndex:
    """The originals as the search needs them: each folded original's fingerprint, in the set of its kind, and
    its anchor with its length."""

    def __init__(self) -> None:
        self.distinctive = Int64Set()
        self.common_words = Int64Set()
        self.anchors = Int64Set()  # 7 bytes of anchor, then a byte of length (_LONG for longer)
        # Of the originals of _LONG characters or more (notes, documents), each anchor's exact lengths: a hit
        # tests those alone, not every word boundary up to thousands of characters.
        self.long_lengths: dict[int, set[int]] = {}

    def add(self, folded: str, kind: int) -> None:
        if not (self.distinctive if kind == DISTINCTIVE else self.common_words).add(hash(folded)):
            return  # a repeat waiting to be merged: its anchor is kept already
        packed = _anchor_and_length(folded)
        self.anchors.add(packed)
        if len(folded) >= _LONG:
            self.long_lengths.setdefault(packed >> 8, set()).add(len(folded))

    def kind(self, fingerprint: int) -> int:
        if fingerprint in self.distinctive:
            return DISTINCTIVE
        return COMMON_WORD if fingerprint in self.common_words else NOTHING

    def __contains__(self, folded: str) -> bool:
        return self.kind(hash(folded)) != NOTHING

    def __len__(self) -> int:
        return len(self.distinctive) + len(self.common_words)


class OriginalsMatcher:
    def __init__(self, index: OriginalsIndex) -> None:
        self._index = index
        # By the anchor's number: the longest of its originals under _LONG characters (0 for none), and the
        # lengths of the others.
        self._longest = array("i")
        self._long_lengths: dict[int, tuple[int, ...]] = {}

        def anchors() -> Iterator[str]:
            for anchor, packed in groupby(index.anchors, key=lambda packed: packed >> 8):
                lengths = [number & 0xFF for number in packed]
                self._longest.append(max((length for length in lengths if length < _LONG), default=0))
                if lengths[-1] == _LONG:
                    self._long_lengths[len(self._longest) - 1] = tuple(sorted(index.long_lengths[anchor]))
                yield anchor.to_bytes(ANCHOR_BYTES, "big", signed=True).rstrip(b"\0").decode()

        # A DFA searches a third faster than the contiguous NFA but takes about 500 bytes an anchor where
        # anchors share little (random tokens), the NFA a few: the DFA while it is small.
        count = _anchor_count(index.anchors)
        implementation = Implementation.DFA if count <= _MOST_DFA_ANCHORS else Implementation.ContiguousNFA
        self._automaton = (
            AhoCorasick(anchors(), implementation=implementation, store_patterns=False) if count else None
        )
        self.empty = self._automaton is None

    def holds(self, text: str) -> int:
        """``DISTINCTIVE`` if ``text`` holds one of those originals, else ``COMMON_WORD`` if it holds one of
        those, else ``NOTHING``."""
        return self._holds_folded(text.rstrip(" ").casefold())

    def _holds_folded(self, folded: str) -> int:
        if self._automaton is None:
            return NOTHING
        found = NOTHING
        size = len(folded)
        for anchor, start, end in self._automaton.find_matches_as_indexes(folded, overlapping=True):
            if start and folded[start].isalnum() and folded[start - 1].isalnum():
                continue  # the middle of a longer word: "Ann" in "Joanne"
            stops = range(end, min(start + self._longest[anchor], size) + 1)
            long_stops = (start + length for length in self._long_lengths.get(anchor, ()))
            for stop in chain(stops, long_stops):
                if stop > size or (stop < size and folded[stop - 1].isalnum() and folded[stop].isalnum()):
                    continue  # past the text, or a word goes on: "Ann" in "Annual"
                kind = self._index.kind(hash(folded[start:stop]))
                if kind > found:
                    found = kind
                    if found == DISTINCTIVE:
                        return found
        return found

    def value_holds(self, value: Any) -> int:
        """What a value holds: a text, or a JSON document's strings and keys."""
        return max(map(self.holds, texts(value)), default=NOTHING)

    def candidate_values(self, folded: str) -> list[int]:
        """The indexes of the values (``folded_together``) that may hold an original: any anchor anywhere in
        them, word boundaries or not, or a backslash. The others hold none."""
        if self._automaton is None or not folded:
            return []
        # Any match in a value shows it: the search need not report overlapping ones (a value holding an
        # anchor has a first match that ends in it, as no anchor spans a NUL).
        positions = [start for _, start, _ in self._automaton.find_matches_as_indexes(folded)]
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


def _anchor_count(anchors: Int64Set) -> int:
    return sum(1 for _ in groupby(anchors, key=lambda packed: packed >> 8))


def folded_together(values: Sequence[str]) -> str:
    """The text of ``values`` as the sieve reads it: NUL is in no text or JSON value of PostgreSQL's, so no
    anchor spans two of them; casefold works character by character, so the n-th NUL still ends the n-th."""
    return "\0".join(values).casefold()


def _anchor_and_length(folded: str) -> int:
    """The longest start of ``folded`` of at most ``ANCHOR_BYTES`` of UTF-8 (NUL, in no PostgreSQL text, pads
    it), then its length up to ``_LONG``, as one integer."""
    encoded = folded[:ANCHOR_BYTES].encode()
    if len(encoded) > ANCHOR_BYTES:
        encoded = encoded[:ANCHOR_BYTES].decode(errors="ignore").encode()
    packed = int.from_bytes(encoded) << 8 * (ANCHOR_BYTES + 1 - len(encoded)) | min(len(folded), _LONG)
    return packed - (1 << 64) if packed >> 63 else packed  # as the signed integer of the same 64 bits


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
