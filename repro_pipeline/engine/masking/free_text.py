"""``ner_mask``: free text masked inside, not dropped.

Three detectors replace what they find, in this order, each leaving alone what an earlier one replaced:

1. The dictionary: every original of the run's masked columns (read from the closure's rows in the load's
   snapshot, ``free_text_originals``) found in the text, case-insensitively and at word boundaries, becomes
   the very value its column got (its fake, hash or constant), so a note's "Jane Doe (jane@acme.com)" reads
   as the users table's fake name and email. One Aho-Corasick automaton (``ahocorasick_rs``) finds them all;
   where matches overlap, the leftmost and then the longest wins.
2. Patterns (``autodetect.pii_in_text``): emails, card numbers, IPv4 addresses and phone numbers become
   fakes of their kind, seeded by the salt and the kind (scope ``ner_mask:<kind>``), so the same address gets
   the same fake in every note of the run, whichever column or path holds it.
3. Named entities, only when spaCy and its ``en_core_web_sm`` model are installed (neither is a dependency):
   PERSON becomes a full name, ORG a company, GPE and LOC a city, for the labels the rule's ``entities`` lists.

Originals of one or two characters and bare numbers are not in the dictionary: "Al" or "42" would be
replaced inside every note. The dictionary is bounded (``MAX_ORIGINALS``); the originals beyond it are
counted, and the patterns and the leak check still apply to them.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from ahocorasick_rs import AhoCorasick, Implementation

from repro_pipeline.engine.masking import values
from repro_pipeline.engine.masking.autodetect import TEXT_PII_KINDS, pii_in_text
from repro_pipeline.engine.secrets import Secret

MAX_ORIGINALS = 1_000_000
SPACY_MODEL = "en_core_web_sm"
ENTITY_PROVIDERS = {"PERSON": "full_name", "ORG": "company", "GPE": "city", "LOC": "city"}
SCOPE = "ner_mask"  # the seed scope of the fakes of what the patterns and the names model find
NULLED = "[masked]"  # what an original of a column written as NULL becomes inside text

NamedEntities = Callable[[str], list[tuple[str, int, int]]]  # text -> (label, start, end)
Span = tuple[int, int, str]  # start, end, replacement


@dataclass(frozen=True)
class FreeTextDictionary:
    """The originals of the run's masked columns, each with the value its column got (plain data: it is sent to
    the load workers as it is)."""

    replacements: tuple[tuple[str, str], ...] = ()
    columns: tuple[str, ...] = ()  # schema.table.column (or column:path) the originals come from
    left_out: int = 0  # originals beyond MAX_ORIGINALS

    def describe(self) -> str:
        beyond = f", {self.left_out} more beyond the bound" if self.left_out else ""
        return f"{len(self.replacements)} originals of {len(self.columns)} masked fields{beyond}"


class DictionaryEntries:
    """Collects (field, original, replacement) while the originals are read, at most ``limit`` originals once
    folded. Originals that differ only in case are kept apart (a fake is seeded case-preserving: the payload's
    ``jane@acme.com`` and the users table's ``Jane@acme.com`` have fakes of their own): the text's own spelling
    picks its replacement, else the first one read. An original read again keeps its first field's value."""

    def __init__(self, limit: int = MAX_ORIGINALS) -> None:
        self._limit = limit
        self._entries: dict[str, dict[str, str]] = {}
        self._columns: dict[str, None] = {}
        self._left_out: set[str] = set()

    def add(self, field: str, original: str, replacement: str | None) -> None:
        original = original.strip()
        if len(original) <= 2 or _BARE_NUMBER.fullmatch(original):
            return
        folded = fold(original)
        spellings = self._entries.get(folded)
        if spellings is None:
            if len(self._entries) >= self._limit:
                self._left_out.add(folded)
                return
            spellings = self._entries[folded] = {}
        if original not in spellings:
            self._columns.setdefault(field)
            spellings[original] = NULLED if replacement is None else replacement

    def dictionary(self) -> FreeTextDictionary:
        return FreeTextDictionary(
            tuple(pair for spellings in self._entries.values() for pair in spellings.items()),
            tuple(self._columns),
            len(self._left_out),
        )


_BARE_NUMBER = re.compile(r"[+-]?[0-9]+(?:[.,][0-9]+)?")


def fold(text: str) -> str:
    """``text`` lowercased character by character, keeping its length (a character whose lowercase is longer,
    such as "İ", stays as it is), so a match's positions are the original's."""
    lowered = text.lower()
    if len(lowered) == len(text):
        return lowered
    return "".join(lower if len(lower := character.lower()) == 1 else character for character in text)


def spacy_entities() -> NamedEntities | None:
    """spaCy's ``en_core_web_sm`` entities, when spaCy and the model are installed; None otherwise."""
    if importlib.util.find_spec("spacy") is None:
        return None
    spacy = importlib.import_module("spacy")
    try:
        nlp = spacy.load(SPACY_MODEL)
    except OSError:  # spaCy installed, its model not downloaded
        return None

    def entities(text: str) -> list[tuple[str, int, int]]:
        return [
            (str(entity.label_), int(entity.start_char), int(entity.end_char)) for entity in nlp(text).ents
        ]

    return entities


def detectors(dictionary: FreeTextDictionary, named: NamedEntities | None, entities: Sequence[str]) -> str:
    """Which detectors a ``ner_mask`` rule runs, for the load's report and the run's metadata."""
    names = (
        f"names ({', '.join(entities)}) by spaCy {SPACY_MODEL}"
        if named is not None
        else f"no names model (spaCy and {SPACY_MODEL} not installed)"
    )
    return f"{dictionary.describe()}; {', '.join(TEXT_PII_KINDS)} by pattern; {names}"


def free_text_masker(
    dictionary: FreeTextDictionary,
    salt: Secret,
    *,
    named: NamedEntities | None = None,
    entities: Sequence[str] = tuple(ENTITY_PROVIDERS),
) -> values.ValueMasker:
    """The ``ner_mask`` of free text values (NULL and '' as they are)."""
    find_originals = _dictionary_finder(dictionary)
    kind_fakes = {kind: values.fake(salt, f"{SCOPE}:{kind}", kind, {}) for kind in TEXT_PII_KINDS}
    entity_fakes = {
        label: values.fake(salt, f"{SCOPE}:{label}", ENTITY_PROVIDERS[label], {}) for label in entities
    }

    def mask(text: str | None) -> str | None:
        if not text:
            return text
        spans = find_originals(text)
        spans = _added(
            spans, ((s, e, _fake(kind_fakes[kind], text[s:e])) for kind, s, e in pii_in_text(text))
        )
        if named is not None:
            spans = _added(
                spans,
                (
                    (s, e, _fake(entity_fakes[label], text[s:e]))
                    for label, s, e in named(text)
                    if label in entity_fakes
                ),
            )
        return _replaced(text, spans)

    return mask


def _fake(masker: values.ValueMasker, original: str) -> str:
    return masker(original) or original


def _dictionary_finder(dictionary: FreeTextDictionary) -> Callable[[str], list[Span]]:
    if not dictionary.replacements:
        return lambda _text: []
    spellings: dict[str, dict[str, str]] = {}
    for original, replacement in dictionary.replacements:
        spellings.setdefault(fold(original), {}).setdefault(original, replacement)
    automaton = AhoCorasick(spellings, implementation=Implementation.ContiguousNFA, store_patterns=False)
    by_pattern = list(spellings.values())  # the automaton numbers the patterns in this order

    def find(text: str) -> list[Span]:
        folded = fold(text)
        matches = sorted(
            (
                (start, end, pattern)
                for pattern, start, end in automaton.find_matches_as_indexes(folded, overlapping=True)
                if _at_word_boundaries(folded, start, end)
            ),
            key=lambda match: (match[0], -match[1]),
        )
        spans: list[Span] = []
        for start, end, pattern in matches:
            if not spans or start >= spans[-1][1]:
                written = by_pattern[pattern]
                replacement = written.get(text[start:end]) or next(iter(written.values()))
                spans.append((start, end, replacement))
        return spans

    return find


def _at_word_boundaries(text: str, start: int, end: int) -> bool:
    """text[start:end] is not the middle of a longer word (``Ann`` in ``Annual``)."""
    left = start == 0 or not (text[start].isalnum() and text[start - 1].isalnum())
    right = end == len(text) or not (text[end - 1].isalnum() and text[end].isalnum())
    return left and right


def _added(spans: list[Span], found: Iterable[Span]) -> list[Span]:
    """``spans`` with those of ``found`` that overlap none of them."""
    kept = list(spans)
    for start, end, replacement in found:
        if not any(start < taken_end and taken_start < end for taken_start, taken_end, _ in spans):
            kept.append((start, end, replacement))
    return sorted(kept)


def _replaced(text: str, spans: Sequence[Span]) -> str:
    if not spans:
        return text
    parts, position = [], 0
    for start, end, replacement in spans:
        parts += [text[position:start], replacement]
        position = end
    parts.append(text[position:])
    return "".join(parts)
