"""Deterministic synthetic multi-tenant billing source.

Everything is generated set-based on the server (``INSERT ... SELECT ... FROM generate_series``)
in one transaction. Pseudo-randomness comes from ``hashint8extended(key, seed * 1000 + salt)``
(stable across platforms, as hash partitioning depends on it); ``random()`` is never used, so the
same :class:`SourceSpec` always yields the same ids and values. The only exception is
``audit_events.occurred_at``, which is ``now()`` (at build time) minus a deterministic offset, so
that "the last 90 days" keeps meaning something whenever the source is built.

Organization 451 (``acme-corp``) is the demo tenant. Its size does not depend on ``spec.scale``
(about 60 users, 4 subscriptions, 3,000 invoices, 6,000 audit events over ~500 days) and it is the
only tenant with planted invoices whose ``total_cents`` differs from the sum of its line items.

``spec.whale_scale`` > 0 adds one more organization, the whale (id 501 for the default 200 organizations),
generated after every other row so that the others stay exactly what they are without it. At scale 1.0 it
holds about 1.05M rows: 200,000 invoices, about 700,000 line items and 150,000 audit events of 0.5-2 KB of
JSON, all in the last 80 days (within the guide's 90-day root for 10 days after the build), besides its 2,000
users, 20 subscriptions and a payment method per user.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Final

import psycopg
from psycopg import sql
from psycopg.rows import TupleRow

__all__ = [
    "DEMO_ORGANIZATION_ID",
    "GENERATOR_VERSION",
    "SCHEMA_SQL_PATH",
    "TABLES",
    "WHALE_AUDIT_DAYS",
    "SourceSpec",
    "SourceSummary",
    "WhaleSizes",
    "build_source",
    "load_schema_sql",
]

SCHEMA_SQL_PATH: Final[Path] = Path(__file__).with_name("schema.sql")
DEMO_ORGANIZATION_ID: Final[int] = 451
# Bump whenever the generated content changes: a source built by another version is rebuilt.
GENERATOR_VERSION: Final[int] = 1

# Parents before children (creation / insertion order).
TABLES: Final[tuple[str, ...]] = (
    "organizations",
    "users",
    "subscriptions",
    "invoices",
    "invoice_line_items",
    "payment_methods",
    "audit_events",
)

_INDEX_SECTION_MARKER: Final[str] = "-- ==== foreign-key indexes ===="
_SPEC_COMMENT_KEY: Final[str] = "repro_pipeline.embedded.synthetic"
_ADVISORY_LOCK_KEY: Final[int] = 0x5E9_7041_0451  # arbitrary, constant
_MAX_SEED: Final[int] = 2**31 - 1

# Fixed anchor for every timestamp except audit_events.occurred_at (deterministic content).
_ANCHOR: Final[str] = "2026-07-01 00:00:00+00"

# Sizes. Non-demo tenants get a Zipf-like share of _USERS_TOTAL * scale users (at least one);
# everything else hangs off the user count.
_USERS_TOTAL: Final[int] = 4400
_ZIPF_EXPONENT: Final[float] = 0.9
_DEMO_USERS: Final[int] = 60
_DEMO_SUBSCRIPTIONS: Final[int] = 4
_DEMO_INVOICES: Final[int] = 3000
_DEMO_AUDIT_EVENTS: Final[int] = 6000
_DEMO_AUDIT_DAYS: Final[int] = 500

# The whale at whale_scale 1.0 (its subscriptions do not scale).
_WHALE_USERS: Final[int] = 2000
_WHALE_SUBSCRIPTIONS: Final[int] = 20
_WHALE_INVOICES: Final[int] = 200_000
_WHALE_MAX_LINE_ITEMS: Final[int] = 6  # 1..6 per invoice, 3.5 on average
_WHALE_AUDIT_EVENTS: Final[int] = 150_000
WHALE_AUDIT_DAYS: Final[int] = 80
_WHALE_SLUG: Final[str] = "leviathan-freight"
_WHALE_NAME: Final[str] = "Leviathan Freight Holdings"

# Syllable pools for synthetic person and company names. None of the combinations is a name in
# any Faker locale (checked by the tests), so a masked value can never coincide with a source one.
FIRST_NAME_HEADS: Final[tuple[str, ...]] = (
    "Oth", "Vas", "Quel", "Zan", "Bri", "Thal", "Ysm", "Kor", "Dre", "Mav", "Lio", "Fen",
    "Ux", "Sael", "Gro", "Nim", "Pael", "Xan", "Iv", "Rhos", "Ela", "Tov", "Cyr", "Jass",
)  # fmt: skip
FIRST_NAME_TAILS: Final[tuple[str, ...]] = (
    "lena", "trick", "dwyn", "omir", "azel", "ithe", "undra", "evik", "ossa", "arin", "yth",
    "olde", "ivra", "embor", "quist", "anor", "ique", "alis",
)  # fmt: skip
LAST_NAME_HEADS: Final[tuple[str, ...]] = (
    "Vas", "Grim", "Thorn", "Quill", "Brax", "Mor", "Elst", "Kest", "Yarr", "Dun", "Spel",
    "Corv", "Wex", "Halb", "Trem", "Oss", "Pry", "Zell", "Ack", "Fol",
)  # fmt: skip
LAST_NAME_TAILS: Final[tuple[str, ...]] = (
    "trick", "wether", "ovar", "haldt", "enby", "ismont", "arrow", "quist", "eld", "bourne",
    "ix", "stadt", "umble", "orrin", "avey", "ecroft", "wyck", "andel",
)  # fmt: skip
_COMPANY_KINDS: Final[tuple[str, ...]] = (
    "Holdings", "Labs", "Systems", "Group", "Partners", "Logistics", "Analytics", "Foods",
    "Robotics", "Media", "Freight", "Studios",
)  # fmt: skip
_COMPANY_FORMS: Final[tuple[str, ...]] = ("Inc.", "LLC", "Ltd", "GmbH", "S.A.", "")

_ROLES_NON_OWNER: Final[str] = (
    "CASE WHEN {h} < 10 THEN 'admin' WHEN {h} < 18 THEN 'billing' ELSE 'member' END"
)
_PLAN_CODES: Final[tuple[str, ...]] = (
    "starter-monthly", "team-monthly", "team-annual", "business-annual", "enterprise-custom",
)  # fmt: skip
# (sku, list price in cents)
_SKUS: Final[tuple[tuple[str, int], ...]] = (
    ("SEAT-STD", 1200), ("SEAT-PRO", 2900), ("STORAGE-100GB", 499), ("API-CALLS-1M", 1999),
    ("SUPPORT-PREMIUM", 15000), ("ONBOARDING", 50000), ("SSO-ADDON", 4900), ("AUDIT-LOG-RETENTION", 999),
)  # fmt: skip
_EVENT_TYPES: Final[tuple[str, ...]] = (
    "invoice.issued", "invoice.paid", "invoice.voided", "user.login", "user.invited",
    "payment_method.added", "subscription.updated", "export.requested",
)  # fmt: skip
_INVOICE_EVENT_TYPES: Final[int] = 3  # the first three types carry an invoice_id
_USER_AGENTS: Final[tuple[str, ...]] = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.5 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
    "billing-sdk-python/4.2.1",
    "curl/8.5.0",
)
_PUBLIC_FIRST_OCTETS: Final[tuple[int, ...]] = (23, 31, 45, 62, 77, 84, 91, 109, 146, 178, 185, 203)


@dataclass(frozen=True)
class SourceSpec:
    """What to generate. ``scale`` multiplies the sizes of all tenants but the demo one; ``whale_scale`` > 0
    adds the whale organization at that size (1.0: about 1.05M rows)."""

    seed: int = 7
    organizations: int = 200
    scale: float = 1.0
    whale_scale: float = 0.0

    def __post_init__(self) -> None:
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise TypeError(f"seed must be an int, got {self.seed!r}")
        if not 0 <= self.seed <= _MAX_SEED:
            raise ValueError(f"seed must be between 0 and {_MAX_SEED}, got {self.seed}")
        if isinstance(self.organizations, bool) or not isinstance(self.organizations, int):
            raise TypeError(f"organizations must be an int, got {self.organizations!r}")
        if not 1 <= self.organizations <= 100_000:
            raise ValueError(f"organizations must be between 1 and 100000, got {self.organizations}")
        if isinstance(self.scale, bool) or not isinstance(self.scale, int | float):
            raise TypeError(f"scale must be a number, got {self.scale!r}")
        if not (math.isfinite(self.scale) and 0 < self.scale <= 100):
            raise ValueError(f"scale must be > 0 and <= 100, got {self.scale}")
        object.__setattr__(self, "scale", float(self.scale))
        if isinstance(self.whale_scale, bool) or not isinstance(self.whale_scale, int | float):
            raise TypeError(f"whale_scale must be a number, got {self.whale_scale!r}")
        if not (math.isfinite(self.whale_scale) and 0 <= self.whale_scale <= 10):
            raise ValueError(f"whale_scale must be >= 0 and <= 10, got {self.whale_scale}")
        object.__setattr__(self, "whale_scale", float(self.whale_scale))

    @property
    def whale_organization_id(self) -> int | None:
        """The whale's id, right after the other organizations' (501 for 200), or None without a whale."""
        if not self.whale_scale:
            return None
        return _Sql(self).first_org_id() + self.organizations

    def whale_sizes(self) -> WhaleSizes:
        """The whale's users, subscriptions, invoices and audit events at this spec's whale_scale."""
        return WhaleSizes(
            users=max(1, round(_WHALE_USERS * self.whale_scale)),
            subscriptions=_WHALE_SUBSCRIPTIONS,
            invoices=max(1, round(_WHALE_INVOICES * self.whale_scale)),
            audit_events=max(1, round(_WHALE_AUDIT_EVENTS * self.whale_scale)),
        )

    def to_json(self) -> str:
        """The marker stored as ``COMMENT ON TABLE organizations`` (includes the generator version). Without a
        whale it is the marker of the specs before whales existed, so their sources are not rebuilt."""
        fields = asdict(self)
        if not self.whale_scale:
            del fields["whale_scale"]
        return json.dumps(
            {_SPEC_COMMENT_KEY: {**fields, "generator_version": GENERATOR_VERSION}}, sort_keys=True
        )


@dataclass(frozen=True)
class WhaleSizes:
    users: int
    subscriptions: int
    invoices: int
    audit_events: int


@dataclass(frozen=True)
class SourceSummary:
    """Row counts and the demo tenant's facts, as found in the database after ``build_source``."""

    spec: SourceSpec
    # Table name -> row count, in TABLES order (a plain dict, so that the summary pickles).
    row_counts: Mapping[str, int] = field(hash=False)
    demo_organization_id: int
    demo_invoice_count: int
    demo_audit_event_count: int
    # Audit events of the demo tenant with occurred_at >= now() - 90 days (now() of this call).
    demo_recent_audit_event_count: int
    # Invoices of the demo tenant whose total_cents deliberately differs from its line items.
    planted_invoice_ids: tuple[int, ...]
    # True if this call (re)generated the data, False if an identical build was found.
    generated: bool

    @property
    def total_rows(self) -> int:
        return sum(self.row_counts.values())


