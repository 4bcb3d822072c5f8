"""The one error the stack raises, and the helpers that keep its message short and free of secrets."""

from __future__ import annotations

from pathlib import Path

REDACTED = "********"


class StackError(Exception):
    """The local Postgres stack could not be set up, started, stopped or inspected.

    The message is one line: it names the command or check, the server and its log file, and never
    contains the superuser password.
    """


def redact(text: str, secret: str) -> str:
    """``text`` with every occurrence of ``secret`` masked."""
    return text.replace(secret, REDACTED) if secret else text


def one_line(text: str, max_lines: int = 3) -> str:
    """The last non-empty lines of ``text`` joined on one line."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return " | ".join(lines[-max_lines:])


def log_tail(log_file: Path, max_lines: int = 3) -> str:
    """The last lines of a server log on one line, or '' when it cannot be read."""
    try:
        with log_file.open("rb") as log:
            log.seek(0, 2)
            log.seek(max(0, log.tell() - 4096))
            return one_line(log.read().decode("utf-8", "replace"), max_lines)
    except OSError:
        return ""
