"""What a dropped repro database left behind, made for real on the target server and in a secret folder,
removed; what repro_pipeline did not make, or whose database is alive, stays."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from repro_pipeline.embedded.stack import Stack
from repro_pipeline.engine.dsn import with_database
from repro_pipeline.engine.repro_databases import lifecycle, logins
from repro_pipeline.engine.repro_databases.leftovers import remove_leftovers
from repro_pipeline.engine.repro_databases.secret_sink import FileSecretSink
from repro_pipeline.engine.secrets import Secret
from repro_pipeline_tests.repro_databases import new_repro_database

Admin = psycopg.Connection[tuple[object, ...]]
# Shaped like a login of ours whose database is gone, but made by someone else: without our comment, and with
# our comment naming another database.
FOREIGN_ROLES = {
    "repro_org451_0badc0de_reader": None,
    "repro_org451_0badc0df_reader": json.dumps(
        {"created_by": "repro_pipeline", "database": "repro_org451_0badc0de"}
    ),
}


@pytest.fixture
def foreign_roles(target_admin: Admin) -> Iterator[list[str]]:
    for role, comment in FOREIGN_ROLES.items():
        target_admin.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
        if comment is not None:
            target_admin.execute(
                sql.SQL("COMMENT ON ROLE {} IS {}").format(sql.Identifier(role), sql.Literal(comment))
            )
    yield list(FOREIGN_ROLES)
    for role in FOREIGN_ROLES:
        target_admin.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


def _handed_off(target_admin: Admin, stack: Stack, sink: FileSecretSink) -> lifecycle.ReproDatabase:
    """A repro database with its login, and the login's DSN kept in ``sink``."""
    database = new_repro_database(target_admin, now=datetime.now(UTC))
    target_dsn = with_database(stack.target_admin_dsn, database.name)
    with psycopg.connect(target_dsn, autocommit=True) as repro:
        login = logins.issue_login(target_admin, repro, database.name, database.expires_at)
    sink.store(database.name, login.dsn(target_dsn))
    return database


def _roles(target_admin: Admin) -> set[str]:
    return {str(name) for (name,) in target_admin.execute("SELECT rolname FROM pg_roles")}


def test_the_login_and_secrets_of_a_database_already_gone_are_removed_and_nothing_else(
    target_admin: Admin, stack: Stack, tmp_path: Path, foreign_roles: list[str]
) -> None:
    sink = FileSecretSink(tmp_path / "secrets")
    gone, alive = _handed_off(target_admin, stack, sink), _handed_off(target_admin, stack, sink)
    try:
        # The database dropped, and then its login's DROP ROLE and its DSN's removal did not happen.
        target_admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(gone.name)))
        # A crash between writing a DSN and renaming it into place, for a database gone since.
        crashed = "repro_org451_00c0ffee"
        partial = sink.directory / f".{crashed}.0123456789abcdef.partial"
        partial.write_text("password=half-written\n")
        not_ours = [
            sink.directory / name
            for name in ("notes.txt", "production.dsn", "repro_org451_0badc0de.txt", ".bashrc")
        ]
        for path in not_ours:
            path.write_text("kept by someone else\n")
        (sink.directory / "repro_org451_0badc0de.dsn").symlink_to(sink.directory / "notes.txt")

        removed = remove_leftovers(target_admin, sink)

        assert removed.logins == [logins.login_role(gone.name)]
        assert removed.secrets == sorted([gone.name, crashed])
        assert removed.skipped == []
        roles = _roles(target_admin)
        assert logins.login_role(gone.name) not in roles
        assert logins.login_role(alive.name) in roles and set(foreign_roles) <= roles
        assert not sink.path(gone.name).exists() and not partial.exists()
        assert sink.path(alive.name).exists()
        assert all(path.exists() for path in not_ours)
        assert (sink.directory / "repro_org451_0badc0de.dsn").is_symlink()
        assert remove_leftovers(target_admin, sink) == type(removed)([], [], [])  # nothing left to remove
    finally:
        lifecycle.drop_repro_database(target_admin, alive.name)
        lifecycle.drop_repro_database(target_admin, gone.name)


def test_a_partial_write_of_a_live_database_stays(target_admin: Admin, stack: Stack, tmp_path: Path) -> None:
    sink = FileSecretSink(tmp_path / "secrets")
    alive = _handed_off(target_admin, stack, sink)
    try:
        under_way = sink.directory / f".{alive.name}.fedcba9876543210.partial"
        under_way.write_text("password=being-written\n")
        assert remove_leftovers(target_admin, sink).secrets == []
        assert under_way.exists()
    finally:
        lifecycle.drop_repro_database(target_admin, alive.name)


def test_the_sink_lists_the_files_it_wrote_and_removes_a_name_with_its_partial_writes(tmp_path: Path) -> None:
    sink = FileSecretSink(tmp_path / "secrets")
    assert sink.names() == []  # no folder yet
    sink.store("repro_org451_0123abcd", Secret("password=kept"))
    partials = [sink.directory / f".repro_org451_0123abcd.{digits * 16}.partial" for digits in "ab"]
    for path in partials:
        path.write_text("password=half\n")
    (sink.directory / ".repro_org451_0123abcd.short.partial").write_text("not ours\n")
    (sink.directory / "repro_org451_0123abcd.dsn.bak").write_text("not ours\n")
    (sink.directory / "folder.dsn").mkdir()
    assert sink.names() == ["repro_org451_0123abcd"]
    sink.remove("repro_org451_0123abcd")
    assert sorted(path.name for path in sink.directory.iterdir()) == [
        ".repro_org451_0123abcd.short.partial",
        "folder.dsn",
        "repro_org451_0123abcd.dsn.bak",
    ]
    assert sink.names() == []


def test_a_login_made_by_repro_pipeline_says_so_in_its_comment(
    target_admin: Admin, stack: Stack, tmp_path: Path
) -> None:
    database = _handed_off(target_admin, stack, FileSecretSink(tmp_path / "secrets"))
    try:
        (comment,) = target_admin.execute(
            "SELECT shobj_description(oid, 'pg_authid') FROM pg_roles WHERE rolname = %s",
            (logins.login_role(database.name),),
        ).fetchone() or (None,)
        assert json.loads(str(comment)) == {"created_by": "repro_pipeline", "database": database.name}
    finally:
        lifecycle.drop_repro_database(target_admin, database.name)