def load_schema_sql() -> tuple[str, str]:
    """schema.sql split into (tables, foreign-key indexes)."""
    text = SCHEMA_SQL_PATH.read_text(encoding="utf-8")
    tables, marker, indexes = text.partition(_INDEX_SECTION_MARKER)
    if not marker:
        raise RuntimeError(f"{SCHEMA_SQL_PATH} lacks the line {_INDEX_SECTION_MARKER!r}")
    return tables, indexes


# --------------------------------------------------------------------------------------------
# SQL building blocks
# --------------------------------------------------------------------------------------------


def _lit(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _text_array(values: tuple[str, ...]) -> str:
    return "ARRAY[" + ", ".join(_lit(v) for v in values) + "]::text[]"


def _int_array(values: tuple[int, ...]) -> str:
    return "ARRAY[" + ", ".join(str(v) for v in values) + "]::bigint[]"


class _Sql:
    """Renders the generation statements for one spec (seed and sizes are validated numbers)."""

    def __init__(self, spec: SourceSpec) -> None:
        self.spec = spec

    def h(self, key: str, salt: int) -> str:
        """Deterministic non-negative 31-bit hash of a bigint key (different salt => independent)."""
        assert 0 <= salt < 1000
        return f"(hashint8extended(({key})::bigint, {self.spec.seed * 1000 + salt}) & 2147483647)"

    def pick(self, array_sql: str, n: int, key: str, salt: int) -> str:
        return f"({array_sql})[1 + {self.h(key, salt)} % {n}]"

    def first_org_id(self) -> int:
        # Ids 301..500 for the default 200 organizations; always a contiguous run containing 451.
        return DEMO_ORGANIZATION_ID - min(150, self.spec.organizations - 1)

    def planted_invoices(self) -> str:
        """Ids of the demo tenant's invoices that get a wrong total (5..15 of them)."""
        count = 5 + (self.spec.seed * 7919 + 3) % 11
        return f"""
            SELECT i.id
            FROM invoices i JOIN subscriptions s ON s.id = i.subscription_id
            WHERE s.organization_id = {DEMO_ORGANIZATION_ID}
            ORDER BY {self.h("i.id", 90)}, i.id
            LIMIT {count}"""

    def sizes_cte(self) -> str:
        s = self.spec
        demo = DEMO_ORGANIZATION_ID
        return f"""
        ranked AS (
            SELECT id, row_number() OVER (ORDER BY {self.h("id", 10)}, id) AS r
            FROM organizations WHERE id <> {demo}
        ),
        weights AS (
            SELECT id, power(r, -{_ZIPF_EXPONENT}) / sum(power(r, -{_ZIPF_EXPONENT})) OVER () AS w
            FROM ranked
        ),
        base_sizes AS (
            SELECT o.id AS org_id,
                   CASE WHEN o.id = {demo} THEN {_DEMO_USERS}
                        ELSE greatest(1, round(w.w * {_USERS_TOTAL} * {s.scale!r}))::int END AS n_users
            FROM organizations o LEFT JOIN weights w ON w.id = o.id
        ),
        sizes AS (
            SELECT org_id, n_users,
                   CASE WHEN org_id = {demo} THEN {_DEMO_SUBSCRIPTIONS}
                        ELSE least(12, 1 + n_users / 25) END AS n_subs,
                   CASE WHEN org_id = {demo} THEN {_DEMO_INVOICES}
                        ELSE round(n_users * (10 + {self.h("org_id", 11)} % 21))::int END AS n_invoices,
                   CASE WHEN org_id = {demo} THEN {_DEMO_AUDIT_EVENTS}
                        ELSE round(n_users * (15 + {self.h("org_id", 12)} % 31))::int END AS n_events,
                   CASE WHEN org_id = {demo} THEN {_DEMO_AUDIT_DAYS}
                        ELSE 120 + {self.h("org_id", 13)} % 600 END AS event_days
            FROM base_sizes
        )"""

    def statements(self) -> list[str]:
        h = self.h
        spec = self.spec
        first_id = self.first_org_id()
        demo = DEMO_ORGANIZATION_ID
        anchor = f"timestamptz {_lit(_ANCHOR)}"
        fh, ft = FIRST_NAME_HEADS, FIRST_NAME_TAILS
        lh, lt = LAST_NAME_HEADS, LAST_NAME_TAILS
        sku_names = tuple(name for name, _ in _SKUS)
        sku_prices = tuple(price for _, price in _SKUS)
        n_types = len(_EVENT_TYPES)

        organizations = f"""
        INSERT INTO organizations (id, tenant_slug, legal_name, created_at) OVERRIDING SYSTEM VALUE
        SELECT id,
               CASE WHEN id = {demo} THEN 'acme-corp'
                    ELSE lower(word) || '-' || lower(kind) || '-' || id END,
               CASE WHEN id = {demo} THEN 'Acme Corporation'
                    ELSE rtrim(word || ' ' || kind || ' ' || form) END,
               {anchor} - make_interval(days => (760 + {h("id", 3)} % 900)::int, secs => {h("id", 4)} % 86400)
        FROM (
            SELECT id,
                   {self.pick(_text_array(lh), len(lh), "id", 0)}
                       || {self.pick(_text_array(lt), len(lt), "id", 1)} AS word,
                   {self.pick(_text_array(_COMPANY_KINDS), len(_COMPANY_KINDS), "id", 2)} AS kind,
                   {self.pick(_text_array(_COMPANY_FORMS), len(_COMPANY_FORMS), "id", 5)} AS form
            FROM generate_series({first_id}, {first_id + spec.organizations - 1}) AS id
        ) o
        ORDER BY id"""

        # Per-user values hash (organization, ordinal), not the id, so a tenant's users are the same
        # at every scale. A "variant" user duplicates the previous user's account with another email
        # casing ("Jane.doe3@" vs "jane.doe3@"): some even ordinals in tenants of 40+ users, and
        # always ordinal 24 of the demo tenant.
        users = f"""
        INSERT INTO users (id, organization_id, email, full_name, role) OVERRIDING SYSTEM VALUE
        WITH {self.sizes_cte()},
        base AS (
            SELECT row_number() OVER (ORDER BY s.org_id, g) AS id, s.org_id, g AS ordinal,
                   s.n_users, o.tenant_slug
            FROM sizes s JOIN organizations o ON o.id = s.org_id
            CROSS JOIN generate_series(1, s.n_users) AS g
        ),
        keyed AS (
            SELECT b.*,
                   b.org_id * 100000 + b.ordinal AS user_key,
                   (b.n_users >= 40 AND b.ordinal % 2 = 0
                    AND ({h("b.org_id * 100000 + b.ordinal", 20)} % 25 = 0
                         OR (b.org_id = {demo} AND b.ordinal = 24))) AS is_variant
            FROM base b
        ),
        named AS (
            SELECT k.*,
                   {self.pick(_text_array(fh), len(fh), "name_key", 21)}
                       || {self.pick(_text_array(ft), len(ft), "name_key", 22)} AS first_name,
                   {self.pick(_text_array(lh), len(lh), "name_key", 23)}
                       || {self.pick(_text_array(lt), len(lt), "name_key", 24)} AS last_name
            FROM (
                SELECT keyed.*, CASE WHEN is_variant THEN user_key - 1 ELSE user_key END AS name_key
                FROM keyed
            ) k
        ),
        mailed AS (
            SELECT n.*,
                   lower(first_name) || '.' || lower(last_name)
                       || CASE WHEN is_variant THEN ordinal - 1 ELSE ordinal END
                       || '@' || tenant_slug || '.example.com' AS plain_email
            FROM named n
        )
        SELECT id, org_id,
               CASE WHEN is_variant THEN upper(left(plain_email, 1)) || substr(plain_email, 2)
                    ELSE plain_email END,
               first_name || ' ' || last_name,
               CASE WHEN ordinal = 1 THEN 'owner'
                    ELSE {_ROLES_NON_OWNER.format(h=h("user_key", 25) + " % 100")} END
        FROM mailed
        ORDER BY id"""

        subscriptions = f"""
        INSERT INTO subscriptions (id, organization_id, plan_code, status) OVERRIDING SYSTEM VALUE
        WITH {self.sizes_cte()}
        SELECT row_number() OVER (ORDER BY org_id, g), org_id,
               {self.pick(_text_array(_PLAN_CODES), len(_PLAN_CODES), "org_id * 100 + g", 30)},
               CASE WHEN g = 1 OR {h("org_id * 100 + g", 31)} % 100 < 70 THEN 'active'
                    WHEN {h("org_id * 100 + g", 31)} % 100 < 90 THEN 'canceled'
                    ELSE 'past_due' END
        FROM sizes CROSS JOIN generate_series(1, n_subs) AS g
        ORDER BY 1"""

        # total_cents is filled in by the UPDATE below, once the line items exist.
        invoices = f"""
        INSERT INTO invoices (id, subscription_id, issued_at, total_cents, currency) OVERRIDING SYSTEM VALUE
        WITH {self.sizes_cte()},
        subs AS (
            SELECT organization_id AS org_id, min(id) AS first_sub, count(*) AS n_subs
            FROM subscriptions GROUP BY organization_id
        ),
        base AS (
            SELECT s.org_id, g, s.org_id * 10000000 + g AS k, sb.first_sub, sb.n_subs
            FROM sizes s JOIN subs sb ON sb.org_id = s.org_id
            CROSS JOIN generate_series(1, s.n_invoices) AS g
        ),
        dated AS (
            SELECT b.*,
                   {anchor} - make_interval(secs => {h("k", 40)} % (730 * 86400)) AS issued_at
            FROM base b
        )
        SELECT row_number() OVER (ORDER BY issued_at, org_id, g),
               first_sub + {h("k", 41)} % n_subs,
               issued_at,
               0,
               CASE WHEN {h("k", 42)} % 100 < 85 THEN 'USD'
                    WHEN {h("k", 42)} % 100 < 95 THEN 'EUR' ELSE 'GBP' END
        FROM dated
        ORDER BY 1"""

        line_items = f"""
        INSERT INTO invoice_line_items (id, invoice_id, sku, quantity, unit_cents) OVERRIDING SYSTEM VALUE
        SELECT row_number() OVER (ORDER BY i.id, g), i.id,
               ({_text_array(sku_names)})[1 + sku_idx],
               CASE WHEN {h("i.id * 8 + g", 51)} % 100 < 60 THEN 1
                    ELSE 2 + {h("i.id * 8 + g", 52)} % 24 END,
               ({_int_array(sku_prices)})[1 + sku_idx]
                   - CASE WHEN {h("i.id * 8 + g", 53)} % 4 = 0
                          THEN ({_int_array(sku_prices)})[1 + sku_idx] / 10 ELSE 0 END
        FROM invoices i
        CROSS JOIN LATERAL generate_series(1, 1 + {h("i.id", 50)} % 5) AS g
        CROSS JOIN LATERAL (SELECT {h("i.id * 8 + g", 54)} % {len(_SKUS)} AS sku_idx) AS p
        ORDER BY 1"""

        # Exact totals everywhere, except the planted demo invoices: either one line item's amount is
        # missing from the total (invoices with 2+ items, half of them) or it is off by 1..9 cents.
        totals = f"""
        WITH planted AS (
            SELECT p.id,
                   CASE WHEN {h("p.id", 91)} % 2 = 0 AND last_item.n >= 2 THEN -last_item.amount
                        ELSE (1 + {h("p.id", 92)} % 9) * CASE WHEN {h("p.id", 93)} % 2 = 0 THEN 1 ELSE -1 END
                   END AS adjustment
            FROM ({self.planted_invoices()}) p
            CROSS JOIN LATERAL (
                SELECT count(*) OVER () AS n, li.quantity::bigint * li.unit_cents AS amount
                FROM invoice_line_items li WHERE li.invoice_id = p.id
                ORDER BY li.id DESC LIMIT 1
            ) last_item
        ),
        sums AS (
            SELECT invoice_id, sum(quantity::bigint * unit_cents) AS total
            FROM invoice_line_items GROUP BY invoice_id
        )
        UPDATE invoices i SET total_cents = sums.total + coalesce(planted.adjustment, 0)
        FROM sums LEFT JOIN planted ON planted.id = sums.invoice_id
        WHERE i.id = sums.invoice_id"""

        # 0..2 payment methods per user (20% none, 60% one, 20% two).
        payment_methods = f"""
        INSERT INTO payment_methods (id, user_id, last_four, provider_token) OVERRIDING SYSTEM VALUE
        SELECT row_number() OVER (ORDER BY u.id, g), u.id,
               lpad(({h("u.id * 4 + g", 61)} % 10000)::text, 4, '0'),
               'tok_' || substr(md5('{spec.seed}:pm:' || u.id || ':' || g), 1, 24)
        FROM users u
        CROSS JOIN LATERAL generate_series(
            1, CASE WHEN {h("u.id", 60)} % 100 < 20 THEN 0 WHEN {h("u.id", 60)} % 100 < 80 THEN 1 ELSE 2 END
        ) AS g
        ORDER BY 1"""

        notes = (
            "'Called ' || legal_name || ' about invoice ' || coalesce(invoice_id::text, 'n/a')"
            " || '; spoke with ' || full_name || '.'",
            "legal_name || ' asked to change the billing contact to ' || email || '.'",
            "'Escalated ticket for ' || legal_name || ' (' || full_name || '): refund pending review.'",
            "'Customer ' || legal_name || ' reported a duplicate charge; ' || full_name"
            " || ' will send a bank statement.'",
            "'Spoke to ' || full_name || ' at ' || legal_name || ' about renewal pricing.'",
        )
        notes_case = "CASE nk " + " ".join(f"WHEN {i} THEN {n}" for i, n in enumerate(notes)) + " END"
        # Half private (10.x.y.z), half public-looking addresses.
        ip_tail = (
            f"'.' || ({h('k', 76)} % 256) || '.' || ({h('k', 77)} % 256) || '.' || (1 + {h('k', 78)} % 254)"
        )
        public_octet = f"({_int_array(_PUBLIC_FIRST_OCTETS)})[1 + {h('k', 79)} % {len(_PUBLIC_FIRST_OCTETS)}]"
        ip = f"CASE WHEN {h('k', 75)} % 2 = 0 THEN '10' || {ip_tail} ELSE {public_octet} || {ip_tail} END"
        audit_events = f"""
        INSERT INTO audit_events (id, organization_id, occurred_at, payload) OVERRIDING SYSTEM VALUE
        WITH {self.sizes_cte()},
        org_users AS (
            SELECT organization_id AS org_id, min(id) AS first_user, count(*) AS n_users
            FROM users GROUP BY organization_id
        ),
        org_invoices AS (
            SELECT s.organization_id AS org_id, i.id,
                   row_number() OVER (PARTITION BY s.organization_id ORDER BY i.id) AS rn
            FROM invoices i JOIN subscriptions s ON s.id = i.subscription_id
        ),
        org_invoice_counts AS (
            SELECT org_id, count(*) AS n_invoices FROM org_invoices GROUP BY org_id
        ),
        base AS (
            SELECT s.org_id, g, s.org_id * 10000000 + g AS k,
                   {h("s.org_id * 10000000 + g", 70)} % (s.event_days * 86400) AS age_secs,
                   ou.first_user + {h("s.org_id * 10000000 + g", 71)} % ou.n_users AS user_id,
                   {h("s.org_id * 10000000 + g", 72)} % {n_types} AS type_idx,
                   {h("s.org_id * 10000000 + g", 73)} % 100 AS actor_mode,
                   {h("s.org_id * 10000000 + g", 74)} % 100 AS notes_mode,
                   coalesce(oic.n_invoices, 0) AS n_invoices
            FROM sizes s JOIN org_users ou ON ou.org_id = s.org_id
            LEFT JOIN org_invoice_counts oic ON oic.org_id = s.org_id
            CROSS JOIN generate_series(1, s.n_events) AS g
        ),
        enriched AS (
            SELECT b.*, u.email, u.full_name, o.legal_name, o.tenant_slug,
                   ({_text_array(_EVENT_TYPES)})[1 + b.type_idx] AS event_type,
                   CASE WHEN b.type_idx < {_INVOICE_EVENT_TYPES} THEN oi.id END AS invoice_id,
                   {ip} AS ip,
                   b.notes_mode % {len(notes)} AS nk
            FROM base b
            JOIN users u ON u.id = b.user_id
            JOIN organizations o ON o.id = b.org_id
            LEFT JOIN org_invoices oi
                ON b.type_idx < {_INVOICE_EVENT_TYPES} AND b.n_invoices > 0
               AND oi.org_id = b.org_id AND oi.rn = 1 + {h("b.k", 80)} % b.n_invoices
        )
        SELECT row_number() OVER (ORDER BY age_secs DESC, org_id, g),
               org_id,
               now() - make_interval(secs => age_secs),
               jsonb_build_object(
                   'type', event_type,
                   'actor', CASE
                       WHEN actor_mode < 82
                           THEN jsonb_build_object('email', email, 'user_id', user_id, 'ip', ip)
                       WHEN actor_mode < 88 THEN jsonb_build_object('user_id', user_id, 'ip', ip)
                       WHEN actor_mode < 94 THEN NULL
                       ELSE jsonb_build_object('email', 'support@' || tenant_slug || '.example.com', 'ip', ip)
                   END,
                   'request', jsonb_build_object(
                       'id', md5('{spec.seed}:req:' || k),
                       'user_agent', {self.pick(_text_array(_USER_AGENTS), len(_USER_AGENTS), "k", 81)})
               )
               || CASE WHEN notes_mode < 60
                       THEN jsonb_build_object('internal', jsonb_build_object('support_notes', {notes_case}))
                       ELSE jsonb_build_object() END
               || CASE WHEN invoice_id IS NOT NULL
                       THEN jsonb_build_object('invoice_id', invoice_id)
                       ELSE jsonb_build_object() END
        FROM enriched
        ORDER BY 1"""

        return [
            organizations,
            users,
            subscriptions,
            invoices,
            line_items,
            totals,
            payment_methods,
            audit_events,
            *self.whale_statements(notes_case),
        ]

    def whale_statements(self, notes_case: str) -> list[str]:
        """The whale's rows, with ids after every other row's; none when the spec has no whale."""
        whale = self.spec.whale_organization_id
        if whale is None:
            return []
        h = self.h
        sizes = self.spec.whale_sizes()
        anchor = f"timestamptz {_lit(_ANCHOR)}"
        fh, ft = FIRST_NAME_HEADS, FIRST_NAME_TAILS
        lh, lt = LAST_NAME_HEADS, LAST_NAME_TAILS
        sku_names = tuple(name for name, _ in _SKUS)
        sku_prices = tuple(price for _, price in _SKUS)
        n_types = len(_EVENT_TYPES)
        organization = f"""
        INSERT INTO organizations (id, tenant_slug, legal_name, created_at) OVERRIDING SYSTEM VALUE
        VALUES ({whale}, {_lit(_WHALE_SLUG)}, {_lit(_WHALE_NAME)}, {anchor} - interval '1500 days')"""
        users = f"""
        INSERT INTO users (id, organization_id, email, full_name, role) OVERRIDING SYSTEM VALUE
        SELECT first.id + g, {whale},
               lower(n.first_name) || '.' || lower(n.last_name) || g || '@{_WHALE_SLUG}.example.com',
               n.first_name || ' ' || n.last_name,
               CASE WHEN g = 1 THEN 'owner' ELSE {_ROLES_NON_OWNER.format(h=h(f"{whale} * 100000 + g", 25) + " % 100")} END
        FROM (SELECT coalesce(max(id), 0) AS id FROM users) first
        CROSS JOIN generate_series(1, {sizes.users}) AS g
        CROSS JOIN LATERAL (
            SELECT {self.pick(_text_array(fh), len(fh), f"{whale} * 100000 + g", 21)}
                       || {self.pick(_text_array(ft), len(ft), f"{whale} * 100000 + g", 22)} AS first_name,
                   {self.pick(_text_array(lh), len(lh), f"{whale} * 100000 + g", 23)}
                       || {self.pick(_text_array(lt), len(lt), f"{whale} * 100000 + g", 24)} AS last_name
        ) n
        ORDER BY 1"""
        subscriptions = f"""
        INSERT INTO subscriptions (id, organization_id, plan_code, status) OVERRIDING SYSTEM VALUE
        SELECT first.id + g, {whale},
               {self.pick(_text_array(_PLAN_CODES), len(_PLAN_CODES), f"{whale} * 100 + g", 30)},
               CASE WHEN g = 1 OR {h(f"{whale} * 100 + g", 31)} % 100 < 70 THEN 'active' ELSE 'canceled' END
        FROM (SELECT coalesce(max(id), 0) AS id FROM subscriptions) first
        CROSS JOIN generate_series(1, {sizes.subscriptions}) AS g
        ORDER BY 1"""
        invoices = f"""
        INSERT INTO invoices (id, subscription_id, issued_at, total_cents, currency) OVERRIDING SYSTEM VALUE
        SELECT first.id + g, subs.first_id + {h(f"{whale}::bigint * 10000000 + g", 41)} % {sizes.subscriptions},
               {anchor} - make_interval(secs => {h(f"{whale}::bigint * 10000000 + g", 40)} % (730 * 86400)),
               0,
               CASE WHEN {h(f"{whale}::bigint * 10000000 + g", 42)} % 100 < 85 THEN 'USD' ELSE 'EUR' END
        FROM (SELECT coalesce(max(id), 0) AS id FROM invoices) first
        CROSS JOIN (SELECT min(id) AS first_id FROM subscriptions WHERE organization_id = {whale}) subs
        CROSS JOIN generate_series(1, {sizes.invoices}) AS g
        ORDER BY 1"""
        whale_invoices = f"""
            SELECT i.id FROM invoices i JOIN subscriptions s ON s.id = i.subscription_id
            WHERE s.organization_id = {whale}"""
        line_items = f"""
        INSERT INTO invoice_line_items (id, invoice_id, sku, quantity, unit_cents) OVERRIDING SYSTEM VALUE
        SELECT first.id + row_number() OVER (ORDER BY i.id, g), i.id,
               ({_text_array(sku_names)})[1 + sku_idx],
               CASE WHEN {h("i.id * 8 + g", 51)} % 100 < 60 THEN 1 ELSE 2 + {h("i.id * 8 + g", 52)} % 24 END,
               ({_int_array(sku_prices)})[1 + sku_idx]
        FROM (SELECT coalesce(max(id), 0) AS id FROM invoice_line_items) first
        CROSS JOIN ({whale_invoices}) i
        CROSS JOIN LATERAL generate_series(1, 1 + {h("i.id", 50)} % {_WHALE_MAX_LINE_ITEMS}) AS g
        CROSS JOIN LATERAL (SELECT {h("i.id * 8 + g", 54)} % {len(_SKUS)} AS sku_idx) AS p
        ORDER BY 1"""
        totals = f"""
        UPDATE invoices i SET total_cents = sums.total
        FROM (SELECT invoice_id, sum(quantity::bigint * unit_cents) AS total
              FROM invoice_line_items WHERE invoice_id IN ({whale_invoices}) GROUP BY invoice_id) sums
        WHERE i.id = sums.invoice_id"""
        payment_methods = f"""
        INSERT INTO payment_methods (id, user_id, last_four, provider_token) OVERRIDING SYSTEM VALUE
        SELECT first.id + row_number() OVER (ORDER BY u.id), u.id,
               lpad(({h("u.id * 4 + 1", 61)} % 10000)::text, 4, '0'),
               'tok_' || substr(md5('{self.spec.seed}:pm:' || u.id || ':1'), 1, 24)
        FROM (SELECT coalesce(max(id), 0) AS id FROM payment_methods) first
        CROSS JOIN users u WHERE u.organization_id = {whale}
        ORDER BY 1"""
        key = f"{whale}::bigint * 10000000 + g"
        ip_tail = (
            f"'.' || ({h(key, 76)} % 256) || '.' || ({h(key, 77)} % 256) || '.' || (1 + {h(key, 78)} % 254)"
        )
        audit_events = f"""
        INSERT INTO audit_events (id, organization_id, occurred_at, payload) OVERRIDING SYSTEM VALUE
        WITH bounds AS (
            SELECT (SELECT coalesce(max(id), 0) FROM audit_events) AS first_event,
                   (SELECT min(id) FROM users WHERE organization_id = {whale}) AS first_user,
                   (SELECT min(id) FROM ({whale_invoices}) i) AS first_invoice
        ),
        base AS (
            SELECT g, b.first_event,
                   {h(key, 70)} % ({WHALE_AUDIT_DAYS} * 86400) AS age_secs,
                   b.first_user + {h(key, 71)} % {sizes.users} AS user_id,
                   {h(key, 72)} % {n_types} AS type_idx,
                   {h(key, 73)} % 100 AS actor_mode,
                   {h(key, 74)} % 100 AS notes_mode,
                   b.first_invoice + {h(key, 80)} % {sizes.invoices} AS any_invoice,
                   7 + {h(key, 82)} % 39 AS padding_words,
                   '10' || {ip_tail} AS ip,
                   md5('{self.spec.seed}:req:' || ({key})) AS request_id
            FROM bounds b CROSS JOIN generate_series(1, {sizes.audit_events}) AS g
        ),
        enriched AS (
            SELECT base.*, u.email, u.full_name, {_lit(_WHALE_NAME)} AS legal_name,
                   ({_text_array(_EVENT_TYPES)})[1 + type_idx] AS event_type,
                   CASE WHEN type_idx < {_INVOICE_EVENT_TYPES} THEN any_invoice END AS invoice_id,
                   notes_mode % 5 AS nk
            FROM base JOIN users u ON u.id = base.user_id
        )
        SELECT first_event + g, {whale}, now() - make_interval(secs => age_secs),
               jsonb_build_object(
                   'type', event_type,
                   'actor', CASE WHEN actor_mode < 90
                                 THEN jsonb_build_object('email', email, 'user_id', user_id, 'ip', ip)
                                 ELSE jsonb_build_object('user_id', user_id, 'ip', ip) END,
                   'request', jsonb_build_object('id', request_id,
                       'user_agent', {self.pick(_text_array(_USER_AGENTS), len(_USER_AGENTS), "g", 81)}),
                   'changes', repeat(request_id || ' ', padding_words::int)
               )
               || CASE WHEN notes_mode < 60
                       THEN jsonb_build_object('internal', jsonb_build_object('support_notes', {notes_case}))
                       ELSE jsonb_build_object() END
               || CASE WHEN invoice_id IS NOT NULL
                       THEN jsonb_build_object('invoice_id', invoice_id)
                       ELSE jsonb_build_object() END
        FROM enriched
        ORDER BY 1"""
        return [
            organization,
            users,
            subscriptions,
            invoices,
            line_items,
            totals,
            payment_methods,
            audit_events,
        ]


# --------------------------------------------------------------------------------------------
# build
# --------------------------------------------------------------------------------------------


def _existing_tables(conn: psycopg.Connection[TupleRow]) -> set[str]:
    rows = conn.execute(
        """SELECT c.relname FROM pg_class c
           WHERE c.relnamespace = current_schema()::regnamespace
             AND c.relkind IN ('r', 'p') AND c.relname = ANY(%s)""",
        [list(TABLES)],
    ).fetchall()
    return {str(r[0]) for r in rows}


def _recorded_spec(conn: psycopg.Connection[TupleRow]) -> str | None:
    row = conn.execute("SELECT obj_description('organizations'::regclass, 'pg_class')").fetchone()
    return None if row is None or row[0] is None else str(row[0])


def _same_spec(recorded: str | None, spec: SourceSpec) -> bool:
    if recorded is None:
        return False
    try:
        return bool(json.loads(recorded) == json.loads(spec.to_json()))
    except ValueError:
        return False


def _table_list() -> sql.Composed:
    return sql.SQL(", ").join(sql.Identifier(t) for t in reversed(TABLES))


def _generate(conn: psycopg.Connection[TupleRow], spec: SourceSpec) -> None:
    tables_sql, indexes_sql = load_schema_sql()
    conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(_table_list()))
    conn.execute(tables_sql.encode())
    for statement in _Sql(spec).statements():
        conn.execute(statement.encode())
    for table in TABLES:
        conn.execute(
            sql.SQL(
                "SELECT setval(pg_get_serial_sequence({t}, 'id'), coalesce(max(id), 1), max(id) IS NOT NULL)"
                " FROM {i}"
            ).format(t=sql.Literal(table), i=sql.Identifier(table))
        )
    conn.execute(indexes_sql.encode())
    conn.execute(sql.SQL("COMMENT ON TABLE organizations IS {}").format(sql.Literal(spec.to_json())))
    conn.execute(sql.SQL("ANALYZE {}").format(_table_list()))


