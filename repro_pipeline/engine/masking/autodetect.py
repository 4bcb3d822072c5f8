"""PII auto-detection: by column name, by sampled values, and inside JSON documents by key and value.

``detect`` reads the catalog's columns and a small sample of rows (``TABLESAMPLE SYSTEM ... LIMIT``, or a
plain ``LIMIT``) through the caller's connection, which is the standby's read-only snapshot: it only ever
runs SELECTs. A ``Finding`` names the table, the column (and the JSON path inside a json/jsonb column), a
confidence, the reason and a suggested rule. It never holds a sampled value: reasons give names and counts.

Coverage: a finding is covered when ``mask-rules.yaml`` has a rule for its column (any action, an explicit
``passthrough`` included), when its table copies no rows (strategy ``exclude``, ``empty``, ``truncate``), or
for a JSON finding when a ``json_mask`` path of ``commercial-extensions.yaml`` selects it or one of its
parents (wildcards and recursive descent count for what they select). ``require_covered`` is the
``strict_autodetect: true`` gate: an uncovered high or medium finding is a PolicyGateFailed (exit 6).
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import psycopg
from jsonpath_ng.ext import parse as parse_jsonpath
from psycopg import sql
from psycopg.rows import TupleRow

from repro_pipeline.engine.config import ReproConfig, TableRules
from repro_pipeline.engine.errors import ConnectionFailed, PolicyGateFailed
from repro_pipeline.engine.source.catalog import Catalog, Column, Table, TableName

Confidence = Literal["high", "medium", "low"]
GATED: tuple[Confidence, ...] = ("high", "medium")  # what strict_autodetect requires a rule for

DEFAULT_SAMPLE_ROWS = 200
_MAX_JSON_PATHS = 1000  # distinct paths per json column; documents with endless dynamic keys stop here
_MAX_JSON_DEPTH = 32
_HIGH_RATIO = 0.8  # share of sampled values matching a pattern for a high-confidence finding
_MEDIUM_RATIO = 0.3

# --------------------------------------------------------------------------------------------
# value rules
# --------------------------------------------------------------------------------------------

_EMAIL = r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.[A-Za-z]{2,}"
_EMAIL_FULL = re.compile(_EMAIL)
_EMAIL_IN_TEXT = re.compile(rf"(?<![\w.+-]){_EMAIL}")
# E.164 (+ and 8 to 15 digits, separators allowed) and North American numbers written with separators;
# ten bare digits are not taken for a phone number (ids look the same).
_PHONE_E164 = r"\+[1-9](?:[ .()-]{0,2}\d){7,14}"
_PHONE_US = r"(?:\+?1[ .-]?)?(?:\([2-9]\d{2}\) ?|[2-9]\d{2}[ .-])\d{3}[ .-]\d{4}"
_PHONE_FULL = re.compile(rf"{_PHONE_E164}|{_PHONE_US}")
_PHONE_IN_TEXT = re.compile(rf"(?<![\w+]){_PHONE_E164}(?!\d)|(?<![\w+(]){_PHONE_US}(?!\d)")
_IPV4 = re.compile(r"\d{1,3}(?:\.\d{1,3}){3}(?:/\d{1,2})?")
_CARD = re.compile(r"\d(?:[ -]?\d){12,18}")
_SSN = re.compile(r"(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}")
_TOKEN = re.compile(
    r"(?:tok|sk|pk|rk|whsec|secret|token|apikey|api_key|access_token|refresh_token)_"
    r"(?:live_|test_)?[A-Za-z0-9]{8,}"
    r"|gh[pousr]_[A-Za-z0-9]{20,}"
    r"|xox[abprs]-[A-Za-z0-9-]{10,}"
    r"|glpat-[A-Za-z0-9_-]{20,}"
    r"|(?:AKIA|ASIA)[0-9A-Z]{16}"
    r"|eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"
)
_HEX = re.compile(r"[0-9a-fA-F]{32,}")
_BASE64 = re.compile(r"[A-Za-z0-9+/_-]{32,}={0,2}")

# What a value looks like, checked in this order; the first rule that matches the whole value wins.
ValueKind = Literal["email", "credit_card", "ssn", "phone", "ip_address", "token", "opaque"]


def classify_value(value: str) -> ValueKind | None:
    """The kind of PII one value looks like as a whole (``None``: none of the value rules matches)."""
    text = value.strip()
    if not text or len(text) > 512:
        return None
    if "@" in text and _EMAIL_FULL.fullmatch(text):
        return "email"
    if _CARD.fullmatch(text) and is_card_number(text):
        return "credit_card"
    if _SSN.fullmatch(text):
        return "ssn"
    if _PHONE_FULL.fullmatch(text) and 8 <= sum(ch.isdigit() for ch in text) <= 15:
        return "phone"
    if is_ip_address(text):
        return "ip_address"
    if _TOKEN.fullmatch(text):
        return "token"
    if (_HEX.fullmatch(text) and not text.isdigit()) or (
        _BASE64.fullmatch(text) and _mixed_alphanumeric(text.rstrip("="))
    ):
        return "opaque"
    return None


def is_card_number(text: str) -> bool:
    """13 to 19 digits (spaces or dashes between them allowed), a card network's first digit, Luhn-valid."""
    digits = [int(ch) for ch in text if ch.isdigit()]
    if not 13 <= len(digits) <= 19 or digits[0] not in (2, 3, 4, 5, 6) or len(set(digits)) == 1:
        return False
    total = 0
    for position, digit in enumerate(reversed(digits)):
        if position % 2 == 1:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return total % 10 == 0


