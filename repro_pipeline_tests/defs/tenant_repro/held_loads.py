"""Holding repro database loads on the target server, for tests that need a run to stay mid-load.

Every database the target server creates while the hold is on holds its load at its first DDL statement
(an event trigger copied from template1) until the hold is released: the repro database exists, its status
is ``loading``, and the load's snapshot of the standby is open.
"""

from __future__ import annotations

import psycopg

from repro_pipeline.engine.dsn import with_database

HOLD_ROLE = "repro_test_hold_the_load"  # a shared catalog row: every database sees it go
HOLD = f"""
CREATE FUNCTION repro_test_hold() RETURNS event_trigger LANGUAGE plpgsql AS $$
BEGIN
    WHILE EXISTS (SELECT FROM pg_roles WHERE rolname = '{HOLD_ROLE}') LOOP
        PERFORM pg_sleep(0.05);
    END LOOP;
END $$;
CREATE EVENT TRIGGER repro_test_hold ON ddl_command_start EXECUTE FUNCTION repro_test_hold();
"""
# An event trigger does not fire on commands on event triggers, so this runs even where a load is held.
UNHOLD = "DROP EVENT TRIGGER IF EXISTS repro_test_hold; DROP FUNCTION IF EXISTS repro_test_hold();"
HELD_DATABASES = (
    "SELECT datname FROM pg_stat_activity WHERE wait_event = 'PgSleep' AND datname LIKE 'repro_org%'"
)


def hold_loads(target_admin_dsn: str) -> None:
    with psycopg.connect(target_admin_dsn, autocommit=True) as admin:
        admin.execute(f"CREATE ROLE {HOLD_ROLE}")
    with psycopg.connect(with_database(target_admin_dsn, "template1"), autocommit=True) as conn:
        conn.execute(HOLD)


def held_databases(target_admin_dsn: str) -> list[str]:
    """The repro databases whose load is held now."""
    with psycopg.connect(target_admin_dsn, autocommit=True) as admin:
        return [str(name) for (name,) in admin.execute(HELD_DATABASES).fetchall()]


def release_loads(target_admin_dsn: str) -> None:
    """The held loads go on, and no database holds anything of the test's: their schema is the source's
    (``schema_matches_source``), the held ones' included."""
    for database in held_databases(target_admin_dsn):
        with psycopg.connect(with_database(target_admin_dsn, database), autocommit=True) as conn:
            conn.execute(UNHOLD)
    with psycopg.connect(target_admin_dsn, autocommit=True) as admin:
        admin.execute(f"DROP ROLE IF EXISTS {HOLD_ROLE}")
    with psycopg.connect(with_database(target_admin_dsn, "template1"), autocommit=True) as conn:
        conn.execute(UNHOLD)
