"""Is the source a hot standby that is caught up? Read from the standby alone: the primary gets no load."""

from __future__ import annotations

from dataclasses import dataclass

import psycopg
from psycopg.rows import TupleRow

from repro_pipeline.engine.errors import StandbyNotReady


@dataclass(frozen=True)
class LagLimits:
    max_replay_lag_seconds: float = 300.0
    max_replay_lag_bytes: int = 64 * 1024 * 1024


@dataclass(frozen=True)
class StandbyHealth:
    in_recovery: bool
    replay_paused: bool
    receiver_status: str | None  # pg_stat_wal_receiver.status, None when no WAL receiver runs
    receive_lsn: str | None
    replay_lsn: str | None
    replay_lag_bytes: int
    replay_lag_seconds: float  # 0 when everything received has been replayed: an idle primary is not lag
    server_version: int
    # Off: a long read holds back replay, and is cancelled after max_standby_streaming_delay.
    hot_standby_feedback: bool
    role: str = ""
    superuser: bool = False
    sees_wal_receiver: bool = (
        True  # pg_stat_wal_receiver shows only its pid to roles without pg_read_all_stats
    )
    receiver_running: bool = False

    def problems(self, limits: LagLimits) -> list[str]:
        found = []
        if not self.in_recovery:
            found.append("it is not in recovery (pg_is_in_recovery() is false): this is a primary")
            return found
        if self.replay_paused:
            found.append("WAL replay is paused (pg_wal_replay_pause() was called on it)")
        if self.receiver_running and self.receiver_status is None and not self.sees_wal_receiver:
            found.append(
                f"its WAL receiver is hidden from the role {self.role}: grant pg_monitor to {self.role}"
            )
        elif self.receiver_status != "streaming":
            found.append(f"its WAL receiver is {self.receiver_status or 'not running'}, not streaming")
        if self.replay_lag_seconds > limits.max_replay_lag_seconds:
            found.append(
                f"replay lags {self.replay_lag_seconds:.1f} s behind, more than the "
                f"{limits.max_replay_lag_seconds:g} s allowed"
            )
        if self.replay_lag_bytes > limits.max_replay_lag_bytes:
            found.append(
                f"{self.replay_lag_bytes} bytes of received WAL are not replayed yet, more than the "
                f"{limits.max_replay_lag_bytes} allowed"
            )
        return found

    def warnings(self) -> list[str]:
        """What is not wrong enough to refuse the read, but should be fixed."""
        return [superuser_warning(self.role)] if self.superuser else []


def superuser_warning(role: str) -> str:
    return (
        f"the source role {role} is a superuser: the read needs only SELECT on the tenant's tables and "
        "pg_monitor; a superuser's predicates and sessions can do anything on the standby"
    )


def source_role(conn: psycopg.Connection[TupleRow]) -> tuple[str, bool]:
    """The session's role, and whether it is a superuser."""
    row = conn.execute(
        "SELECT current_user::text, rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user"
    ).fetchone()
    assert row is not None
    return str(row[0]), bool(row[1])


_HEALTH_QUERY = """
SELECT pg_is_in_recovery(),
       CASE WHEN NOT pg_is_in_recovery() THEN false
            WHEN current_setting('server_version_num')::int >= 140000
                 THEN pg_get_wal_replay_pause_state() <> 'not paused'
            ELSE pg_is_wal_replay_paused() END,
       (SELECT status FROM pg_stat_wal_receiver),
       pg_last_wal_receive_lsn()::text,
       pg_last_wal_replay_lsn()::text,
       coalesce(pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn()), 0)::bigint,
       CASE WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0
            ELSE coalesce(extract(epoch FROM now() - pg_last_xact_replay_timestamp()), 0) END::float8,
       current_setting('server_version_num')::int,
       current_setting('hot_standby_feedback') = 'on',
       current_user::text,
       (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user),
       pg_has_role(current_user, 'pg_read_all_stats', 'USAGE'),
       EXISTS (SELECT 1 FROM pg_stat_wal_receiver WHERE pid IS NOT NULL)
"""


def read_standby_health(conn: psycopg.Connection[TupleRow]) -> StandbyHealth:
    row = conn.execute(_HEALTH_QUERY).fetchone()
    assert row is not None
    (in_recovery, paused, receiver, receive_lsn, replay_lsn, lag_bytes, lag_seconds, version, feedback) = row[
        :9
    ]
    role, superuser, reads_all_stats, receiver_running = row[9:]
    return StandbyHealth(
        in_recovery=bool(in_recovery),
        replay_paused=bool(paused),
        receiver_status=None if receiver is None else str(receiver),
        receive_lsn=None if receive_lsn is None else str(receive_lsn),
        replay_lsn=None if replay_lsn is None else str(replay_lsn),
        replay_lag_bytes=int(str(lag_bytes)),
        replay_lag_seconds=float(str(lag_seconds)),
        server_version=int(str(version)),
        hot_standby_feedback=bool(feedback),
        role=str(role),
        superuser=bool(superuser),
        sees_wal_receiver=bool(reads_all_stats),
        receiver_running=bool(receiver_running),
    )


def require_ready_standby(health: StandbyHealth, limits: LagLimits, *, source: str) -> None:
    """Raise ``StandbyNotReady`` naming every problem, so that nothing is read from a stale source."""
    problems = health.problems(limits)
    if problems:
        raise StandbyNotReady(
            f"the source {source} is not a caught-up hot standby: " + "; ".join(problems),
            "point the standby DSN at the DR warm standby, never the primary; if replication lags, "
            "wait for it to catch up (or resume replay with pg_wal_replay_resume()) and launch again",
        )