def is_ip_address(text: str) -> bool:
    """An IPv4 or IPv6 address, with or without a prefix length (``10.0.0.1``, ``2001:db8::1/64``)."""
    if ":" not in text and not _IPV4.fullmatch(text):
        return False
    if ":" in text and not re.fullmatch(r"[0-9A-Fa-f:.]+(?:/\d{1,3})?(?:%\w+)?", text):
        return False
    try:
        ipaddress.ip_interface(text)
    except ValueError:
        return False
    return True


def _mixed_alphanumeric(text: str) -> bool:
    return (
        any(ch.isupper() for ch in text)
        and any(ch.islower() for ch in text)
        and any(ch.isdigit() for ch in text)
    )


def contains_email(text: str) -> bool:
    return "@" in text and _EMAIL_IN_TEXT.search(text) is not None


def contains_phone(text: str) -> bool:
    return any(8 <= sum(ch.isdigit() for ch in m.group()) <= 15 for m in _PHONE_IN_TEXT.finditer(text))


TextPiiKind = Literal["email", "credit_card", "ip_address", "phone"]
_IPV4_IN_TEXT = re.compile(r"(?<![\w.])\d{1,3}(?:\.\d{1,3}){3}(?!\w|\.\d)")
_CARD_IN_TEXT = re.compile(r"(?<![\w-])\d(?:[ -]?\d){12,18}(?!\w)")
_IN_TEXT: tuple[tuple[TextPiiKind, re.Pattern[str], Callable[[str], bool]], ...] = (
    ("email", _EMAIL_IN_TEXT, lambda _found: True),
    ("credit_card", _CARD_IN_TEXT, is_card_number),
    ("ip_address", _IPV4_IN_TEXT, is_ip_address),
    ("phone", _PHONE_IN_TEXT, lambda found: 8 <= sum(ch.isdigit() for ch in found) <= 15),
)
TEXT_PII_KINDS: tuple[TextPiiKind, ...] = tuple(kind for kind, _, _ in _IN_TEXT)


def pii_in_text(text: str) -> list[tuple[TextPiiKind, int, int]]:
    """The emails, card numbers, IPv4 addresses and phone numbers inside free text as (kind, start, end), left
    to right and never overlapping: the kinds are looked for in that order, and a later kind's match that
    overlaps an earlier one's is no match (a card number is not also a phone number)."""
    found: list[tuple[TextPiiKind, int, int]] = []
    for kind, pattern, valid in _IN_TEXT:
        for match in pattern.finditer(text):
            start, end = match.span()
            if valid(match.group()) and not any(
                start < taken_end and taken_start < end for _, taken_start, taken_end in found
            ):
                found.append((kind, start, end))
    return sorted(found, key=lambda span: span[1])


def is_prose(text: str) -> bool:
    """Free text: at least four words with letters in them."""
    return sum(1 for word in text.split() if any(ch.isalpha() for ch in word)) >= 4


# --------------------------------------------------------------------------------------------
# name rules (in the spirit of PrivaCI's auto-detect table: first match wins)
# --------------------------------------------------------------------------------------------

