"""The schema comparison: what never states a schema is no difference, anything else is, and the diff
stays bounded; a repro database pg_dump cannot read is an error that shows no password; owners are the
target's, not the source's."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from repro_pipeline.embedded.stack import Stack
from repro_pipeline.engine.config import load_config
from repro_pipeline.engine.errors import TargetError
from repro_pipeline.engine.load.loader import load_repro
from repro_pipeline.engine.load.plan import plan_subset
from repro_pipeline.engine.load.schema_dump import SchemaScripts, dump_database_schema, find_dump_tools
from repro_pipeline.engine.load.schema_entries import schema_entries
from repro_pipeline.engine.secrets import Secret
from repro_pipeline.engine.source.catalog import TableName
from repro_pipeline.engine.source.snapshot import open_source_snapshot
from repro_pipeline.engine.verify.checks import schema_matches_source
from repro_pipeline.engine.verify.schema import DIFF_LINES_SHOWN, compare_schemas
from repro_pipeline_tests.engine.load.databases import empty_target, source_database

SOURCE_PRE_DATA = """--
-- PostgreSQL database dump
--

\\restrict 4f2HkzQ1
-- Dumped from database version 15.10
-- Dumped by pg_dump version 18.1

SET statement_timeout = 0;

--
-- Name: notes_id_seq; Type: SEQUENCE; Schema: public; Owner: app
--

CREATE SEQUENCE public.notes_id_seq;

SET default_table_access_method = heap;

--
-- Name: notes; Type: TABLE; Schema: public; Owner: app
--

CREATE TABLE public.notes (
    id integer NOT NULL,
    body text DEFAULT ''::text
);

--
-- Name: tags; Type: TABLE; Schema: public; Owner: app
--

CREATE TABLE public.tags (
    id integer NOT NULL
);

