"""Finding a directory with the PostgreSQL server programs the stack needs.

Order: ``REPRO_PG_BIN``; then the system's binaries; then the ones shipped in the ``pgserver`` wheel.
``REPRO_PG_BINARIES=system|pgserver`` restricts the search to one of the two.

Binaries the server account cannot run (the wheel in a virtualenv under /root, when we are root) are used
through a copy of their install tree under the temp dir that every account can run (``shared_copy``).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from repro_pipeline.embedded.stack.errors import StackError, one_line

REQUIRED_TOOLS = ("initdb", "pg_ctl", "postgres", "pg_basebackup")
Origin = Literal["system", "pgserver", "env"]
ORIGINS: tuple[Origin, ...] = ("system", "pgserver", "env")
CHOICES = ("auto", "system", "pgserver")
DEBIAN_SERVER_DIRS = Path("/usr/lib/postgresql")


@dataclass(frozen=True)
class PgBinaries:
    """A directory holding initdb, pg_ctl, postgres and pg_basebackup of one PostgreSQL major version.

    ``copied_from`` is the bin directory ``origin`` found, when ``bin_dir`` is a ``shared_copy`` of it.
    """

    bin_dir: Path
    major_version: int
    origin: Origin
    copied_from: Path | None = None

    def tool(self, name: str) -> str:
        return str(self.bin_dir / name)

    def describe(self) -> str:
        copy = f", a copy of {self.copied_from}" if self.copied_from else ""
        return f"PostgreSQL {self.major_version} ({self.origin}: {self.bin_dir}{copy})"


def find_binaries(environ: Mapping[str, str] | None = None) -> PgBinaries:
    """The binaries to use, as chosen by ``REPRO_PG_BIN`` / ``REPRO_PG_BINARIES`` in ``environ``."""
    env = os.environ if environ is None else environ
    explicit = env.get("REPRO_PG_BIN", "").strip()
    if explicit:
        return _explicit_binaries(Path(explicit))
    choice = env.get("REPRO_PG_BINARIES", "").strip().lower() or "auto"
    if choice not in CHOICES:
        raise StackError(f"REPRO_PG_BINARIES={choice!r} is not one of: {', '.join(CHOICES)}")
    tried: list[str] = []
    if choice in ("auto", "system"):
        found = _first_complete(_system_candidates(env.get("PATH")), tried)
        if found is not None:
            return binaries_in(found, "system")
    if choice in ("auto", "pgserver"):
        found = _first_complete(_pgserver_candidates(), tried)
        if found is not None:
            return binaries_in(found, "pgserver")
    raise StackError(_not_found_message(choice, tried))


def binaries_in(bin_dir: Path, origin: Origin) -> PgBinaries:
    """Describe the binaries in ``bin_dir`` (its major version comes from ``postgres --version``)."""
    return PgBinaries(bin_dir=bin_dir.resolve(), major_version=_major_version(bin_dir), origin=origin)


def missing_tools(bin_dir: Path) -> list[str]:
    return [tool for tool in REQUIRED_TOOLS if not os.access(bin_dir / tool, os.X_OK)]


def shared_copy(binaries: PgBinaries) -> PgBinaries:
    """The same binaries, run from a copy of their install tree (the folder above ``bin``, with its ``lib``
    and ``share``) under the temp dir that every account can read and run. Made once per install.

    A wheel's binaries (pgserver's) load the libraries it bundles from ``<package>.libs`` beside the
    package folder, through an RPATH relative to ``bin``: the copy keeps that layout.
    """
    if binaries.bin_dir.name != "bin":
        raise StackError(f"{binaries.describe()} is not in an install tree's bin folder; cannot copy it")
    install = binaries.bin_dir.parent
    package = install.parent
    trees = {Path(package.name, install.name): install}
    bundled_libraries = package.parent / f"{package.name}.libs"
    if bundled_libraries.is_dir():
        trees[Path(bundled_libraries.name)] = bundled_libraries
    copy = shared_copy_folder(binaries)
    if not copy.exists():
        try:
            _copy_trees_atomically(trees, copy)
        except OSError as error:
            raise StackError(f"could not copy {install} to {copy}: {error}") from error
    _check_only_we_can_change(copy)
    return replace(binaries, bin_dir=copy / package.name / install.name / "bin", copied_from=binaries.bin_dir)


def shared_copy_folder(binaries: PgBinaries) -> Path:
    """Where ``shared_copy`` puts them: a reinstall replaces ``postgres``, so its mtime tells copies apart."""
    postgres_mtime = (binaries.bin_dir / "postgres").stat().st_mtime_ns
    digest = hashlib.sha256(f"{binaries.bin_dir}\0{postgres_mtime}".encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"repro-pipeline-pg-{binaries.major_version}-{digest}"


def _copy_trees_atomically(trees: Mapping[Path, Path], destination: Path) -> None:
    """Copy each source tree to its relative place in ``destination``, which appears complete or not at all."""
    staging = Path(tempfile.mkdtemp(dir=destination.parent, prefix=f"{destination.name}.partial-"))
    try:
        for relative, source in trees.items():
            shutil.copytree(source, staging / relative, symlinks=True)
        _let_everyone_read_and_run(staging)
        try:
            os.rename(staging, destination)
        except OSError:
            if not destination.is_dir():  # else a concurrent `up` renamed its identical copy there first
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _let_everyone_read_and_run(tree: Path) -> None:
    for folder, _, files in os.walk(tree):
        os.chmod(folder, 0o755)
        for name in files:
            path = Path(folder, name)
            if not path.is_symlink():
                path.chmod(0o755 if path.stat().st_mode & 0o111 else 0o644)


def _check_only_we_can_change(copy: Path) -> None:
    # Its name under the shared temp dir is predictable: someone else's folder there could hold anything.
    info = copy.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid() or info.st_mode & 0o022:
        raise StackError(
            f"{copy} is not a folder only this account can change, so its binaries cannot be trusted; "
            "remove it and retry"
        )


def _explicit_binaries(bin_dir: Path) -> PgBinaries:
    missing = missing_tools(bin_dir)
    if missing:
        raise StackError(
            f"REPRO_PG_BIN={bin_dir} lacks {', '.join(missing)}; point it at a PostgreSQL bin directory"
        )
    return binaries_in(bin_dir, "env")


def _first_complete(candidates: Iterator[tuple[str, Path | None]], tried: list[str]) -> Path | None:
    for label, bin_dir in candidates:
        if bin_dir is None:
            tried.append(f"{label}: not found")
            continue
        missing = missing_tools(bin_dir)
        if not missing:
            return bin_dir
        tried.append(f"{label}: {bin_dir} lacks {', '.join(missing)}")
    return None


def _system_candidates(search_path: str | None) -> Iterator[tuple[str, Path | None]]:
    yield "pg_config --bindir", _pg_config_bindir(search_path)
    server_dirs = _debian_server_bin_dirs()
    if not server_dirs:
        yield f"{DEBIAN_SERVER_DIRS}/*/bin", None
    for bin_dir in server_dirs:
        yield f"{DEBIAN_SERVER_DIRS}/*/bin", bin_dir
    initdb = shutil.which("initdb", path=search_path)
    if initdb is None:
        yield "initdb on PATH", None
        return
    yield "initdb on PATH", Path(initdb).parent
    # /usr/local/bin/initdb is often a lone symlink: its target's folder has the siblings.
    yield "initdb on PATH (resolved)", Path(initdb).resolve().parent


def _pg_config_bindir(search_path: str | None) -> Path | None:
    pg_config = shutil.which("pg_config", path=search_path)
    if pg_config is None:
        return None
    try:
        result = subprocess.run(
            [pg_config, "--bindir"], check=True, capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return Path(result.stdout.strip())


def _debian_server_bin_dirs() -> list[Path]:
    """``/usr/lib/postgresql/<version>/bin`` folders, highest version first."""
    versions = [path for path in DEBIAN_SERVER_DIRS.glob("*/bin") if path.parent.name.isdigit()]
    return sorted(versions, key=lambda path: int(path.parent.name), reverse=True)


def _pgserver_candidates() -> Iterator[tuple[str, Path | None]]:
    # find_spec locates the package without running its __init__ (we only need the folder).
    spec = importlib.util.find_spec("pgserver")
    if spec is None or not spec.submodule_search_locations:
        yield "pgserver package", None
        return
    yield "pgserver package", Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def _major_version(bin_dir: Path) -> int:
    command = [str(bin_dir / "postgres"), "--version"]
    try:
        result = subprocess.run(command, check=True, capture_output=True, text=True, timeout=30)
    except subprocess.CalledProcessError as error:
        raise StackError(f"`{' '.join(command)}` failed: {one_line(error.stderr)}") from error
    except (OSError, subprocess.SubprocessError) as error:
        raise StackError(f"`{' '.join(command)}` could not run: {error}") from error
    match = re.search(r"\(PostgreSQL\) (\d+)", result.stdout)
    if match is None:
        raise StackError(f"`{' '.join(command)}` printed no version: {one_line(result.stdout)}")
    return int(match.group(1))


def _not_found_message(choice: str, tried: list[str]) -> str:
    remedies = {
        "system": "install the PostgreSQL server (e.g. `apt-get install postgresql`)",
        "pgserver": "install the pgserver wheel (`pip install pgserver`)",
        "auto": "install the PostgreSQL server (e.g. `apt-get install postgresql`) or `pip install pgserver`",
    }
    return (
        f"no PostgreSQL server binaries ({', '.join(REQUIRED_TOOLS)}) found; tried: {'; '.join(tried)}. "
        f"To fix: {remedies[choice]}, or set REPRO_PG_BIN to a directory holding them"
    )