def _summarize(conn: psycopg.Connection[TupleRow], spec: SourceSpec, generated: bool) -> SourceSummary:
    counts: dict[str, int] = {}
    for table in TABLES:
        row = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))).fetchone()
        assert row is not None
        counts[table] = int(row[0])
    facts = conn.execute(
        """SELECT
             (SELECT count(*) FROM invoices i JOIN subscriptions s ON s.id = i.subscription_id
               WHERE s.organization_id = %(org)s),
             (SELECT count(*) FROM audit_events WHERE organization_id = %(org)s),
             (SELECT count(*) FROM audit_events
               WHERE organization_id = %(org)s AND occurred_at >= now() - interval '90 days')""",
        {"org": DEMO_ORGANIZATION_ID},
    ).fetchone()
    assert facts is not None
    planted = conn.execute(_Sql(spec).planted_invoices().encode()).fetchall()
    return SourceSummary(
        spec=spec,
        row_counts=counts,
        demo_organization_id=DEMO_ORGANIZATION_ID,
        demo_invoice_count=int(facts[0]),
        demo_audit_event_count=int(facts[1]),
        demo_recent_audit_event_count=int(facts[2]),
        planted_invoice_ids=tuple(sorted(int(r[0]) for r in planted)),
        generated=generated,
    )


