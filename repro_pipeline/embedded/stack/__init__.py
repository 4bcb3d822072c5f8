"""A local, throwaway PostgreSQL stack: a primary with the source database ``billing``, a streaming hot
standby of it, and a target server for repro databases, all on 127.0.0.1.

    stack = up()                      # idempotent; data in $REPRO_STACK_DIR or default_stack_root()
    stack.primary_dsn, stack.standby_dsn, stack.target_admin_dsn
    down(); destroy()

Command line: ``python -m repro_pipeline.embedded.stack up|down|status|destroy [--dir PATH]``.
"""

from repro_pipeline.embedded.stack.binaries import PgBinaries, find_binaries
from repro_pipeline.embedded.stack.errors import StackError
from repro_pipeline.embedded.stack.layout import default_stack_root, resolve_stack_root
from repro_pipeline.embedded.stack.lifecycle import destroy, down, server_statuses, status, up
from repro_pipeline.embedded.stack.model import Server, ServerStatus, Stack
from repro_pipeline.embedded.stack.sql import wait_for_standby_replay

__all__ = [
    "PgBinaries",
    "Server",
    "ServerStatus",
    "Stack",
    "StackError",
    "default_stack_root",
    "destroy",
    "down",
    "find_binaries",
    "resolve_stack_root",
    "server_statuses",
    "status",
    "up",
    "wait_for_standby_replay",
]
