"""Autovacuum held off the load's tables and let in again, on tables of every kind and setting: each table and
TOAST table's own options come back as they were."""

from __future__ import annotations

import psycopg

from repro_pipeline.embedded.stack import Stack
from repro_pipeline.engine.load.autovacuum import hold_off_autovacuum, let_autovacuum_in
from repro_pipeline.engine.source.catalog import TableName
from repro_pipeline_tests.engine.load.databases import empty_target, storage_options

SCHEMA = """
CREATE TABLE plain (id int PRIMARY KEY, note text);
CREATE TABLE own_setting (id int, note text) WITH (autovacuum_enabled = true, fillfactor = 70);
CREATE TABLE toast_setting (id int, note text) WITH (toast.autovacuum_enabled = false);
CREATE TABLE no_toast (id int);
CREATE UNLOGGED TABLE unlogged (id int, note text);
CREATE TABLE parent (id int, note text) PARTITION BY RANGE (id);
CREATE TABLE part PARTITION OF parent FOR VALUES FROM (0) TO (10);
CREATE MATERIALIZED VIEW summary AS SELECT count(*) FROM plain;
CREATE SCHEMA "Odd Schema";
CREATE TABLE "Odd Schema"."My Table" (id int, note text);
"""
TABLES = [
    TableName("public", name)
    for name in ("plain", "own_setting", "toast_setting", "no_toast", "unlogged", "parent", "part", "summary")
] + [TableName("Odd Schema", "My Table")]
SCHEMAS = ("public", "Odd Schema")


def test_what_the_source_does_not_set_is_held_off_then_given_its_default_back(stack: Stack) -> None:
    with empty_target(stack, "autovacuum_test") as target_dsn, psycopg.connect(target_dsn) as conn:
        conn.execute(SCHEMA)
        before = storage_options(conn, SCHEMAS)
        held = hold_off_autovacuum(conn, TABLES)
        during = storage_options(conn, SCHEMAS)
        let_autovacuum_in(conn, held)
        after = storage_options(conn, SCHEMAS)
    assert after == before
    off = ["autovacuum_enabled=false"]
    assert during["public.plain"] == (off, off)
    assert during["public.own_setting"] == (["autovacuum_enabled=true", "fillfactor=70"], off)
    assert during["public.toast_setting"] == (off, ["autovacuum_enabled=false"])
    assert during["public.no_toast"] == (off, None)
    assert during["public.unlogged"] == (off, off)
    assert during["public.part"] == (off, off)
    assert during["public.parent"] == (None, None)  # a partitioned table holds no rows
    assert during["public.summary"] == before["public.summary"]  # not a table the load writes
    assert during['"Odd Schema"."My Table"'] == (off, off)
