"""The search for originals finds what a plain search over their text finds, though it keeps none of it; and
the map that keeps them holds what a dict would."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from repro_pipeline.engine.verify.int_set import Int64Set
from repro_pipeline.engine.verify.leak_search import (
    COMMON_WORD,
    DISTINCTIVE,
    NOTHING,
    OriginalsIndex,
    OriginalsMatcher,
    folded_together,
)

# Few letters, so originals overlap, repeat and share anchors; a space, a dot and an at sign for word
# boundaries; letters that fold to longer text (ß, ﬁ) or take 2 to 3 bytes of UTF-8 (é, ŉ, 日).
ALPHABET = "abAB .@éßﬁŉ日9"
originals = st.dictionaries(
    st.text(ALPHABET, min_size=1, max_size=14), st.sampled_from([COMMON_WORD, DISTINCTIVE]), max_size=8
)
texts = st.text(ALPHABET, max_size=40)


def _plain_search(kinds: dict[str, int], text: str) -> int:
    """Every occurrence of every folded original in the folded text, not inside a longer word."""
    folded = text.rstrip(" ").casefold()
    found = NOTHING
    for original, kind in kinds.items():
        pattern = original.casefold()
        start = folded.find(pattern)
        while start != -1:
            end = start + len(pattern)
            inside_a_word = (start and folded[start].isalnum() and folded[start - 1].isalnum()) or (
                end < len(folded) and folded[end - 1].isalnum() and folded[end].isalnum()
            )
            if not inside_a_word:
                found = max(found, kind)
            start = folded.find(pattern, start + 1)
    return found


def _matcher(kinds: dict[str, int]) -> OriginalsMatcher:
    index = OriginalsIndex()
    for original, kind in kinds.items():
        index.add(original.casefold(), kind)
    return OriginalsMatcher(index)


@given(originals, st.lists(texts, max_size=6))
def test_the_search_finds_what_a_plain_search_finds(kinds: dict[str, int], values: list[str]) -> None:
    matcher = _matcher(kinds)
    held = [matcher.holds(value) for value in values]
    assert held == [_plain_search(kinds, value) for value in values]
    candidates = set(matcher.candidate_values(folded_together(values)))
    assert {index for index, kind in enumerate(held) if kind != NOTHING} <= candidates


@given(
    st.text(ALPHABET, min_size=1, max_size=5),
    st.integers(40, 120),
    st.text(ALPHABET, max_size=8),
    st.text(ALPHABET, max_size=8),
)
def test_an_original_of_hundreds_of_characters_is_found_as_a_plain_search_finds_it(
    piece: str, times: int, before: str, after: str
) -> None:
    """Originals of 255 characters or more (notes, documents) are tested at their own lengths only."""
    original = piece * times
    kinds = {original: DISTINCTIVE, original[: len(original) // 2]: COMMON_WORD, original[:300]: DISTINCTIVE}
    text = before + original + after
    assert _matcher(kinds).holds(text) == _plain_search(kinds, text)


def test_an_original_inside_a_longer_word_is_not_found_and_the_stronger_kind_counts() -> None:
    matcher = _matcher({"Ann": COMMON_WORD, "ANN": DISTINCTIVE, "zorblat quenwick": DISTINCTIVE})
    assert matcher.holds("Annual report; see Joanne") == NOTHING
    assert matcher.holds("ask ann.") == DISTINCTIVE
    assert matcher.holds("Escalated by ZORBLAT QUENWICK") == DISTINCTIVE
    assert matcher.holds("zorblat quenwicks") == NOTHING
    assert matcher.candidate_values(folded_together(["none", "by zorblat quenwickz", "a\\b"])) == [1, 2]


def test_no_originals_find_nothing() -> None:
    matcher = OriginalsMatcher(OriginalsIndex())
    assert matcher.empty and matcher.holds("anything") == NOTHING and matcher.candidate_values("x") == []


@given(st.lists(st.integers(-(2**63), 2**63 - 1), max_size=200), st.integers(-(2**63), 2**63 - 1))
def test_the_set_holds_what_a_set_holds(numbers: list[int], other: int) -> None:
    expected: set[int] = set()
    int_set = Int64Set()
    for number in numbers:
        assert int_set.add(number) or number in expected
        expected.add(number)
    assert len(int_set) == len(expected) and list(int_set) == sorted(expected)
    assert all(number in int_set for number in numbers) and (other in int_set) == (other in expected)


def test_the_set_merges_what_waits_once_it_is_a_quarter_of_it() -> None:
    int_set = Int64Set()
    for number in range(300_000):
        int_set.add(number * 7919 % 1_000_003 - 500_000)
        int_set.add(-500_000)
    assert len(int_set) == 300_000 and -500_000 in int_set and 500_004 not in int_set
    assert list(int_set) == sorted(int_set)