Category = Literal["text", "number", "date", "inet", "json", "other"]


@dataclass(frozen=True)
class _Name:
    words: tuple[str, ...]  # lower-case words: split on non-alphanumerics and camelCase
    compact: str  # the words joined without separators

    @classmethod
    def of(cls, name: str) -> _Name:
        spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", " ", name)
        words = tuple(word for word in re.split(r"[^A-Za-z0-9]+", spaced.lower()) if word)
        return cls(words, "".join(words))

    def has(self, *words: str) -> bool:
        return any(word in self.words for word in words)

    def contains(self, *parts: str) -> bool:
        return any(part in self.compact for part in parts)

    def starts(self, *prefixes: str) -> bool:
        return any(word.startswith(prefixes) for word in self.words)


@dataclass(frozen=True)
class NameRule:
    kind: str  # email, phone, ..., token, freeform
    label: str  # what a reason says the name matches
    categories: frozenset[Category]

    def applies_to(self, category: Category) -> bool:
        return category in self.categories


_TEXT: frozenset[Category] = frozenset({"text"})


def _rule(kind: str, label: str, *extra: Category) -> NameRule:
    return NameRule(kind, label, frozenset({"text", *extra}))


def match_name(name: str, category: Category = "text") -> NameRule | None:
    """The name rule a column or JSON key name matches, if it fits the type (``email_verified boolean`` does not)."""
    n = _Name.of(name)
    found: NameRule | None
    if n.contains("email") or n.has("mail"):
        found = _rule("email", "email")
    elif n.contains("phone", "mobile") or n.has("tel", "cell", "msisdn", "fax"):
        found = _rule("phone", "phone", "number")
    elif n.has("ssn", "sin") or n.contains("socialsecurity", "taxid", "nationalid", "taxnumber"):
        found = _rule("ssn", "national id", "number")
    elif n.contains("firstname", "givenname") or n.has("fname"):
        found = _rule("first_name", "first name")
    elif n.contains("lastname", "familyname", "surname") or n.has("lname"):
        found = _rule("last_name", "last name")
    elif n.contains("fullname", "displayname", "contactname") or n.words == ("name",):
        found = _rule("full_name", "person name")
    elif n.contains("username") or n.words in (("login",), ("user", "name")):
        found = _rule("username", "user name")
    elif n.has("ip", "ipv4", "ipv6") or n.contains("ipaddress", "ipaddr", "remoteaddr"):
        found = _rule("ip_address", "IP address", "inet")
    elif n.contains("creditcard", "cardnumber", "ccnumber", "ccnum") or n.has("pan"):
        found = _rule("credit_card", "card number", "number")
    elif n.contains("dateofbirth", "birthdate", "birthday") or n.has("dob"):
        found = _rule("dob", "date of birth", "date")
    elif n.has("street"):
        found = _rule("street", "street")
    elif n.contains("address") and not n.contains("macaddress", "webaddress", "walletaddress"):
        found = _rule("address", "postal address")
    elif n.has("city", "town"):
        found = _rule("city", "city")
    elif n.has("zip", "zipcode", "postcode", "postal"):
        found = _rule("postcode", "postcode", "number")
    elif n.has("country"):
        found = _rule("country", "country")
    elif n.contains("password", "passwd") or n.has("pwd"):
        found = _rule("password", "password")
    elif n.starts("token", "secret") or n.contains("apikey", "accesskey", "privatekey", "secretkey"):
        found = _rule("token", "token or secret")
    elif n.starts("note", "comment", "remark", "memo") or n.has("description", "bio", "about"):
        found = _rule("freeform", "notes (free text)")
    else:
        return None
    return found if found.applies_to(category) else None


# --------------------------------------------------------------------------------------------
# findings
# --------------------------------------------------------------------------------------------

_FAKE_PROVIDER = {
    "email": "email",
    "phone": "phone",
    "ssn": "ssn",
    "first_name": "first_name",
    "last_name": "last_name",
    "full_name": "full_name",
    "username": "username",
    "ip_address": "ip_address",
    "credit_card": "credit_card",
    "dob": "dob",
    "street": "street",
    "address": "address",
    "city": "city",
    "postcode": "postcode",
    "country": "country",
}
_PLURAL = {
    "email": "emails",
    "phone": "phone numbers",
    "ssn": "US social security numbers",
    "ip_address": "IP addresses",
    "credit_card": "card numbers (Luhn-valid)",
    "token": "tokens",
    "opaque": "opaque tokens (long hex or base64)",
}