def build_source(conninfo: str, spec: SourceSpec = SourceSpec(), *, force: bool = False) -> SourceSummary:
    """Create and fill the seven tables in the current schema of ``conninfo``, unless already there.

    If all seven tables exist and ``COMMENT ON TABLE organizations`` records the same spec (and
    generator version), nothing is regenerated. Otherwise (another spec, a partial schema, or
    ``force``) the tables are dropped and rebuilt and analyzed in one transaction, then vacuumed.
    Concurrent callers on the same database serialize on an advisory lock.
    """
    with psycopg.connect(conninfo, autocommit=False) as conn:
        schema_row = conn.execute("SELECT current_schema()").fetchone()
        if schema_row is None or schema_row[0] is None:
            raise RuntimeError("no schema to build the source in: the search_path has no existing schema")
        conn.execute(sql.SQL("SET LOCAL search_path TO {}").format(sql.Identifier(str(schema_row[0]))))
        conn.execute("SELECT pg_advisory_xact_lock(%s)", [_ADVISORY_LOCK_KEY])
        existing = _existing_tables(conn)
        up_to_date = not force and existing == set(TABLES) and _same_spec(_recorded_spec(conn), spec)
        if up_to_date:
            summary = _summarize(conn, spec, generated=False)
            conn.commit()
            return summary
        _generate(conn, spec)
        summary = _summarize(conn, spec, generated=True)
        conn.commit()
        # Statistics were gathered inside the transaction; now clear the dead tuples left by the
        # totals UPDATE and set the visibility map (VACUUM cannot run in a transaction block).
        conn.autocommit = True
        conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(str(schema_row[0]))))
        conn.execute(sql.SQL("VACUUM {}").format(_table_list()))
    return summary
