"""Errors a user can act on.

Every error raised for bad input or an unready environment is a ``ReproError``: it names what is at fault
and says what to do, and never carries a secret. The CLI and the Dagster layer print its message as is,
without a traceback; any other exception is a bug in repro_pipeline.
"""

from __future__ import annotations

from repro_pipeline.engine.exit_codes import ExitCode


class ReproError(Exception):
    """A problem the user can fix: ``problem`` names the file, key or value at fault; ``remedy`` says what to do."""

    exit_code: ExitCode = ExitCode.RUNTIME

    def __init__(self, problem: str, remedy: str = "") -> None:
        self.problem = problem
        self.remedy = remedy
        super().__init__(problem if not remedy else f"{problem}\n  what to do: {remedy}")


class ConfigError(ReproError):
    """A configuration file, key or value is invalid."""

    exit_code = ExitCode.CONFIGURATION


class SecretError(ReproError):
    """A secret (salt, token, DSN) cannot be resolved or is too weak."""

    exit_code = ExitCode.SECRET


class TenantError(ReproError):
    """The tenant (organization id) given is not a valid one."""

    exit_code = ExitCode.USAGE


class StandbyNotReady(ReproError):
    """The source is not a hot standby, or it is paused or too far behind its primary."""

    exit_code = ExitCode.NOT_READY


class ClosureError(ReproError):
    """The subset cannot be computed as configured (no root rows, unknown table, bad predicate...)."""

    exit_code = ExitCode.CONFIGURATION


class ConnectionFailed(ReproError):
    """A server cannot be reached, or refuses the credentials."""

    exit_code = ExitCode.NOT_READY


class TargetError(ReproError):
    """The target server or repro database is not usable."""

    exit_code = ExitCode.NOT_READY


class RequestRefused(TargetError):
    """A command names a repro database the target server does not have (or that is not repro_pipeline's),
    or asks of one what its record forbids: an extension past its longest life, or of a retired one."""

    exit_code = ExitCode.USAGE


class ChecksFailed(ReproError):
    """A loaded repro database failed a check: it must not be handed off."""

    exit_code = ExitCode.CHECK_FAILED


class PolicyGateFailed(ReproError):
    """The ``strict_autodetect`` gate found PII in columns that have no rule."""

    exit_code = ExitCode.POLICY_GATE


class StackDown(ReproError):
    """The embedded stack, the default when no DSN is set, is not set up or its servers are stopped."""

    exit_code = ExitCode.NOT_READY