@dataclass(frozen=True)
class Finding:
    """One column (or one JSON path of a json/jsonb column) that looks like PII. Holds no sampled value."""

    table: TableName
    column: str
    path: str | None  # e.g. $.actor.email for a finding inside a json/jsonb column
    kind: str  # email, phone, ip_address, credit_card, token, freeform, ...
    confidence: Confidence
    reason: str
    suggested_rule: Mapping[str, str] = field(default_factory=dict, hash=False)

    @property
    def location(self) -> str:
        where = f"{self.table}.{self.column}"
        return where if self.path is None else f"{where} {self.path}"

    @property
    def rule_file(self) -> str:
        return "mask-rules.yaml" if self.path is None else "commercial-extensions.yaml"

    def suggested_yaml(self) -> str:
        """Where the suggested rule goes, as YAML in the file's own format."""
        if self.path is None:
            return (
                f"tables:\n  {self.table}:\n    columns:\n      {self.column}: {_flow(self.suggested_rule)}\n"
            )
        entry = {"path": json.dumps(self.path), **self.suggested_rule}
        return (
            f"json_mask:\n  - column: {self.table}.{self.column}\n    paths:\n"
            f"      - {_flow(entry, quoted=False)}\n"
        )

    def suggested_line(self) -> str:
        """The suggested rule in one line, for error messages."""
        if self.path is None:
            return f"tables.{self.table}.columns: {self.column}: {_flow(self.suggested_rule)}"
        entry = {"path": json.dumps(self.path), **self.suggested_rule}
        return f"json_mask (column {self.table}.{self.column}) paths: - {_flow(entry, quoted=False)}"

    def as_dict(self) -> dict[str, Any]:
        found: dict[str, Any] = {"table": str(self.table), "column": self.column}
        if self.path is not None:
            found["path"] = self.path
        found.update(
            kind=self.kind,
            confidence=self.confidence,
            reason=self.reason,
            suggested_rule=dict(self.suggested_rule),
            suggested_yaml=self.suggested_yaml(),
            file=self.rule_file,
        )
        return found


_YAML_WORDS = {"null", "true", "false", "yes", "no", "on", "off", "y", "n", "~"}


def _flow(mapping: Mapping[str, str], *, quoted: bool = True) -> str:
    """A YAML flow mapping; values are quoted unless they read back as the same plain string."""

    def scalar(text: str) -> str:
        plain = re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.@-]*", text) and text.lower() not in _YAML_WORDS
        return text if plain or not quoted else json.dumps(text)

    return "{ " + ", ".join(f"{key}: {scalar(value)}" for key, value in mapping.items()) + " }"


def _suggest_column(kind: str, column: Column, category: Category) -> dict[str, str]:
    if category == "inet":  # only an address can be written into an inet or cidr column
        return {"action": "fake", "provider": "ip_address"}
    if kind in _FAKE_PROVIDER and category != "number":
        return {"action": "fake", "provider": _FAKE_PROVIDER[kind]}
    if kind in ("token", "password", "opaque") and category != "number":
        return {"action": "hash"}
    # free text, or a number column (a fake or a hash could not be written into it)
    if not column.not_null:
        return {"action": "null"}
    return {"action": "static", "value": "0" if category == "number" else "redacted"}


def _suggest_json(kind: str) -> dict[str, str]:
    if kind in _FAKE_PROVIDER:
        return {"action": "fake", "provider": _FAKE_PROVIDER[kind]}
    if kind == "freeform":
        return {"action": "remove"}
    return {"action": "hash"}


@dataclass(frozen=True)
class _Verdict:
    kind: str
    confidence: Confidence
    reason: str


