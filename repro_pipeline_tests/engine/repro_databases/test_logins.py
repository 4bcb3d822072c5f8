"""A login per repro database, on the real stack: it reads its database and nothing else, writes nothing,
dies at its expiry, with its database's retirement, and with its database."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from repro_pipeline.embedded.stack import Stack
from repro_pipeline.engine.dsn import with_database
from repro_pipeline.engine.errors import TargetError
from repro_pipeline.engine.repro_databases import lifecycle, logins
from repro_pipeline.engine.secrets import Secret
from repro_pipeline_tests.repro_databases import new_repro_database

Admin = psycopg.Connection[tuple[object, ...]]


@pytest.fixture
def repro_database(stack: Stack, target_admin: Admin) -> Iterator[Callable[[], lifecycle.ReproDatabase]]:
    """Makes repro databases with a table, a sequence and the manifest's schema; drops them afterwards."""
    made: list[lifecycle.ReproDatabase] = []

    def make() -> lifecycle.ReproDatabase:
        database = new_repro_database(target_admin, ttl=timedelta(hours=1), now=datetime.now(UTC))
        made.append(database)
        with psycopg.connect(with_database(stack.target_admin_dsn, database.name), autocommit=True) as conn:
            conn.execute(
                "CREATE TABLE public.invoices (id serial PRIMARY KEY, total_cents int);"
                "INSERT INTO public.invoices (total_cents) VALUES (100), (250);"
                "CREATE SCHEMA _repro_pipeline; CREATE TABLE _repro_pipeline.runs (run_id text);"
                # As pg_restore --no-owner leaves a source's SECURITY DEFINER function: owned by the target_admin.
                "CREATE FUNCTION public.note_payment(cents int) RETURNS void LANGUAGE sql SECURITY DEFINER "
                "AS 'INSERT INTO public.invoices (total_cents) VALUES (cents)'"
            )
        return database

    yield make
    for database in made:
        lifecycle.drop_repro_database(target_admin, database.name)


def _issue(stack: Stack, target_admin: Admin, database: str, expires_at: datetime) -> logins.Login:
    with psycopg.connect(with_database(stack.target_admin_dsn, database), autocommit=True) as repro:
        return logins.issue_login(target_admin, repro, database, expires_at)


def _in_an_hour() -> datetime:
    return datetime.now(UTC) + timedelta(hours=1)


def test_the_login_reads_its_database_and_can_write_or_own_nothing(
    stack: Stack, target_admin: Admin, repro_database: Callable[[], lifecycle.ReproDatabase]
) -> None:
    database = repro_database()
    login = _issue(stack, target_admin, database.name, _in_an_hour())
    assert login.role == f"{database.name}_reader" and len(login.role.encode()) <= 63
    with psycopg.connect(login.dsn(stack.target_admin_dsn).reveal(), autocommit=True) as conn:
        assert conn.execute("SELECT current_user, sum(total_cents) FROM invoices").fetchone() == (
            login.role,
            350,
        )
        assert conn.execute("SELECT last_value FROM invoices_id_seq").fetchone() == (2,)
        assert conn.execute("SELECT count(*) FROM _repro_pipeline.runs").fetchone() == (0,)
        for statement in (
            "INSERT INTO invoices (total_cents) VALUES (1)",
            "UPDATE invoices SET total_cents = 0",
            "DELETE FROM invoices",
            "SELECT nextval('invoices_id_seq')",
            "CREATE TABLE public.mine (id int)",
            "CREATE TEMPORARY TABLE mine (id int)",
            "CREATE SCHEMA mine",
            "SELECT public.note_payment(1)",  # would write as the target_admin
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)
    (attributes,) = target_admin.execute(
        "SELECT rolcanlogin, rolsuper, rolcreatedb, rolcreaterole, rolinherit, rolreplication, "
        "rolbypassrls, rolconnlimit, rolvaliduntil FROM pg_roles WHERE rolname = %s",
        (login.role,),
    )
    assert attributes[:8] == (True, False, False, False, False, False, False, logins.CONNECTION_LIMIT)
    assert attributes[8] == login.expires_at
    assert target_admin.execute(
        "SELECT count(*) FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.member WHERE r.rolname = %s",
        (login.role,),
    ).fetchone() == (0,)


def test_the_dsn_names_the_target_server_and_the_login_only(stack: Stack) -> None:
    login = logins.Login("repro_org451_0123abcd_reader", "repro_org451_0123abcd", Secret("pw"), _in_an_hour())
    admin_dsn = make_conninfo(
        stack.target_admin_dsn, sslmode="prefer", sslkey="/target_admin/key", passfile="/p"
    )
    parts = conninfo_to_dict(login.dsn(admin_dsn).reveal())
    assert parts == {
        "host": "127.0.0.1",
        "port": str(stack.target.port),
        "sslmode": "prefer",
        "dbname": "repro_org451_0123abcd",
        "user": "repro_org451_0123abcd_reader",
        "password": "pw",
    }
    assert "pw" not in repr(login)


