"""The tenant key and the root predicates it is bound into. Pure functions, no database."""

from __future__ import annotations

import pytest
from psycopg import sql

from repro_pipeline.engine.errors import TenantError
from repro_pipeline.engine.subset.predicate import PLACEHOLDER, Predicate, check_predicate
from repro_pipeline.engine.subset.tenant import parse_organization_id

# --- parse_organization_id --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("451", 451),
        (451, 451),
        ("1", 1),
        ("9223372036854775807", 2**63 - 1),  # the largest bigint
        (2**63 - 1, 2**63 - 1),
    ],
    ids=["text", "int", "one", "max-bigint-text", "max-bigint-int"],
)
def test_valid_organization_id_is_accepted(key: object, expected: int) -> None:
    assert parse_organization_id(key) == expected


INVALID_KEYS = [
    ("zero", "0"),
    ("negative", "-5"),
    ("plus-sign", "+451"),
    ("slug", "abc"),
    ("trailing-space", "451 "),
    ("leading-space", " 451"),
    ("trailing-newline", "451\n"),
    ("leading-zero", "0451"),
    ("decimal", "4.5"),
    ("exponent", "1e3"),
    ("empty", ""),
    ("bigint-overflow", "9223372036854775808"),
    ("twenty-digits", "10000000000000000000"),
    ("sql-injection", "451;DROP TABLE x"),
    ("full-width-digits", "\uff14\uff15\uff11"),  # FULLWIDTH DIGIT FOUR, FIVE, ONE
    ("arabic-indic-digits", "\u0664\u0665\u0661"),  # ARABIC-INDIC DIGIT FOUR, FIVE, ONE
    ("underscore-separator", "4_51"),
    ("quoted", "'451'"),
    ("int-zero", 0),
    ("int-negative", -5),
    ("int-overflow", 2**63),
    ("float", 451.0),
    ("bool", True),
    ("none", None),
]


@pytest.mark.parametrize(
    "key", [key for _, key in INVALID_KEYS], ids=[case_id for case_id, _ in INVALID_KEYS]
)
def test_invalid_organization_id_is_refused_with_a_quoted_value_and_a_remedy(key: object) -> None:
    with pytest.raises(TenantError) as raised:
        parse_organization_id(key)
    error = raised.value
    text = key if isinstance(key, str) else str(key)
    assert error.problem == f"organization id {text!r} is not a positive integer"
    assert "digits only" in error.remedy
    assert "for example 451" in error.remedy
    assert "what to do:" in str(error)
    assert error.exit_code == 2


def test_very_long_invalid_organization_id_is_shortened_in_the_message() -> None:
    key = "451" + "x" * 500
    with pytest.raises(TenantError) as raised:
        parse_organization_id(key)
    assert key not in str(raised.value)
    assert repr(key[:40] + "...") in str(raised.value)


# --- Predicate.uses_placeholder --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "id = :organization_id",
        "id=:organization_id",
        "organization_id = :organization_id AND occurred_at >= now() - interval '90 days'",
        "(id = :organization_id) OR (parent_id = :organization_id)",
        "id = :organization_id::bigint",
        "note = 'x' AND id = :organization_id",
        "id = :organization_id -- the tenant\n",
    ],
)
def test_placeholder_outside_quotes_and_comments_is_detected(text: str) -> None:
    assert Predicate(text).uses_placeholder


@pytest.mark.parametrize(
    "text",
    [
        "id = 451",
        "organization_id = 451 AND occurred_at >= now() - interval '90 days'",
        "note = ':organization_id'",
        "note = 'it''s :organization_id'",
        '":organization_id" = 1',
        "id = 451 -- :organization_id",
        "id = 451 /* :organization_id */",
        "id = 451 /* multi\nline :organization_id */",
        "note = $$:organization_id$$",
        "note = $tag$:organization_id$tag$",
        "x::int = 451",
        "x::organization_id = 451",
        "id = :organization_idx",
        "id = :organization_id_2",
        "id = organization_id",
    ],
)
def test_text_that_is_not_the_placeholder_is_not_detected(text: str) -> None:
    assert not Predicate(text).uses_placeholder


# --- Predicate.as_sql -------------------------------------------------------------------------------------


def _rendered(text: str) -> str:
    composed = Predicate(text).as_sql()
    assert isinstance(composed, sql.Composed)
    return composed.as_string(None)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("id = :organization_id", "(id = %(organization_id)s\n)"),
        ("id = 451", "(id = 451\n)"),
        (
            "organization_id = :organization_id AND occurred_at >= now() - interval '90 days'",
            "(organization_id = %(organization_id)s AND occurred_at >= now() - interval '90 days'\n)",
        ),
        (
            "(id = :organization_id) OR (parent_id = :organization_id)",
            "((id = %(organization_id)s) OR (parent_id = %(organization_id)s)\n)",
        ),
        ("id = :organization_id::bigint", "(id = %(organization_id)s::bigint\n)"),
        ("x::int = 451", "(x::int = 451\n)"),
    ],
    ids=["placeholder", "literal", "guide-audit-events", "twice", "placeholder-with-cast", "cast"],
)
def test_as_sql_binds_the_placeholder_by_name(text: str, expected: str) -> None:
    assert _rendered(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("code LIKE 'ACME%'", "(code LIKE 'ACME%%'\n)"),
        ("id % 2 = 0", "(id %% 2 = 0\n)"),
        ('"50%" > 1', '("50%%" > 1\n)'),
        ("id = 1 -- 100% sure\n", "(id = 1 -- 100%% sure\n\n)"),
        ("note = $$%s$$ AND id = :organization_id", "(note = $$%%s$$ AND id = %(organization_id)s\n)"),
        ("note = '%(organization_id)s'", "(note = '%%(organization_id)s'\n)"),
    ],
    ids=["like-literal", "modulo", "quoted-identifier", "comment", "dollar-quoted", "fake-placeholder"],
)
def test_as_sql_escapes_every_percent_sign(text: str, expected: str) -> None:
    assert _rendered(text) == expected