def judge(
    name: str, category: Category, values: Sequence[str], *, what: str = "column name"
) -> _Verdict | None:
    """Name and value rules applied to one column or JSON path: ``values`` are its sampled non-null values."""
    rule = match_name(name, category)
    total = len(values)
    kinds: Counter[str] = Counter(kind for kind in map(classify_value, values) if kind is not None)
    structured = [(count, kind) for kind, count in kinds.items() if kind != "opaque"]
    top_count, top_kind = max(structured, default=(0, ""))

    def share(count: int) -> float:
        return count / total if total else 0.0

    def looks(count: int, kind: str) -> str:
        return f"{count} of {total} sampled values look like {_PLURAL[kind]}"

    if rule is not None and rule.kind != "freeform":
        parts = [f"{what} matches {rule.label}"]
        confidence: Confidence = "high"
        kind = rule.kind
        if rule.kind in _PLURAL and total:  # a kind with a value rule: do the samples agree?
            matched = kinds[rule.kind] + (kinds["opaque"] if rule.kind == "token" else 0)
            parts.append(looks(matched, rule.kind))
            if matched == 0 and category != "inet":
                confidence = "medium"
        if top_kind and top_kind != rule.kind and share(top_count) >= _HIGH_RATIO:
            kind = top_kind
            parts.append(looks(top_count, top_kind))
            confidence = "high"
        return _Verdict(kind, confidence, "; ".join(parts))
    if top_kind and share(top_count) >= _MEDIUM_RATIO:
        confidence = "high" if share(top_count) >= _HIGH_RATIO else "medium"
        return _Verdict(top_kind, confidence, looks(top_count, top_kind))
    if category == "inet":
        return _Verdict("ip_address", "high", "the column type is an IP address type")
    prose = sum(1 for value in values if is_prose(value))
    emails = sum(1 for value in values if contains_email(value))
    phones = sum(1 for value in values if contains_phone(value))
    mentions = [
        f"{count} of {total} contain {what_}"
        for count, what_ in ((emails, "an email address"), (phones, "a phone number"))
        if count
    ]
    if rule is not None:  # a free-text name
        parts = [f"{what} matches {rule.label}"]
        confidence = "medium"
        if total:
            parts.append(f"{prose} of {total} sampled values are free text")
            if emails or phones or sum(len(value) for value in values) / total >= 200:
                confidence = "high"
            elif not prose:
                confidence = "low"
        return _Verdict("freeform", confidence, "; ".join(parts + mentions))
    if total and share(max(emails, phones)) >= _MEDIUM_RATIO:
        return _Verdict(
            "freeform", "medium", f"{prose} of {total} sampled values are free text; " + "; ".join(mentions)
        )
    if kinds["opaque"] and share(kinds["opaque"]) >= _HIGH_RATIO:
        return _Verdict(
            "opaque", "low", looks(kinds["opaque"], "opaque") + " (ids and digests look the same)"
        )
    return None


# --------------------------------------------------------------------------------------------
# detect: catalog + samples
# --------------------------------------------------------------------------------------------

_NOT_TEXT = re.compile(
    r"(smallint|integer|bigint|numeric|decimal|real|double precision|money|boolean|bytea|uuid|oid|"
    r"interval|time|bit|tsvector|tsquery|point|line|lseg|box|path|polygon|circle|macaddr|int4range|"
    r"int8range|numrange|tsrange|tstzrange|daterange|xml|pg_lsn|txid_snapshot)\b"
)


def column_category(type_name: str) -> Category:
    """What kind of values a column holds, from its ``format_type`` text."""
    base = type_name.rsplit(".", 1)[-1].strip('"') if "(" not in type_name else type_name
    if base.endswith("[]"):
        inner = column_category(base[:-2])
        return inner if inner == "text" else "other"
    if base in ("json", "jsonb"):
        return "json"
    if base in ("inet", "cidr"):
        return "inet"
    if base.startswith(("text", "character", "varchar", "char", "citext", "name", "bpchar")):
        return "text"
    if base.startswith(("date", "timestamp")):
        return "date"
    if base.startswith(("smallint", "integer", "bigint", "numeric", "decimal")):
        return "number"
    if _NOT_TEXT.match(base):
        return "other"
    return "text"  # a domain, an enum or an extension type: read as text


def detect(
    conn: psycopg.Connection[TupleRow],
    catalog: Catalog,
    config: ReproConfig,
    *,
    sample_rows: int = DEFAULT_SAMPLE_ROWS,
) -> list[Finding]:
    """Findings for every copied table of ``catalog`` (tables whose strategy copies no rows are skipped).

    Reads at most ``sample_rows`` rows per table (a few more are fetched and thinned) with SELECT only.
    """
    if sample_rows < 1:
        raise ValueError("sample_rows must be at least 1")
    estimates = _row_estimates(conn)
    findings: list[Finding] = []
    for name in sorted(catalog.tables):
        table = catalog.tables[name]
        rules = _table_rules(config, name)
        if rules is not None and rules[1].strategy != "transform":
            continue
        findings.extend(_detect_table(conn, table, sample_rows, _estimate(table, estimates)))
    return findings