def test_the_login_cannot_open_another_database_nor_the_standby_or_primary(
    stack: Stack, target_admin: Admin, repro_database: Callable[[], lifecycle.ReproDatabase]
) -> None:
    ours, loading = repro_database(), repro_database()  # the other one was never handed off
    login = _issue(stack, target_admin, ours.name, _in_an_hour())
    dsn = login.dsn(stack.target_admin_dsn).reveal()
    with pytest.raises(psycopg.OperationalError, match=f'permission denied for database "{loading.name}"'):
        psycopg.connect(make_conninfo(dsn, dbname=loading.name)).close()
    for maintenance in ("postgres", "template1"):
        with pytest.raises(psycopg.OperationalError, match=f'permission denied for database "{maintenance}"'):
            psycopg.connect(make_conninfo(dsn, dbname=maintenance)).close()
    for server in ("standby", "primary"):
        elsewhere = make_conninfo(dsn, port=stack.server(server).port, dbname="billing")
        with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
            psycopg.connect(elsewhere).close()


def test_the_password_stops_working_after_valid_until(
    stack: Stack, target_admin: Admin, repro_database: Callable[[], lifecycle.ReproDatabase]
) -> None:
    database = repro_database()
    login = _issue(stack, target_admin, database.name, datetime.now(UTC) + timedelta(seconds=3))
    dsn = login.dsn(stack.target_admin_dsn).reveal()
    psycopg.connect(dsn).close()
    time.sleep(max(0.0, (login.expires_at - datetime.now(UTC)).total_seconds()) + 1)
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(dsn).close()


def test_retiring_the_database_ends_its_login_and_dropping_it_drops_the_login(
    stack: Stack, target_admin: Admin, repro_database: Callable[[], lifecycle.ReproDatabase]
) -> None:
    database = repro_database()
    login = _issue(stack, target_admin, database.name, database.expires_at)
    dsn = login.dsn(stack.target_admin_dsn).reveal()
    psycopg.connect(dsn).close()
    lifecycle.retire(target_admin, database, datetime.now(UTC))
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(dsn).close()
    lifecycle.drop_repro_database(target_admin, database.name)
    assert target_admin.execute(
        "SELECT count(*) FROM pg_roles WHERE rolname = %s", (login.role,)
    ).fetchone() == (0,)
    lifecycle.drop_repro_database(target_admin, database.name)  # again: nothing left to drop is no error


def test_handed_off_again_the_login_gets_a_new_password_and_the_old_one_stops_working(
    stack: Stack, target_admin: Admin, repro_database: Callable[[], lifecycle.ReproDatabase]
) -> None:
    database = repro_database()
    first = _issue(stack, target_admin, database.name, _in_an_hour())
    second = _issue(stack, target_admin, database.name, _in_an_hour())
    assert first.password != second.password
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(first.dsn(stack.target_admin_dsn).reveal()).close()
    psycopg.connect(second.dsn(stack.target_admin_dsn).reveal()).close()


def test_a_role_of_that_name_with_more_rights_is_refused(
    stack: Stack, target_admin: Admin, repro_database: Callable[[], lifecycle.ReproDatabase]
) -> None:
    database = repro_database()
    role = logins.login_role(database.name)
    target_admin.execute(sql.SQL("CREATE ROLE {} LOGIN CREATEDB").format(sql.Identifier(role)))
    with pytest.raises(TargetError, match=f"the role {role} .* has more than a login .* \\(CREATEDB\\)"):
        _issue(stack, target_admin, database.name, _in_an_hour())
    assert target_admin.execute(
        "SELECT rolpassword FROM pg_authid WHERE rolname = %s", (role,)
    ).fetchone() == (None,)


def test_a_target_role_that_may_not_create_roles_is_one_clear_error(
    stack: Stack, target_admin: Admin, repro_database: Callable[[], lifecycle.ReproDatabase]
) -> None:
    database = repro_database()
    limited = f"limited_{uuid.uuid4().hex[:8]}"
    target_admin.execute(
        sql.SQL("CREATE ROLE {} LOGIN CREATEDB PASSWORD 'limited-pw'").format(sql.Identifier(limited))
    )
    # The embedded target closes its target_admin database to PUBLIC: an target_admin role that is no superuser is granted it.
    target_admin.execute(sql.SQL("GRANT CONNECT ON DATABASE postgres TO {}").format(sql.Identifier(limited)))
    try:
        limited_dsn = make_conninfo(stack.target_admin_dsn, user=limited, password="limited-pw")
        with (
            psycopg.connect(limited_dsn, autocommit=True) as limited_admin,
            pytest.raises(TargetError) as raised,
        ):
            _issue(stack, limited_admin, database.name, _in_an_hour())
        assert "may not create or change the login role" in raised.value.problem
        assert "CREATEROLE" in raised.value.remedy
    finally:
        target_admin.execute(
            sql.SQL("REVOKE CONNECT ON DATABASE postgres FROM {}").format(sql.Identifier(limited))
        )
        target_admin.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(limited)))


def test_the_server_log_sees_the_scram_verifier_never_the_password(
    stack: Stack, target_admin: Admin, repro_database: Callable[[], lifecycle.ReproDatabase]
) -> None:
    database = repro_database()
    target_admin.execute("SET log_statement = 'all'")
    try:
        login = _issue(stack, target_admin, database.name, _in_an_hour())
    finally:
        target_admin.execute("RESET log_statement")
    server_log = stack.target.log_file.read_text(errors="replace")
    assert f'CREATE ROLE "{login.role}"' in server_log and "SCRAM-SHA-256$4096:" in server_log
    assert login.password.reveal() not in server_log