\\unrestrict 4f2HkzQ1
"""
NOTES = SOURCE_PRE_DATA[
    SOURCE_PRE_DATA.index("--\n-- Name: notes;") : SOURCE_PRE_DATA.index("--\n-- Name: tags;")
]
SEQUENCE = SOURCE_PRE_DATA[
    SOURCE_PRE_DATA.index("--\n-- Name: notes_id_seq;") : SOURCE_PRE_DATA.index("SET default_table")
]


def test_comments_blank_lines_and_restrict_keys_are_no_difference() -> None:
    target = (
        SOURCE_PRE_DATA.replace("4f2HkzQ1", "Zq81LmXw")
        .replace("15.10", "15.12")
        .replace("Owner: app", "Owner: postgres")
        .replace("\n\n", "\n")
    )
    comparison = compare_schemas(SchemaScripts(SOURCE_PRE_DATA, ""), SchemaScripts(target, ""))
    assert (comparison.differing_lines, comparison.diff) == (0, "")
    assert comparison.lines_compared == 9


def test_entries_in_another_order_with_the_settings_moved_are_no_difference() -> None:
    """pg_dump can order entries otherwise on the target (see the module), and writes a setting before the
    first entry that needs it."""
    reordered = (
        SOURCE_PRE_DATA.replace(NOTES, "")
        .replace(SEQUENCE, "")
        .replace("SET default_table_access_method = heap;\n", "")
        .replace(
            "\\unrestrict", "SET default_table_access_method = heap;\n" + NOTES + SEQUENCE + "\\unrestrict"
        )
    )
    assert reordered.index("Name: tags;") < reordered.index("Name: notes;") < reordered.index("notes_id_seq;")
    comparison = compare_schemas(SchemaScripts(SOURCE_PRE_DATA, ""), SchemaScripts(reordered, ""))
    assert (comparison.differing_lines, comparison.diff) == (0, "")


def test_a_changed_line_is_a_difference_shown_in_a_unified_diff() -> None:
    target = SOURCE_PRE_DATA.replace("DEFAULT ''::text", "DEFAULT 'x'::text")
    extra_index = "-- Name: notes_body; Type: INDEX; Schema: public; Owner: app\n"
    extra_index += "CREATE INDEX notes_body ON public.notes USING btree (body);\n"
    comparison = compare_schemas(SchemaScripts(SOURCE_PRE_DATA, ""), SchemaScripts(target, extra_index))
    assert comparison.differing_lines == 3
    lines = comparison.diff.splitlines()
    assert lines[:2] == ["--- source pre-data (as loaded)", "+++ repro database pre-data"]
    assert "-    body text DEFAULT ''::text" in lines and "+    body text DEFAULT 'x'::text" in lines
    assert "+++ repro database post-data" in lines and f"+{extra_index.splitlines()[1]}" in lines


def test_a_long_diff_is_cut_and_says_how_much_is_left_out() -> None:
    indexes = "".join(
        f"-- Name: i{n:03}; Type: INDEX; Schema: public; Owner: app\nCREATE INDEX i{n:03} ON public.notes (id);\n"
        for n in range(500)
    )
    comparison = compare_schemas(SchemaScripts(SOURCE_PRE_DATA, ""), SchemaScripts(SOURCE_PRE_DATA, indexes))
    assert comparison.differing_lines == 500
    lines = comparison.diff.splitlines()
    assert len(lines) == DIFF_LINES_SHOWN + 1
    assert lines[-1] == f"... {500 + 3 - DIFF_LINES_SHOWN} more lines of diff"  # 3 lines of header


def test_a_repro_database_pg_dump_cannot_read_is_a_target_error_without_the_password(stack: Stack) -> None:
    with psycopg.connect(stack.target_admin_dsn) as conn:
        major = conn.info.server_version // 10000
    tools = find_dump_tools(major, major)
    wrong = make_conninfo(stack.target_admin_dsn, password="not-the-password-1b9f")
    with pytest.raises(TargetError) as refused:
        dump_database_schema(wrong, tools)
    message = str(refused.value)
    assert "pg_dump could not read the repro database's schema" in message
    assert "not-the-password-1b9f" not in message
    assert str(conninfo_to_dict(stack.target_admin_dsn)["password"]) not in message


OWNED_SCHEMA = """
CREATE TABLE organizations (id bigint PRIMARY KEY, name text NOT NULL);
CREATE TABLE notes (id bigint PRIMARY KEY, organization_id bigint REFERENCES organizations, body text);
ALTER TABLE organizations OWNER TO repro_test_app_owner;
ALTER TABLE notes OWNER TO repro_test_app_owner;
INSERT INTO organizations VALUES (1, 'one'), (2, 'two');
INSERT INTO notes VALUES (1, 1, 'a'), (2, 2, 'b');
"""


def test_tables_of_an_owner_the_target_lacks_are_loaded_as_the_loads_role_and_match(
    stack: Stack, tmp_path: Path
) -> None:
    """An archive keeps the source's owners whatever pg_dump is told: restored as they are, the load failed
    on ``role "repro_test_app_owner" does not exist`` (roles are the server's, and the target has none)."""
    with psycopg.connect(stack.primary_dsn, autocommit=True) as admin:
        admin.execute("DROP ROLE IF EXISTS repro_test_app_owner")
        admin.execute("CREATE ROLE repro_test_app_owner")
    try:
        with (
            source_database(stack, "owned_source", OWNED_SCHEMA) as source,
            empty_target(stack, "owned") as target,
        ):
            (tmp_path / "mask-rules.yaml").write_text('version: "1.0"\ntables: {}\n')
            (tmp_path / "commercial-extensions.yaml").write_text(
                'version: "1.0"\nsubset:\n  - table: public.organizations\n    predicate: "id = :organization_id"\n'
            )
            config = load_config(tmp_path / "mask-rules.yaml", tmp_path / "commercial-extensions.yaml")
            with open_source_snapshot(source) as snapshot:
                plan = plan_subset(snapshot, config, Secret(secrets.token_hex(32)), 1)
                report = load_repro(
                    snapshot, target, plan, run_id="owned", started_at=datetime.now(UTC), batch_size=100
                )
            assert report.loaded_rows == {
                TableName("public", "organizations"): 1,
                TableName("public", "notes"): 1,
            }
            with psycopg.connect(target) as conn:
                owners = conn.execute(
                    "SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'public'"
                ).fetchall()
            assert owners == [(conninfo_to_dict(stack.target_admin_dsn)["user"],)]
            verdict = schema_matches_source(report.schema, target)
            assert verdict.passed, verdict.found["diff"]
            assert "OWNER TO" not in report.schema.scripts.pre_data
    finally:
        with psycopg.connect(stack.primary_dsn, autocommit=True) as admin:
            admin.execute("DROP ROLE IF EXISTS repro_test_app_owner")


def test_schema_entries_are_each_entrys_statements_by_its_name_without_settings() -> None:
    entries = schema_entries(SOURCE_PRE_DATA)
    assert list(entries) == [
        "notes_id_seq; Type: SEQUENCE; Schema: public",
        "notes; Type: TABLE; Schema: public",
        "tags; Type: TABLE; Schema: public",
    ]
    assert entries["notes_id_seq; Type: SEQUENCE; Schema: public"] == ["CREATE SEQUENCE public.notes_id_seq;"]
    assert entries["notes; Type: TABLE; Schema: public"][0] == "CREATE TABLE public.notes ("
