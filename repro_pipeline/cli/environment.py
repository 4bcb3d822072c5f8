"""Where the CLI's runs read and write: the user's own servers when both DSNs are set, else the embedded
stack, with the demo salt kept beside it."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from repro_pipeline.embedded.stack import Stack
from repro_pipeline.engine.errors import ConfigError, StackDown

PROJECT_ROOT = Path(__file__).resolve().parents[2]


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
    stack = running_stack()
    os.environ["REPRO_STANDBY_DSN"] = stack.standby_dsn
    os.environ["REPRO_TARGET_DSN"] = stack.target_admin_dsn
    if not os.environ.get("ANONYMIZATION_SALT"):
        os.environ["ANONYMIZATION_SALT"] = _demo_salt(stack.root)
    return stack


def running_stack(root: Path | None = None) -> Stack:
    """The embedded stack with every server running, or a StackDown saying to run `repro-pipeline stack up`."""
    from repro_pipeline.embedded.stack import server_statuses, status

    stack = status(root)
    if stack is None:
        raise StackDown(
            "the embedded stack is not set up, and REPRO_STANDBY_DSN / REPRO_TARGET_DSN are not set",
            "run `repro-pipeline stack up` (or `make demo`), or export the DSNs of your own servers",
        )
    stopped = [name for name, state in server_statuses(stack).items() if not state.running]
    if stopped:
        raise StackDown(
            f"the embedded stack in {stack.root} is down (stopped: {', '.join(stopped)}), and "
            "REPRO_STANDBY_DSN / REPRO_TARGET_DSN are not set",
            "run `repro-pipeline stack up`, or export the DSNs of your own servers",
        )
    return stack


def _demo_salt(stack_root: Path) -> str:
    """A random salt kept beside the embedded stack, so demo reruns mask the same way."""
    path = stack_root / "demo-salt"
    if not path.exists():
        path.touch(mode=0o600)
        path.write_text(secrets.token_hex(32))
    return path.read_text().strip()
