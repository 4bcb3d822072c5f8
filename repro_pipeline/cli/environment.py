"""Where the CLI reads and writes: the servers the user names (options, then ``REPRO_STANDBY_DSN`` and
``REPRO_TARGET_DSN``), else the embedded stack when it is up, with the demo salt kept beside it. Whatever is
taken from the embedded stack is said on stderr, without a secret."""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path

from repro_pipeline.embedded.stack import Stack
from repro_pipeline.engine import dsn
from repro_pipeline.engine.errors import ConfigError, StackDown

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEMO_SALT_VARIABLE = "ANONYMIZATION_SALT"
_SERVER_VARIABLES = "REPRO_STANDBY_DSN / REPRO_TARGET_DSN are not set"


def use_embedded_stack_unless_configured() -> Stack | None:
    """The embedded stack, unless both DSNs are set (then None: the user's own servers are used)."""
    os.environ.setdefault("DAGSTER_HOME", str(PROJECT_ROOT / "dagster_home"))
    configured = [name for name in ("REPRO_STANDBY_DSN", "REPRO_TARGET_DSN") if os.environ.get(name)]
    if len(configured) == 2:
        return None
    if configured:
        raise ConfigError(
            f"only {configured[0]} is set: repro_pipeline needs both the standby and the target server",
            "set both REPRO_STANDBY_DSN and REPRO_TARGET_DSN, or neither to use the embedded stack",
        )
    stack = running_stack(_SERVER_VARIABLES)
    os.environ["REPRO_STANDBY_DSN"] = stack.standby_dsn
    os.environ["REPRO_TARGET_DSN"] = stack.target_admin_dsn
    salt = ""
    if not os.environ.get(DEMO_SALT_VARIABLE):
        path = demo_salt_file(stack)
        os.environ[DEMO_SALT_VARIABLE] = path.read_text().strip()
        salt = f"; salt from {path}"
    say(
        f"using the embedded stack's standby at {dsn.describe(stack.standby_dsn)} and target at "
        f"{dsn.server_address(stack.target_admin_dsn)}{salt}"
    )
    return stack


def source_dsn(given: str | None) -> tuple[str, Stack | None]:
    """The source to read: ``--source``, else ``REPRO_STANDBY_DSN``, else the embedded stack's standby (and
    the stack, whose demo salt may then be used)."""
    if given:
        return given, None
    configured = os.environ.get("REPRO_STANDBY_DSN")
    if configured:
        say(f"using REPRO_STANDBY_DSN's source at {dsn.describe(configured)}")
        return configured, None
    stack = running_stack("no --source is given and REPRO_STANDBY_DSN is not set")
    say(f"using the embedded stack's standby at {dsn.describe(stack.standby_dsn)}")
    return stack.standby_dsn, stack


def demo_salt_reference(reference: str | None, stack: Stack | None) -> str | None:
    """The salt reference to resolve: the config's, or the embedded stack's demo salt file when the source
    is the embedded stack and the config's salt is the demo's variable, unset."""
    default = f"env://{DEMO_SALT_VARIABLE}"
    if stack is None or (reference or default) != default or os.environ.get(DEMO_SALT_VARIABLE):
        return reference
    path = demo_salt_file(stack)
    say(f"salt from {path} (the embedded stack's demo salt; {DEMO_SALT_VARIABLE} is not set)")
    return f"file://{path}"


def running_stack(unset: str = _SERVER_VARIABLES) -> Stack:
    """The embedded stack with every server running, or a StackDown saying to run `repro-pipeline stack up`;
    ``unset`` says which settings would have named other servers."""
    from repro_pipeline.embedded.stack import server_statuses, status

    stack = status()
    if stack is None:
        raise StackDown(
            f"the embedded stack is not set up, and {unset}",
            "run `repro-pipeline stack up` (or `make demo`), or name your own servers",
        )
    stopped = [name for name, state in server_statuses(stack).items() if not state.running]
    if stopped:
        raise StackDown(
            f"the embedded stack in {stack.root} is down (stopped: {', '.join(stopped)}), and {unset}",
            "run `repro-pipeline stack up`, or name your own servers",
        )
    return stack


def demo_salt_file(stack: Stack) -> Path:
    """A random salt kept beside the embedded stack, readable by its owner only, so demo reruns mask the
    same way."""
    path = stack.root / "demo-salt"
    if not path.exists():
        path.touch(mode=0o600)
        path.write_text(secrets.token_hex(32))
    return path


def say(message: str) -> None:
    """A message for the person at the terminal: on stderr, so stdout stays what a script parses."""
    print(message, file=sys.stderr, flush=True)
