"""Masked outputs on a real server: the plan reads a real catalog, and the target's unique indexes and column
types accept 100,000 masked rows written with COPY."""

from __future__ import annotations

import secrets
import textwrap
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from repro_pipeline.embedded.stack import Stack
from repro_pipeline.engine.config import ReproConfig, load_config
from repro_pipeline.engine.dsn import with_database
from repro_pipeline.engine.errors import ConfigError
from repro_pipeline.engine.masking.plan import build_mask_plan
from repro_pipeline.engine.secrets import Secret
from repro_pipeline.engine.source.catalog import TableName, read_catalog

ROWS = 100_000
SCHEMA = """
CREATE TABLE public.people (
    id bigint PRIMARY KEY,
    email text NOT NULL UNIQUE,
    name character varying(60) NOT NULL,
    handle character varying(40),
    code character(4) NOT NULL,
    token character varying(32) NOT NULL,
    ref uuid
);
CREATE UNIQUE INDEX people_name_key ON public.people (lower(name));
CREATE UNIQUE INDEX people_token_key ON public.people (token);
"""
RULES = """
version: "1.0"
tables:
  public.people:
    columns:
      email: { action: fake, provider: email }
      name: { action: fake, provider: full_name }
      handle: { action: fake, provider: username, normalize: lower }
      code: { action: regex_mask, pattern: '[0-9]', replace: '#' }
      token: { action: hash }
      ref: { action: fake, provider: uuid }
"""
COLUMNS = ("id", "email", "name", "handle", "code", "token", "ref")


def _original(number: int) -> list[str | None]:
    return [
        str(number),
        f"Person.{number}@Acme.com",
        f"Person Number {number}",
        f"person_{number}" if number % 10 else None,
        f"A{number % 1000:03d}",
        f"tok_{number:08d}",
        f"00000000-0000-4000-8000-{number:012d}",
    ]


def _load(tmp_path: Path, rules: str) -> ReproConfig:
    (tmp_path / "mask-rules.yaml").write_text(textwrap.dedent(rules).lstrip("\n"))
    (tmp_path / "commercial-extensions.yaml").write_text('version: "1.0"\n')
    return load_config(tmp_path / "mask-rules.yaml", tmp_path / "commercial-extensions.yaml")


def test_masked_values_of_distinct_inputs_pass_the_targets_unique_indexes_and_types(
    stack: Stack, tmp_path: Path
) -> None:
    database = f"masking_target_{secrets.token_hex(4)}"
    with psycopg.connect(stack.target_admin_dsn, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
    try:
        dsn = with_database(stack.target_admin_dsn, database)
        with psycopg.connect(dsn) as conn:
            conn.execute(SCHEMA)
            conn.commit()
            catalog = read_catalog(conn)
            salt = Secret(secrets.token_hex(32))
            masking = build_mask_plan(_load(tmp_path, RULES), catalog, salt).for_table(
                TableName("public", "people")
            )
            described = {column.column: column.action for column in masking.columns}
            assert described == {
                "email": "fake:email (uniqueness tag)",
                "name": "fake:full_name (uniqueness tag)",  # read from the lower(name) index's expression
                "handle": "fake:username (normalize lower)",
                "code": "regex_mask",
                "token": "hash (first 32 hex)",
                "ref": "fake:uuid",
            }
            originals = [_original(number) for number in range(ROWS)]
            with conn.cursor().copy(
                sql.SQL("COPY public.people ({}) FROM STDIN").format(
                    sql.SQL(", ").join(map(sql.Identifier, COLUMNS))
                )
            ) as copy:
                for row in originals:
                    copy.write_row(masking.mask_row(row))
            conn.commit()

            counts = conn.execute(
                """
                SELECT count(*), count(DISTINCT email), count(DISTINCT lower(name)), count(DISTINCT token),
                       count(DISTINCT ref), max(length(name)), max(length(handle)), min(length(token)),
                       count(*) FILTER (WHERE code !~ '^A###$'), count(*) FILTER (WHERE handle IS NULL),
                       count(*) FILTER (WHERE email !~ '^[a-z]+\\.[a-z]+[0-9]*\\+[a-z2-7]{16}@example\\.(com|net|org)$')
                FROM public.people
                """
            ).fetchone()
            assert counts == (ROWS, ROWS, ROWS, ROWS, ROWS, counts[5], counts[6], 32, 0, ROWS // 10, 0)
            assert counts[5] <= 60 and counts[6] <= 40
            leaked = conn.execute(
                "SELECT count(*) FROM public.people WHERE email ILIKE '%@acme.com' OR email ILIKE 'person.%' OR name LIKE 'Person Number%' "
                "OR handle LIKE 'person\\_%' OR token LIKE 'tok\\_%'"
            ).fetchone()
            assert leaked == (0,)

            # The same catalog refuses what could not fit or could not stay unique.
            for rule, says in [
                (
                    "email: { action: static, value: x }",
                    "action static on a unique column (UNIQUE people_email_key)",
                ),
                ("code: { action: hash }", "hash needs at least 16 hex digits"),
                ("handle: { action: fake, provider: address }", "is character varying(40)"),
                (
                    "email: { action: fake, provider: email, normalize: lower }",
                    "normalize: lower on a unique column whose uniqueness is case-sensitive",
                ),
            ]:
                config = _load(tmp_path, f"{RULES.split('      email:')[0]}      {rule}\n")
                with pytest.raises(
                    ConfigError, match=r"mask-rules\.yaml:5: tables\.public\.people\.columns\."
                ) as raised:
                    build_mask_plan(config, catalog, salt)
                assert says in str(raised.value)
    finally:
        with psycopg.connect(stack.target_admin_dsn, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database)))


def test_a_lower_index_makes_normalize_acceptable_on_a_real_catalog(stack: Stack, tmp_path: Path) -> None:
    database = f"masking_target_{secrets.token_hex(4)}"
    with psycopg.connect(stack.target_admin_dsn, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
    try:
        with psycopg.connect(with_database(stack.target_admin_dsn, database)) as conn:
            conn.execute(SCHEMA)
            catalog = read_catalog(conn)
        config = _load(
            tmp_path,
            f"{RULES.split('      email:')[0]}      name: {{ action: fake, provider: full_name, normalize: lower }}\n",
        )
        masking = build_mask_plan(config, catalog, Secret(secrets.token_hex(32))).for_table(
            TableName("public", "people")
        )
        position = [column.name for column in masking.table.copy_columns].index("name")
        masker = masking.maskers[position]
        assert masker("Jane Doe") == masker("JANE DOE")
    finally:
        with psycopg.connect(stack.target_admin_dsn, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database)))
