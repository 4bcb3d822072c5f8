"""Where to connect, from a DSN: every part a user needs, and never the password."""

import pytest

from repro_pipeline.engine import dsn
from repro_pipeline.engine.errors import ReproError


def test_where_to_connect_names_host_port_database_role_and_a_psql_command_without_the_password() -> None:
    facts = dsn.where_to_connect(
        "postgresql://repro_451:s3cr%3Bt@db.internal:6543/repro_451_abc?sslmode=require"
    )
    assert facts == {
        "host": "db.internal",
        "port": "6543",
        "database": "repro_451_abc",
        "role": "repro_451",
        "psql": "psql 'host=db.internal port=6543 dbname=repro_451_abc user=repro_451'",
    }
    assert not any("s3cr" in value for value in facts.values())


def test_where_to_connect_defaults_like_libpq() -> None:
    facts = dsn.where_to_connect("dbname=x")
    assert (facts["host"], facts["port"], facts["database"], facts["role"]) == ("localhost", "5432", "x", "")
    assert facts["psql"] == "psql 'host=localhost port=5432 dbname=x'"


def test_a_malformed_dsn_is_refused_without_showing_it() -> None:
    with pytest.raises(ReproError, match="malformed") as raised:
        dsn.where_to_connect("host='secret-password")
    assert "secret-password" not in str(raised.value)
