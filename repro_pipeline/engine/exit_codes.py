"""The exit codes of ``repro-pipeline``: one per kind of outcome, so a script or CI can tell them apart.

docs/cli.md's exit code table is checked against this enum by a test, so the two cannot drift.
"""

from __future__ import annotations

from enum import IntEnum, unique


@unique
class ExitCode(IntEnum):
    """What the process's exit status means; each member carries its line of docs/cli.md's table."""

    description: str

    def __new__(cls, value: int, description: str) -> ExitCode:
        member = int.__new__(cls, value)
        member._value_ = value
        member.description = description
        return member

    OK = 0, "done: the command did what it was asked"
    RUNTIME = 1, "a run failed at runtime (a Dagster step, a server error mid-load): read the printed failure"
    USAGE = (
        2,
        "the command line is wrong: an unknown command or option, a missing argument, a bad organization id, "
        "a repro database that is not there, an extension past the longest life",
    )
    CONFIGURATION = (
        3,
        "a config file, key or value is invalid, or a closure / repro query cannot run as given",
    )
    SECRET = 4, "a secret (salt, token, DSN password) cannot be resolved or is too weak"
    CHECK_FAILED = (
        5,
        "a repro database failed a check (orphans, counts, leaked PII): it must not be handed off",
    )
    POLICY_GATE = 6, "the strict_autodetect gate refused: PII was found in a column without a rule"
    NOT_READY = (
        7,
        "a server is not ready: the embedded stack is down, a server is unreachable or refuses the login, the standby lags, or the target cannot be used",
    )
    INTERRUPTED = 130, "interrupted by Ctrl-C (SIGINT)"


def markdown_table() -> str:
    """The Markdown table of every exit code, as docs/cli.md shows it."""
    rows = [f"| {code.value} | `{code.name}` | {code.description} |" for code in ExitCode]
    return "\n".join(["| Code | Name | Meaning |", "| ---: | --- | --- |", *rows])