def _detect_table(
    conn: psycopg.Connection[TupleRow], table: Table, sample_rows: int, estimate: float
) -> Iterator[Finding]:
    columns = [column for column in table.columns if not column.generated]
    categories = {column.name: column_category(column.type) for column in columns}
    sampled = [column for column in columns if categories[column.name] in ("text", "inet", "json")]
    rows = _sample(conn, table, sampled, sample_rows, estimate) if sampled else []
    for position, column in enumerate(sampled):
        cells = [row[position] for row in rows if row[position] is not None]
        if categories[column.name] == "json":
            yield from _detect_json(table.name, column.name, cells)
        else:
            yield from _finding(table.name, column, categories[column.name], list(_texts(cells)))
    for column in columns:  # numbers and dates: by name only
        if column not in sampled:
            yield from _finding(table.name, column, categories[column.name], [])


def _texts(cells: Iterable[Any]) -> Iterator[str]:
    for cell in cells:
        if isinstance(cell, list):
            yield from (str(item) for item in cell if item is not None)
        else:
            yield str(cell)


def _finding(
    table: TableName, column: Column, category: Category, values: Sequence[str]
) -> Iterator[Finding]:
    verdict = judge(column.name, category, values)
    if verdict is not None:
        yield Finding(
            table,
            column.name,
            None,
            verdict.kind,
            verdict.confidence,
            verdict.reason,
            _suggest_column(verdict.kind, column, category),
        )


def _detect_json(table: TableName, column: str, documents: Sequence[Any]) -> Iterator[Finding]:
    leaves: dict[str, tuple[str, list[str], set[str]]] = {}  # path -> (key name, values, leaf types)
    for document in documents:  # psycopg has parsed them already
        for path, key, value in _walk(document, "$", "", 0):
            entry = leaves.get(path)
            if entry is None:
                if len(leaves) >= _MAX_JSON_PATHS:
                    continue
                entry = leaves[path] = (key, [], set())
            if isinstance(value, str):
                entry[1].append(value)
                entry[2].add("text")
            elif isinstance(value, int) and not isinstance(value, bool):
                entry[1].append(str(value))
                entry[2].add("number")
            elif value is not None:
                entry[2].add("other")
    for path in sorted(leaves):
        key, values, types = leaves[path]
        category: Category = "text" if "text" in types else "number" if "number" in types else "other"
        if category == "other":  # only booleans, floats and nulls here
            continue
        verdict = judge(key, category, values, what="key name")
        if verdict is not None:
            yield Finding(
                table,
                column,
                path,
                verdict.kind,
                verdict.confidence,
                verdict.reason,
                _suggest_json(verdict.kind),
            )


def _walk(node: Any, path: str, key: str, depth: int) -> Iterator[tuple[str, str, Any]]:
    """(path, the nearest key name, leaf value) for every leaf; arrays are written ``[*]``."""
    if depth > _MAX_JSON_DEPTH:
        return
    if isinstance(node, dict):
        for child_key, child in node.items():
            step = _path_step(str(child_key))
            named = "" if step == ".*" else str(child_key)
            yield from _walk(child, path + step, named, depth + 1)
    elif isinstance(node, list):
        for item in node:
            yield from _walk(item, path + "[*]", key, depth + 1)
    else:
        yield path, key, node


