"""Whose key and whose folder: a key file another user owns is refused, and so is a run-state folder that is a
symlink, belongs to another user or that others can write (they could swap the key `serve` uses); a folder of
one's own, 0700, is used as before. Runs as root or not: the foreign owner is a uid no test user has."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ugt_ensemble.errors import ConfigError
from ugt_ensemble.server.operator_key import ENV_KEY, ENV_KEY_FILE, ENV_STATE_DIR, KEY_FILE_NAME, load_operator_key

ROOT = Path(__file__).parents[2]
STRANGER = 4321
KEY = "s" * 32


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path):
    for name in (ENV_KEY, ENV_KEY_FILE):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(ENV_STATE_DIR, str(tmp_path / "state"))


def _needs_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("giving a file to another user needs root")


def _key_file(path: Path, owner: int | None = None) -> Path:
    path.write_text(KEY + "\n")
    path.chmod(0o600)
    if owner is not None:
        os.chown(path, owner, owner)
    return path


def test_a_key_file_another_user_owns_is_refused(tmp_path):
    _needs_root()
    path = _key_file(tmp_path / "their.key", STRANGER)
    with pytest.raises(ConfigError, match=f"operator key file {path} is owned by uid {STRANGER}.*chown it"):
        load_operator_key(path)
    os.chown(path, os.geteuid(), os.getegid())
    assert load_operator_key(path).value == KEY


@pytest.mark.parametrize("mode", [0o777, 0o770, 0o702])
def test_a_state_folder_others_can_write_is_refused_for_reading_and_for_creating(tmp_path, mode):
    state = tmp_path / "state"
    state.mkdir()
    state.chmod(mode)
    for create in (False, True):
        with pytest.raises(ConfigError, match=f"run-state folder {state} is writable by its group or others"):
            load_operator_key(create=create)
    assert not (state / KEY_FILE_NAME).exists()  # nothing written into it
    state.chmod(0o700)
    assert load_operator_key(create=True).source == str(state / KEY_FILE_NAME)


def test_a_symlinked_or_foreign_state_folder_is_refused(tmp_path):
    real = tmp_path / "elsewhere"
    real.mkdir(mode=0o700)
    (tmp_path / "state").symlink_to(real)
    with pytest.raises(ConfigError, match="run-state folder .*state is a symbolic link"):
        load_operator_key(create=True)
    assert list(real.iterdir()) == []
    _needs_root()
    (tmp_path / "state").unlink()
    (tmp_path / "state").mkdir(mode=0o700)
    os.chown(tmp_path / "state", STRANGER, STRANGER)
    with pytest.raises(ConfigError, match=f"is owned by uid {STRANGER}"):
        load_operator_key()


def test_the_cli_stops_with_one_line_on_an_unsafe_state_folder(tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    _key_file(state / KEY_FILE_NAME)
    state.chmod(0o777)  # anyone could have put this key there
    command = [sys.executable, "-m", "ugt_ensemble", "versions", "--model-repository", str(tmp_path / "none"),
               "--url", "127.0.0.1:9"]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k not in (ENV_KEY, ENV_KEY_FILE)} | {ENV_STATE_DIR: str(state)}
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert f"run-state folder {state} is writable by its group or others (mode 0o777)" in result.stderr
    assert "Traceback" not in result.stderr
