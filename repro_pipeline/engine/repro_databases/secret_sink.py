"""Where the DSN of a repro database's login is kept: a secret sink, and its default, a file per database
readable by its owner only.

A sink is told a name (the repro database's) and the DSN; it answers with a reference that tells engineers
where to find the DSN (a file's path, a vault's path) and is safe to show anywhere. Another sink (a vault, a
password manager) implements the same two methods.
"""

from __future__ import annotations

import os
import re
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from repro_pipeline.engine.errors import SecretError
from repro_pipeline.engine.secrets import Secret

_NAME = re.compile(r"[a-z0-9_]{1,63}")
# The files this sink writes: ``<name>.dsn``, and ``.<name>.<16 hex digits>.partial`` while one is written.
_KEPT = re.compile(r"(?P<name>[a-z0-9_]{1,63})\.dsn|\.(?P<partial>[a-z0-9_]{1,63})\.[0-9a-f]{16}\.partial")
_GROUP_OR_OTHERS = stat.S_IRWXG | stat.S_IRWXO


class SecretSink(Protocol):
    def store(self, name: str, secret: Secret) -> str:
        """Keep ``secret`` under ``name``, replacing what was kept there; return where engineers find it."""
        ...

    def remove(self, name: str) -> None:
        """Forget what is kept under ``name``, a write of it cut short included; nothing kept there is not an
        error."""
        ...

    def names(self) -> list[str]:
        """The names something is kept under, a write cut short (a crash) included: what the sweep looks at
        for secrets whose database is gone."""
        ...


@dataclass(frozen=True)
class FileSecretSink:
    """One file per name, ``<directory>/<name>.dsn``, mode 0600, in a folder of mode 0700.

    ``setting`` names where the folder was configured, for error messages.
    """

    directory: Path
    setting: str = "REPRO_SECRET_DIR"

    def path(self, name: str) -> Path:
        if not _NAME.fullmatch(name):
            raise SecretError(
                f"{name!r} cannot name a secret file: only lowercase letters, digits and _ are allowed"
            )
        return self.directory / f"{name}.dsn"

    def store(self, name: str, secret: Secret) -> str:
        path = self.path(name)
        self._private_folder()
        # Written whole under a fresh name, then renamed over the old file: a reader sees the old DSN or the
        # new one, never part of one, and the file is never readable by others, not even for a moment.
        partial = self.directory / f".{name}.{secrets.token_hex(8)}.partial"
        try:
            descriptor = os.open(partial, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW, 0o600)
            try:
                os.fchmod(descriptor, 0o600)  # the mode asked of os.open is narrowed by the umask only
                os.write(descriptor, (secret.reveal() + "\n").encode())
                os.fsync(descriptor)
            finally:
                os.close(descriptor)
            os.replace(partial, path)
        except OSError as exc:
            partial.unlink(missing_ok=True)
            raise SecretError(
                f"cannot write the secret file {path}: {exc.strerror}",
                f"check that {self.directory} ({self.setting}) is writable by the account running the runs",
            ) from None
        return str(path)

    def remove(self, name: str) -> None:
        path = self.path(name)
        try:
            for partial in self._partials(name):
                partial.unlink(missing_ok=True)
            path.unlink(missing_ok=True)
        except OSError as exc:
            raise SecretError(f"cannot remove the secret file {path}: {exc.strerror}") from None

    def names(self) -> list[str]:
        """The names of the files this sink wrote (a partial one included); any other file, a folder or a
        symlink is not one of them."""
        try:
            entries = list(os.scandir(self.directory))
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise SecretError(
                f"cannot read the secret folder {self.directory} ({self.setting}): {exc.strerror}"
            ) from None
        found = set()
        for entry in entries:
            kept = _KEPT.fullmatch(entry.name)
            if kept and entry.is_file(follow_symlinks=False):
                found.add(kept["name"] or kept["partial"])
        return sorted(found)

    def _partials(self, name: str) -> list[Path]:
        """The partial files of ``name``: writes cut short, or one under way."""
        if not self.directory.is_dir():
            return []
        return [
            path
            for path in self.directory.glob(f".{name}.*.partial")
            if (kept := _KEPT.fullmatch(path.name)) and kept["partial"] == name and not path.is_symlink()
        ]

    def _private_folder(self) -> None:
        """Create the folder with mode 0700, or refuse one that others can enter or that is not a folder."""
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            info = self.directory.lstat()
        except OSError as exc:
            raise SecretError(
                f"cannot create the secret folder {self.directory} ({self.setting}): {exc.strerror}",
                f"set {self.setting} to a folder the account running the runs may create",
            ) from None
        if not stat.S_ISDIR(info.st_mode):
            raise SecretError(
                f"the secret folder {self.directory} ({self.setting}) is not a folder (symlinks are refused)",
                f"set {self.setting} to a folder of its own",
            )
        if info.st_uid != os.geteuid():
            raise SecretError(
                f"the secret folder {self.directory} ({self.setting}) belongs to another account",
                f"set {self.setting} to a folder owned by the account running the runs",
            )
        if info.st_mode & _GROUP_OR_OTHERS:
            raise SecretError(
                f"the secret folder {self.directory} ({self.setting}) is open to group or others "
                f"(mode {stat.S_IMODE(info.st_mode):o})",
                f"chmod 700 {self.directory}",
            )
