"""Which OS account runs the PostgreSQL programs.

PostgreSQL refuses to run as root. When we are root (CI, containers) every PostgreSQL program runs as an
unprivileged account (``postgres`` if it exists, else ``nobody``) and the stack folder is handed to it;
otherwise everything runs as ourselves.
"""

from __future__ import annotations

import os
import pwd
import stat
from dataclasses import dataclass
from pathlib import Path

from repro_pipeline.embedded.stack.errors import StackError

UNPRIVILEGED_ACCOUNTS = ("postgres", "nobody")


@dataclass(frozen=True)
class ServerUser:
    """The account the servers run as; ``switch`` is true when we are root and must change to it."""

    name: str
    uid: int
    gid: int
    switch: bool

    def give(self, path: Path) -> None:
        """Make ``path`` owned by this account (a no-op unless we switch accounts)."""
        if self.switch:
            os.chown(path, self.uid, self.gid)


def server_user() -> ServerUser:
    uid = os.geteuid()
    if uid != 0:
        return ServerUser(name=_account_name(uid), uid=uid, gid=os.getegid(), switch=False)
    for name in UNPRIVILEGED_ACCOUNTS:
        try:
            account = pwd.getpwnam(name)
        except KeyError:
            continue
        return ServerUser(name=name, uid=account.pw_uid, gid=account.pw_gid, switch=True)
    raise StackError(
        "running as root, but PostgreSQL refuses root and neither a 'postgres' nor a 'nobody' account "
        "exists; create one (e.g. `useradd --system postgres`) or run as a normal user"
    )


def check_reachable(stack_root: Path, user: ServerUser) -> None:
    """Fail clearly unless ``user`` can traverse the existing folders above ``stack_root``.

    The stack folder itself is handed to ``user``, so only its parents can be in the way.
    """
    blocking = blocking_folder(stack_root, user)
    if blocking is not None:
        raise StackError(
            f"the stack folder {stack_root} is not reachable by the '{user.name}' account the servers "
            f"run as (it cannot enter {blocking}); set REPRO_STACK_DIR (or --dir) to a folder under /tmp"
        )


def blocking_folder(path: Path, user: ServerUser) -> Path | None:
    """The first existing folder above ``path`` that ``user`` cannot enter, or None."""
    if not user.switch:
        return None
    groups = set(os.getgrouplist(user.name, user.gid))
    for folder in reversed(path.parents):
        if folder.exists() and not _can_search(folder, user.uid, groups):
            return folder
    return None


def _can_search(folder: Path, uid: int, groups: set[int]) -> bool:
    info = folder.stat()
    if info.st_uid == uid:
        return bool(info.st_mode & stat.S_IXUSR)
    if info.st_gid in groups:
        return bool(info.st_mode & stat.S_IXGRP)
    return bool(info.st_mode & stat.S_IXOTH)


def _account_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)
