"""The default secret sink: one file per repro database, mode 0600, in a folder of mode 0700."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from repro_pipeline.engine.errors import SecretError
from repro_pipeline.engine.repro_databases.secret_sink import FileSecretSink, SecretSink
from repro_pipeline.engine.secrets import Secret

DSN = Secret(
    "host=127.0.0.1 dbname=repro_org451_0123abcd user=repro_org451_0123abcd_reader password=not-to-be-shown"
)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_dsn_is_kept_in_a_file_only_its_owner_reads_and_replaced_whole(tmp_path: Path) -> None:
    sink: SecretSink = FileSecretSink(tmp_path / "secrets" / "repro")
    reference = sink.store("repro_org451_0123abcd", DSN)
    path = Path(reference)
    assert path == tmp_path / "secrets" / "repro" / "repro_org451_0123abcd.dsn"
    assert path.read_text() == DSN.reveal() + "\n"
    assert _mode(path) == 0o600 and _mode(path.parent) == 0o700
    assert sink.store("repro_org451_0123abcd", Secret("password=new")) == reference
    assert path.read_text() == "password=new\n" and _mode(path) == 0o600
    assert [entry.name for entry in path.parent.iterdir()] == [path.name]  # no partial file left
    sink.remove("repro_org451_0123abcd")
    assert not path.exists()
    sink.remove("repro_org451_0123abcd")  # nothing kept there: no error


def test_a_folder_open_to_others_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "shared"
    folder.mkdir()
    folder.chmod(0o755)
    with pytest.raises(SecretError) as raised:
        FileSecretSink(folder).store("repro_org451_0123abcd", DSN)
    assert raised.value.problem == (
        f"the secret folder {folder} (REPRO_SECRET_DIR) is open to group or others (mode 755)"
    )
    assert raised.value.remedy == f"chmod 700 {folder}"
    assert list(folder.iterdir()) == []


def test_a_symlinked_folder_is_refused(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir(mode=0o700)
    (tmp_path / "link").symlink_to(real)
    with pytest.raises(SecretError, match="is not a folder \\(symlinks are refused\\)"):
        FileSecretSink(tmp_path / "link").store("repro_org451_0123abcd", DSN)
    assert list(real.iterdir()) == []


@pytest.mark.parametrize("name", ["../escape", "repro/org", "", "Repro", "a" * 64])
def test_a_name_that_is_not_a_plain_file_name_is_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(SecretError, match="cannot name a secret file"):
        FileSecretSink(tmp_path / "secrets").store(name, DSN)
    assert not (tmp_path / "secrets").exists()


def test_the_error_never_shows_the_dsn(tmp_path: Path) -> None:
    blocked = tmp_path / "file-not-folder"
    blocked.write_text("")
    with pytest.raises(SecretError) as raised:
        FileSecretSink(blocked / "secrets").store("repro_org451_0123abcd", DSN)
    assert "cannot create the secret folder" in raised.value.problem
    assert "not-to-be-shown" not in str(raised.value)