@pytest.mark.parametrize(
    "text",
    ["note = ':organization_id'", "id = 451 /* :organization_id */", "note = $$:organization_id$$"],
)
def test_as_sql_leaves_quoted_and_commented_placeholder_text_alone(text: str) -> None:
    rendered = _rendered(text)
    assert rendered == f"({text}\n)"
    assert f"%({PLACEHOLDER})s" not in rendered


def test_as_sql_output_only_takes_the_organization_id_parameter() -> None:
    rendered = _rendered("code LIKE '%x%' AND id = :organization_id AND pct % 3 = 1")
    # Every '%' is either doubled or starts the one named placeholder.
    assert rendered.replace("%%", "").replace(f"%({PLACEHOLDER})s", "").count("%") == 0


def test_trailing_line_comment_does_not_swallow_the_closing_parenthesis() -> None:
    rendered = _rendered("id = :organization_id -- Acme only")
    assert ")" not in rendered.splitlines()[-1].partition("--")[2]


# --- Predicate.without_quoted_text --------------------------------------------------------------------------------


def _outside_quotes(text: str) -> str:
    return Predicate(text).without_quoted_text()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("id = 451", "id = 451"),
        ("note = 'a;b' AND id = 1", "note =  AND id = 1"),
        ('"odd;name" = 1', " = 1"),
        ("note = 'it''s; fine'", "note = "),
        ("note = 'say \"hi;\"'", "note = "),
        ('note = "it\'s;" ', "note =  "),
    ],
    ids=[
        "no-quotes",
        "string-literal",
        "quoted-identifier",
        "doubled-quote",
        "double-inside-single",
        "single-inside-double",
    ],
)
def test_outside_quotes_strips_quoted_text(text: str, expected: str) -> None:
    assert _outside_quotes(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "note = 'a;b'",
        "organization_id = :organization_id AND note <> ';'",
        '";" = 1',
        "note = 'it''s; fine'",
    ],
)
def test_semicolon_inside_a_quoted_literal_is_allowed(text: str) -> None:
    assert ";" not in _outside_quotes(text)


@pytest.mark.parametrize(
    "text", ["id = 451; DROP TABLE users", "id = 451 ;", "note = 'x'; DELETE FROM users"]
)
def test_semicolon_outside_quotes_is_kept_so_the_predicate_is_refused(text: str) -> None:
    assert ";" in _outside_quotes(text)


def test_apostrophe_in_a_comment_does_not_hide_a_semicolon() -> None:
    text = "id = :organization_id -- don't copy other tenants\n; DELETE FROM users --'"
    assert ";" in _outside_quotes(text)


# --- check_predicate: one boolean expression, decided by PostgreSQL's parser (pglast) -----------------------


@pytest.mark.parametrize(
    "text",
    [
        "id = :organization_id",
        "organization_id = :organization_id AND occurred_at >= now() - interval '90 days'",
        "id = 451",
        "note = 'a;b' AND x::int = 1",
        "id = :organization_id -- the tenant",
        "id IN (SELECT organization_id FROM users WHERE role = 'owner')",
        "date_trunc('day', occurred_at) >= date_trunc('day', now()) AND lower(name) <> 'pg_sleep'",
    ],
)
def test_check_predicate_accepts_one_boolean_expression(text: str) -> None:
    check_predicate(text)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("id = 451; DROP TABLE users", "';' is not allowed"),
        ("id = 1 -- note\n; DELETE FROM users", "';' is not allowed"),
        ("id = 1) OR (1 = 1", "not a valid SQL expression: syntax error at or near \")\": ') OR (1 = 1'"),
        ("id = 1 ORDER BY 1", "found sortClause"),
        ("id = 1 LIMIT 1", "found limitCount"),
        ("id = 1 UNION SELECT 2", "only a boolean expression is allowed"),
        (
            "id IN (WITH d AS (DELETE FROM users RETURNING id) SELECT id FROM d)",
            "data-modifying statement (DeleteStmt)",
        ),
        ("SELECT 1", "not a valid SQL expression"),
        ("pg_sleep(30) IS NOT NULL", "pg_sleep() is not allowed"),
        ("id = :organization_id AND pg_terminate_backend(4242)", "pg_terminate_backend() is not allowed"),
        ("length(pg_catalog.pg_read_file('/etc/passwd')) > 0", "pg_read_file() is not allowed"),
        (
            "id IN (SELECT organization_id FROM users WHERE set_config('a.b', 'c', false) = 'c')",
            "set_config()",
        ),
        ("id = nextval('users_id_seq')", "nextval() is not allowed"),
        ("lo_import('/etc/hosts') > 0", "lo_import() is not allowed"),
        ("EXISTS (SELECT 1 FROM dblink('host=x', 'select 1') AS t(a int))", "dblink() is not allowed"),
        ("query_to_xml('select pg_sleep(9)', true, true, '') IS NOT NULL", "query_to_xml() is not allowed"),
    ],
)
def test_check_predicate_refuses_anything_else_naming_the_offending_text(text: str, says: str) -> None:
    with pytest.raises(ValueError) as raised:
        check_predicate(text)
    assert says in str(raised.value)
