"""The test session's set-aside of the checkout's catalog snapshot never loses the user's snapshot: after a
session, after a killed one, and with two sessions in one checkout."""

from __future__ import annotations

from pathlib import Path

from repro_pipeline_tests.snapshot_set_aside import SET_ASIDE_NAME, snapshot_set_aside

USERS_SNAPSHOT = '{"source": "the user\'s standby"}'
TESTS_SNAPSHOT = '{"source": "the test stack\'s standby"}'


def test_the_users_snapshot_is_away_during_the_session_and_back_after(tmp_path: Path) -> None:
    path = tmp_path / "state"
    path.write_text(USERS_SNAPSHOT)
    with snapshot_set_aside(path):
        assert not path.exists()
        path.write_text(TESTS_SNAPSHOT)  # as the refresh command's test does
    assert path.read_text() == USERS_SNAPSHOT and not (tmp_path / SET_ASIDE_NAME).exists()


def test_without_a_users_snapshot_none_is_left_behind(tmp_path: Path) -> None:
    path = tmp_path / "state"
    with snapshot_set_aside(path):
        path.write_text(TESTS_SNAPSHOT)
    assert not path.exists() and not (tmp_path / SET_ASIDE_NAME).exists()


def test_a_killed_sessions_set_aside_snapshot_is_the_one_put_back(tmp_path: Path) -> None:
    path = tmp_path / "state"
    (tmp_path / SET_ASIDE_NAME).write_text(USERS_SNAPSHOT)  # set aside by a session killed after
    path.write_text(TESTS_SNAPSHOT)  # its refresh test wrote this
    with snapshot_set_aside(path):
        assert not path.exists()
    assert path.read_text() == USERS_SNAPSHOT and not (tmp_path / SET_ASIDE_NAME).exists()


def test_a_second_session_in_the_checkout_leaves_the_first_ones_set_aside_alone(tmp_path: Path) -> None:
    path = tmp_path / "state"
    path.write_text(USERS_SNAPSHOT)
    with snapshot_set_aside(path):
        with snapshot_set_aside(path):
            assert not path.exists()
        assert not path.exists()  # still set aside for the first session's tests
        assert (tmp_path / SET_ASIDE_NAME).read_text() == USERS_SNAPSHOT
    assert path.read_text() == USERS_SNAPSHOT
