"""``regex_mask``: compiled at config load, with a guard against patterns prone to catastrophic backtracking.

Refused shapes (PrivaCI's rule): an unbounded quantifier (``*``, ``+``, ``{n,}``, lazy or greedy) applied
to a group that itself contains a variable quantifier or an alternation, e.g. ``(a+)+``, ``(a|aa)*``,
``(\\w+\\s?)*``. The check runs on Python's own parse of the pattern, so ``(?:a|b)*`` (a character set
once parsed) is allowed and ``(a|ab)*`` is not. Possessive repeats (``*+``) and atomic groups (``(?>...)``)
cannot backtrack into themselves and are allowed as the way out.

A value longer than ``MAX_VALUE_LENGTH`` characters is never given to the regex engine: it is withheld
whole (replaced by its ``hash``), so a huge value can neither stall the run nor leak.
"""

from __future__ import annotations

import re
import re._parser as sre_parse  # type: ignore[import-not-found]  # the parser behind re.compile
from collections.abc import Iterable, Iterator, Sequence
from functools import lru_cache
from typing import Any

MAX_VALUE_LENGTH = 65_536

FLAGS: dict[str, int] = {
    "ASCII": re.ASCII,
    "DEBUG": 0,  # accepted for PrivaCI files; it only prints the compiled program, so it is a no-op here
    "DOTALL": re.DOTALL,
    "IGNORECASE": re.IGNORECASE,
    "MULTILINE": re.MULTILINE,
    "UNICODE": re.UNICODE,
    "VERBOSE": re.VERBOSE,
}
REFUSED_FLAGS = {
    "LOCALE": "LOCALE only applies to bytes patterns, and values are text",
    "TEMPLATE": "TEMPLATE is deprecated and gone from Python 3.13; its matching cannot be honoured",
}

_MAXREPEAT: int = sre_parse.MAXREPEAT
_UNBOUNDED_REPEATS = {sre_parse.MAX_REPEAT, sre_parse.MIN_REPEAT}
_POSSESSIVE_REPEAT = getattr(sre_parse, "POSSESSIVE_REPEAT", None)
_ATOMIC_GROUP = getattr(sre_parse, "ATOMIC_GROUP", None)


def flag_bits(names: Iterable[str]) -> int:
    """The ``re`` flags for ``names`` (case-insensitive); ``ValueError`` for unknown or refused ones."""
    bits = 0
    for name in names:
        upper = name.upper()
        if upper in REFUSED_FLAGS:
            raise ValueError(f"flag {name}: {REFUSED_FLAGS[upper]}")
        if upper not in FLAGS:
            raise ValueError(f"unknown flag {name!r}; use any of {', '.join(sorted(FLAGS))}")
        bits |= FLAGS[upper]
    return bits


@lru_cache(maxsize=256)
def compile_pattern(pattern: str, flags: int) -> re.Pattern[str]:
    """The compiled pattern; ``ValueError`` if it does not compile or has a catastrophic shape."""
    try:
        compiled = re.compile(pattern, flags)
    except re.error as exc:
        raise ValueError(f"pattern {pattern!r} does not compile: {exc}") from None
    danger = _catastrophic_repeat(sre_parse.parse(pattern, flags))
    if danger is not None:
        raise ValueError(
            f"pattern {pattern!r} can take hours on some values (catastrophic backtracking): "
            f"{danger}; rewrite it without the nesting (e.g. (a+)+ as a+, (a|aa)* as a*, a*a* as a*), "
            "separate adjacent repeats by required text, or make a repeat possessive (*+, ++) or its "
            "group atomic ((?>...))"
        )
    return compiled


def check_replacement(compiled: re.Pattern[str], replace: str) -> None:
    """``ValueError`` if ``replace`` is not a valid ``re.sub`` template for ``compiled``."""
    try:
        _probe(compiled).sub(replace, "")
    except (re.error, IndexError) as exc:
        raise ValueError(f"replace {replace!r} is not a valid replacement for the pattern: {exc}") from None