_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_DYNAMIC_KEY = re.compile(
    r"\d+|[0-9a-fA-F]{16,}|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)


def _path_step(key: str) -> str:
    """``.key``, or ``.*`` for a key that may be data (not an identifier, an id, a value that looks like PII)."""
    # Only identifier-like keys are kept: any other key (a name with a space, an email, an id) may be data,
    # and a finding's path goes into the policy diff and error messages.
    if _DYNAMIC_KEY.fullmatch(key) or len(key) > 64 or classify_value(key) not in (None, "opaque"):
        return ".*"
    return f".{key}" if _IDENTIFIER.fullmatch(key) else ".*"


def _row_estimates(conn: psycopg.Connection[TupleRow]) -> dict[TableName, float]:
    rows = conn.execute(
        "SELECT n.nspname, c.relname, c.reltuples FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('r', 'p')"
    ).fetchall()
    return {TableName(str(schema), str(name)): float(tuples) for schema, name, tuples in rows}


def _estimate(table: Table, estimates: Mapping[TableName, float]) -> float:
    if table.partitions:
        return sum(max(estimates.get(partition, 0.0), 0.0) for partition in table.partitions)
    return estimates.get(table.name, -1.0)


def _sample(
    conn: psycopg.Connection[TupleRow], table: Table, columns: Sequence[Column], limit: int, estimate: float
) -> list[TupleRow]:
    """Up to ``limit`` rows spread over the table: TABLESAMPLE SYSTEM on big tables, else the first rows."""
    selected = sql.SQL(", ").join(
        sql.Identifier(column.name)
        if column_category(column.type) == "json" or column.type.endswith("[]")
        else sql.SQL("{}::text").format(sql.Identifier(column.name))
        for column in columns
    )
    plain = sql.SQL("SELECT {} FROM {} LIMIT %s").format(selected, table.name.identifier)
    try:
        if table.partition_by is None and estimate > 20 * limit:
            percent = min(100.0, 100.0 * 4 * limit / estimate)
            sampled = sql.SQL("SELECT {} FROM {} TABLESAMPLE SYSTEM (%s) REPEATABLE (0) LIMIT %s").format(
                selected, table.name.identifier
            )
            rows = conn.execute(sampled, (percent, 4 * limit)).fetchall()
            if len(rows) >= limit:  # else the estimate was off: the first rows will do
                return rows[:: len(rows) // limit][:limit]
        return conn.execute(plain, (limit,)).fetchall()
    except psycopg.errors.InsufficientPrivilege:
        raise ConnectionFailed(
            f"auto-detection cannot sample {table.name}: the source role may not read it",
            f"GRANT SELECT ON {table.name} to the role, or give the table strategy exclude",
        ) from None


# --------------------------------------------------------------------------------------------
# coverage and the strict gate
# --------------------------------------------------------------------------------------------


def _table_rules(config: ReproConfig, table: TableName) -> tuple[str, TableRules] | None:
    for key, rules in config.mask_rules.tables.items():
        if TableName.parse(key) == table:
            return key, rules
    return None


def covered_by(finding: Finding, config: ReproConfig) -> str | None:
    """The rule that covers ``finding`` (as text for people), or None."""
    rules_file = config.mask_rules_doc.path.name
    configured = _table_rules(config, finding.table)
    if configured is not None:
        key, rules = configured
        if rules.strategy != "transform":
            return f"{rules_file} tables.{key}: strategy {rules.strategy} (no rows copied)"
        action = rules.columns.get(finding.column)
        if action is not None:
            return f"{rules_file} tables.{key}.columns.{finding.column}: {action.action}"
    if finding.path is None:
        return None
    candidates: list[tuple[str, str]] = []
    for index, entry in enumerate(config.extensions.json_mask):
        table_text, _, column = entry.column.rpartition(".")
        if column == finding.column and table_text and TableName.parse(table_text) == finding.table:
            candidates.extend(
                (f"json_mask[{index}] {rule.path}: {rule.action}", rule.path) for rule in entry.paths
            )
    covering = set(json_path_covered(finding.path, [path for _, path in candidates]))
    if not covering:
        return None
    described = [text for text, path in candidates if path in covering]
    return f"{config.extensions_doc.path.name} " + ", ".join(dict.fromkeys(described))


_SEGMENT = re.compile(r"\.([A-Za-z_][A-Za-z0-9_]*)|\.\*|\[\*\]|\['([^']*)'\]|\[(\"(?:[^\"\\]|\\.)*\")\]")


def json_path_covered(finding_path: str, rule_paths: Sequence[str]) -> list[str]:
    """The rule paths that together cover every value at ``finding_path`` (empty when they do not).

    A rule covers a value when it selects the value or one of its parents (removing or hashing
    ``$.internal`` covers ``$.internal.support_notes``). Each array (``[*]``) is tried with two
    elements, so ``[0]`` alone does not cover ``[*]`` (paths with more than ``_MAX_ARRAYS_CHECKED``
    arrays are not taken as covered); a key written ``*`` (a dynamic key) is covered by
    wildcards and recursive descent only. A rule on the whole document (``$``) is not taken as covering.
    """
    segments = _segments(finding_path)
    if segments is None or not segments or segments.count(None) > _MAX_ARRAYS_CHECKED:
        return []  # fail closed: too deep to check cheaply, so not taken as covered
    document, chains = _document(segments)
    remaining = set(range(len(chains)))
    needed = []
    for rule_path in rule_paths:
        try:
            selected = {id(match.value) for match in parse_jsonpath(rule_path).find(document)}
        except Exception:  # jsonpath-ng raises several exception types; such a path covers nothing here
            continue
        hit = {index for index in remaining if any(id(node) in selected for node in chains[index][1:])}
        if hit:
            needed.append(rule_path)
            remaining -= hit
    return [] if remaining else needed


def _segments(path: str) -> list[str | None] | None:
    """A finding path as keys (``None`` for an array element, ``"*"`` for a dynamic key)."""
    if not path.startswith("$"):
        return None
    found: list[str | None] = []
    position = 1
    while position < len(path):
        match = _SEGMENT.match(path, position)
        if match is None:
            return None
        text = match.group(0)
        if text == "[*]":
            found.append(None)
        elif text == ".*":
            found.append("*")
        elif match.group(3) is not None:
            found.append(str(json.loads(match.group(3))))
        else:
            found.append(match.group(1) if match.group(1) is not None else match.group(2))
        position = match.end()
    return found


_DYNAMIC = "\0dynamic-key\0"  # no rule names this key: only a wildcard selects it


_MAX_ARRAYS_CHECKED = 10  # 2**10 leaves at most


def _document(segments: Sequence[str | None]) -> tuple[Any, list[list[Any]]]:
    """A document holding ``segments``, each array with two elements; the node chains to each leaf."""
    if not segments:
        leaf = str(object())  # a fresh object, compared by identity
        return leaf, [[leaf]]
    head, rest = segments[0], segments[1:]
    if head is None:
        items, chains = [], []
        for _ in range(2):
            child, child_chains = _document(rest)
            items.append(child)
            chains.extend(child_chains)
        return items, [[items, *chain] for chain in chains]
    child, child_chains = _document(rest)
    node = {_DYNAMIC if head == "*" else head: child}
    return node, [[node, *chain] for chain in child_chains]


def uncovered(findings: Iterable[Finding], config: ReproConfig) -> list[Finding]:
    """High and medium findings without a rule: what ``strict_autodetect: true`` refuses."""
    return [f for f in findings if f.confidence in GATED and covered_by(f, config) is None]


def require_covered(findings: Iterable[Finding], config: ReproConfig) -> None:
    """The ``strict_autodetect: true`` gate: a PolicyGateFailed naming each uncovered finding."""
    missing = uncovered(findings, config)
    if not missing:
        return
    lines = [
        f"{finding.location} ({finding.confidence}): {finding.reason}; suggested rule in "
        f"{finding.rule_file}: {finding.suggested_line()}"
        for finding in missing
    ]
    raise PolicyGateFailed(
        f"{config.mask_rules_doc.path}: strict_autodetect is on and {len(missing)} PII finding(s) have no "
        "rule:\n  " + "\n  ".join(lines),
        "add the suggested rules (or an explicit { action: passthrough } for a column that is not PII); "
        "`repro-pipeline preview --policy-diff FILE` lists every finding",
    )


def policy_diff(findings: Sequence[Finding], config: ReproConfig) -> dict[str, Any]:
    """The policy-diff document: strict mode, whether it passes, the uncovered findings, then all of them."""
    strict = config.mask_rules.strict_autodetect
    described = []
    for finding in findings:
        entry = finding.as_dict()
        entry["covered_by"] = covered_by(finding, config)
        described.append(entry)
    missing = [entry for entry in described if entry["covered_by"] is None and entry["confidence"] in GATED]
    counts = Counter(finding.confidence for finding in findings)
    return {
        "strict_autodetect": strict,
        "strict_passed": not (strict and missing),
        "uncovered_strict": [
            {key: value for key, value in entry.items() if key != "covered_by"} for entry in missing
        ],
        "findings": described,
        "summary": {
            "findings": len(findings),
            "high": counts["high"],
            "medium": counts["medium"],
            "low": counts["low"],
            "uncovered": len(missing),
        },
    }
