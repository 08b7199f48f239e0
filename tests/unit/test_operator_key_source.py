"""The operator key: where it comes from, how it is kept (0600), what is refused, and that it never prints."""

from __future__ import annotations

import stat

import pytest

from ugt_ensemble.errors import ConfigError
from ugt_ensemble.server.operator_key import (
    ENV_KEY,
    ENV_KEY_FILE,
    ENV_STATE_DIR,
    KEY_FILE_NAME,
    RESTRICTED_APIS,
    OperatorKey,
    _write_key_file,
    default_key_file,
    load_operator_key,
    restricted_api_args,
)

GOOD = "k" * 20 + "-_.~+/0"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path):
    """No key in the environment; the run-state folder is a fresh temporary one."""
    for name in (ENV_KEY, ENV_KEY_FILE):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(ENV_STATE_DIR, str(tmp_path / "state"))


def _write(path, text: str, mode: int):
    path.write_text(text)
    path.chmod(mode)
    return path


def test_the_environment_wins(monkeypatch, tmp_path):
    _write(tmp_path / "file.key", "f" * 32, 0o600)
    monkeypatch.setenv(ENV_KEY, f"  {GOOD}\n")
    monkeypatch.setenv(ENV_KEY_FILE, str(tmp_path / "file.key"))
    key = load_operator_key(tmp_path / "file.key")
    assert key.value == GOOD and key.source == f"${ENV_KEY}"


def test_the_file_named_by_the_environment_then_the_explicit_file(monkeypatch, tmp_path):
    named = _write(tmp_path / "named.key", "n" * 32 + "\n", 0o600)
    given = _write(tmp_path / "given.key", "g" * 32, 0o400)
    monkeypatch.setenv(ENV_KEY_FILE, str(named))
    assert load_operator_key().value == "n" * 32
    assert load_operator_key(given) == OperatorKey("g" * 32, str(given))


def test_a_missing_key_is_generated_0600_in_the_state_folder_only_when_asked(tmp_path):
    with pytest.raises(ConfigError, match=f"no operator key: set \\${ENV_KEY}"):
        load_operator_key()
    assert not (tmp_path / "state").exists()
    key = load_operator_key(create=True)
    path = tmp_path / "state" / KEY_FILE_NAME
    assert default_key_file() == path and key.source == str(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) & 0o077 == 0
    assert path.read_text().strip() == key.value and len(key.value) >= 32
    assert load_operator_key() == key == load_operator_key(create=True)  # read back, never regenerated


def test_the_state_folder_follows_xdg_without_ugt_state_dir(monkeypatch, tmp_path):
    monkeypatch.delenv(ENV_STATE_DIR)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    assert default_key_file() == tmp_path / "xdg" / "ugt-ensemble" / KEY_FILE_NAME


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660, 0o644])
def test_a_key_file_others_can_read_is_refused(tmp_path, mode):
    path = _write(tmp_path / "open.key", "o" * 32, mode)
    with pytest.raises(ConfigError, match=f"{path} is readable by others .*chmod 600"):
        load_operator_key(path)


@pytest.mark.parametrize("bad", ["short", "x" * 257, "has space" * 3, "semi;colon" * 3, "comma,key" * 3, "é" * 20])
def test_unusable_keys_are_refused_without_echoing_them(monkeypatch, bad):
    monkeypatch.setenv(ENV_KEY, bad)
    with pytest.raises(ConfigError, match=f"from \\${ENV_KEY} is not usable") as caught:
        load_operator_key()
    assert bad not in str(caught.value)


def test_an_empty_key_file_is_refused(tmp_path):
    path = _write(tmp_path / "empty.key", "\n", 0o600)
    with pytest.raises(ConfigError, match="is not usable"):
        load_operator_key(path)


def test_the_secret_never_prints():
    key = OperatorKey(GOOD, "a test")
    assert GOOD not in repr(key) and GOOD not in str(key) and GOOD not in f"{key!r} {[key]}"
    assert "a test" in repr(key)


def test_headers_and_server_flags_carry_the_key():
    key = OperatorKey(GOOD, "a test")
    assert key.http_headers() == {"ugt-operator-key": GOOD}
    assert key.grpc_headers() == {"triton-grpc-protocol-ugt-operator-key": GOOD}
    http, grpc = key.server_args()
    apis = ",".join(RESTRICTED_APIS)
    assert http == f"--http-restricted-api={apis}:ugt-operator-key={GOOD}"
    assert grpc == f"--grpc-restricted-protocol={apis}:ugt-operator-key={GOOD}"
    assert set(RESTRICTED_APIS) == {"model-repository", "logging", "trace", "shared-memory"}
    from_env = "ugt-operator-key=$(UGT_OPERATOR_KEY)"  # how a Kubernetes manifest passes a Secret's value
    assert restricted_api_args(from_env)[0].endswith(f":{from_env}")


def test_two_processes_creating_the_key_agree(tmp_path):
    """O_EXCL: whoever writes second reads the first one's key instead of replacing it."""
    first = load_operator_key(create=True)
    assert _write_key_file(default_key_file()) == first  # the race's loser: the file exists when it opens it