def can_lengthen(compiled: re.Pattern[str], replace: str) -> bool:
    """Whether ``sub(replace, value)`` can give a text longer than ``value``.

    It cannot when every replacement is at most as long as the shortest text the pattern matches: the
    literal part of ``replace`` plus, for each group reference (``\\g<0>`` included), the longest text
    that group can match.
    """
    parsed = sre_parse.parse(compiled.pattern, compiled.flags)
    shortest_match, longest_match = (int(width) for width in parsed.getwidth())
    widths = {0: longest_match, **dict(_group_widths(parsed))}
    # Expand the template once with every group empty (its literal text), once with group n matching
    # marker n (private-use code points) and the whole match adding marker 0: the markers' counts are
    # the references to each group.
    literal = _probe(compiled).sub(replace, "")
    markers = [chr(0xF0000 + group) for group in range(compiled.groups + 1)]
    marked = re.compile(
        "".join(
            re.escape(marker) if group == 0 else _group(compiled, group, re.escape(marker))
            for group, marker in enumerate(markers)
        )
    )
    expanded = marked.sub(replace, "".join(markers))
    whole = expanded.count(markers[0]) - literal.count(markers[0])  # \\g<0>: every group once more
    longest = len(literal)
    for group, marker in enumerate(markers):
        references = expanded.count(marker) - literal.count(marker) - (whole if group else 0)
        if references > 0:
            if widths.get(group, _MAXREPEAT) >= _MAXREPEAT - 1:
                return True  # the group can match an unbounded text
            longest += references * widths[group]
    return longest > shortest_match


def _probe(compiled: re.Pattern[str]) -> re.Pattern[str]:
    """A pattern with the same groups (numbers and names) that matches the empty string."""
    return re.compile("".join(_group(compiled, group, "") for group in range(1, compiled.groups + 1)))


def _group(compiled: re.Pattern[str], group: int, body: str) -> str:
    names = {index: name for name, index in compiled.groupindex.items()}
    return f"(?P<{names[group]}>{body})" if group in names else f"({body})"


def _items(node: Any) -> Iterator[tuple[Any, Any]]:
    """The (op, argument) pairs directly under a parsed node."""
    yield from node


def _children(op: Any, argument: Any) -> Sequence[Any]:
    """The sub-patterns of one parsed item."""
    if op in _UNBOUNDED_REPEATS or op is _POSSESSIVE_REPEAT:
        return [argument[2]]
    if op is sre_parse.SUBPATTERN:
        return [argument[3]]
    if op is sre_parse.BRANCH:
        return list(argument[1])
    if op in (sre_parse.ASSERT, sre_parse.ASSERT_NOT):
        return [argument[1]]
    if op is _ATOMIC_GROUP:
        return [argument]
    if op is sre_parse.GROUPREF_EXISTS:
        return [branch for branch in argument[1:] if branch is not None]
    return []


def _catastrophic_repeat(node: Any) -> str | None:
    """What makes the pattern catastrophic, or None: the first refused repeat, at any depth.

    Refused: a repeat that may run more than once over a part that itself has a choice (``(a+)+``,
    ``(a|aa)*``, ``(a+){2,60}``: exponential), and two unbounded repeats with nothing required between
    them (``a*a*b``: polynomial, but hopeless on long values). Possessive repeats and atomic groups
    (``a*+``, ``(?>...)``) do not backtrack and are the way out.
    """
    after_unbounded = False
    for op, argument in _items(node):
        if op in _UNBOUNDED_REPEATS:
            low, high = argument[0], argument[1]
            if high > 1 and low != high:
                inner = _backtracking_choice(argument[2])
                if inner is not None:
                    return f"the quantifier {_quantifier(low, high)} repeats a group that contains {inner}"
            if high == _MAXREPEAT and low != high:
                if after_unbounded:
                    return (
                        "two unbounded quantifiers follow each other with nothing required between them "
                        "(like a*a*)"
                    )
                after_unbounded = True
            elif low > 0:
                after_unbounded = False
        elif op is not sre_parse.AT:  # anchors match no text; anything else is required text
            after_unbounded = False
        for child in _children(op, argument):
            found = _catastrophic_repeat(child)
            if found is not None:
                return found
    return None


def _quantifier(low: int, high: int) -> str:
    if high == _MAXREPEAT:
        return "*" if low == 0 else "+" if low == 1 else "{" + f"{low}," + "}"
    return "{" + f"{low},{high}" + "}"


def _backtracking_choice(node: Any) -> str | None:
    """A variable quantifier or an alternation inside ``node`` (not inside atomic or possessive parts)."""
    for op, argument in _items(node):
        if op is _ATOMIC_GROUP or op is _POSSESSIVE_REPEAT:
            continue
        if op in _UNBOUNDED_REPEATS and argument[0] != argument[1]:
            return "a quantifier"
        if op is sre_parse.BRANCH or op is sre_parse.GROUPREF_EXISTS:
            return "an alternation"
        for child in _children(op, argument):
            found = _backtracking_choice(child)
            if found is not None:
                return found
    return None


def _group_widths(node: Any) -> Iterator[tuple[int, int]]:
    """(group number, longest text it can match) for every capturing group under ``node``."""
    for op, argument in _items(node):
        if op is sre_parse.SUBPATTERN and argument[0] is not None:
            yield int(argument[0]), int(argument[3].getwidth()[1])
        for child in _children(op, argument):
            yield from _group_widths(child)
