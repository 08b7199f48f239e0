"""The operator key: the secret that every server-changing API of tritonserver demands.

`serve` (and the Dockerfiles, Kubernetes manifests and bare-tritonserver recipes) start tritonserver
with `--http-restricted-api` and `--grpc-restricted-protocol` for the APIs in `RESTRICTED_APIS`, so a
client without the key cannot load or unload a model (a `file:` override would run its code in a
stub), change logging or tracing, or register shared memory. Inference, health, metadata, model
configuration (read-only) and statistics stay open: clients and perf_analyzer need them.

Where the key comes from, first match wins:
1. the environment variable `UGT_OPERATOR_KEY` (the value itself; on Kubernetes, from a Secret);
2. the file named by `UGT_OPERATOR_KEY_FILE`, or the file passed explicitly;
3. the default key file `operator.key` in the run-state folder (`$UGT_STATE_DIR`, else
   `$XDG_STATE_HOME/ugt-ensemble`, else `~/.local/state/ugt-ensemble`); `serve` generates it (0600) when
   it is absent, and `deploy`/`rollback`/`versions`/`variant` on the same machine read it from there.

A key file must be owned by the current user or root and unreadable by others; the run-state folder, new or
found, must be a real folder (no symlink) of the current user or root that its group and others cannot write.

Rotate the key by writing a new one (or a new Secret) and restarting the server.
"""

from __future__ import annotations

import os
import re
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path

from ugt_ensemble.errors import ConfigError

#: The request header (HTTP) / metadata key (gRPC) that carries the key; gRPC needs it lower-case.
HEADER = "ugt-operator-key"
GRPC_HEADER_PREFIX = "triton-grpc-protocol-"
ENV_KEY = "UGT_OPERATOR_KEY"
ENV_KEY_FILE = "UGT_OPERATOR_KEY_FILE"
ENV_STATE_DIR = "UGT_STATE_DIR"
KEY_FILE_NAME = "operator.key"
#: APIs that change or reconfigure the server; the names are the same for HTTP and gRPC.
RESTRICTED_APIS = ("model-repository", "logging", "trace", "shared-memory")
#: What the key may hold: it travels in a command-line flag `api,...:header=key` and an HTTP header.
_KEY_PATTERN = re.compile(r"[A-Za-z0-9_~.+/-]{16,256}")


@dataclass(frozen=True)
class OperatorKey:
    """The key's value and where it came from (`source` is safe to print; `value` is not)."""

    value: str
    source: str

    def __post_init__(self) -> None:
        if not _KEY_PATTERN.fullmatch(self.value):
            raise ConfigError(
                f"operator key from {self.source} is not usable: it needs 16-256 characters from "
                "A-Z a-z 0-9 _ ~ . + / - (generate one with: "
                "python -c 'import secrets; print(secrets.token_urlsafe(32))')"
            )

    def http_headers(self) -> dict[str, str]:
        """HTTP request headers that carry the key (curl: `-H 'ugt-operator-key: ...'`)."""
        return {HEADER: self.value}

    def grpc_headers(self) -> dict[str, str]:
        """gRPC metadata that carries the key: tritonserver expects the `triton-grpc-protocol-` prefix.

        Pass it as tritonclient.grpc's `headers=` (e.g. `client.load_model(name, headers=key.grpc_headers())`).
        """
        return {GRPC_HEADER_PREFIX + HEADER: self.value}

    def server_args(self) -> tuple[str, str]:
        """tritonserver flags that demand the key for `RESTRICTED_APIS` over HTTP and gRPC."""
        return restricted_api_args(f"{HEADER}={self.value}")

    def __repr__(self) -> str:  # never print the secret
        return f"OperatorKey(source={self.source!r})"


def restricted_api_args(key_value: str) -> tuple[str, str]:
    """The two restriction flags for a literal `header=value` (also `header=$(ENV)` in a k8s manifest)."""
    apis = ",".join(RESTRICTED_APIS)
    return f"--http-restricted-api={apis}:{key_value}", f"--grpc-restricted-protocol={apis}:{key_value}"


def state_dir() -> Path:
    """The run-state folder: `$UGT_STATE_DIR`, `$XDG_STATE_HOME/ugt-ensemble` or ~/.local/state/ugt-ensemble."""
    if os.environ.get(ENV_STATE_DIR):
        return Path(os.environ[ENV_STATE_DIR])
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "ugt-ensemble"


def default_key_file() -> Path:
    return state_dir() / KEY_FILE_NAME


def load_operator_key(key_file: Path | None = None, create: bool = False) -> OperatorKey:
    """The operator key from the environment, `key_file`, or the default key file.

    With `create`, a missing key file is generated (random, mode 0600, its folder 0700); without it, a
    missing key is a `ConfigError` that says how to provide one.
    """
    if os.environ.get(ENV_KEY):
        return OperatorKey(os.environ[ENV_KEY].strip(), f"${ENV_KEY}")
    path = key_file or (Path(os.environ[ENV_KEY_FILE]) if os.environ.get(ENV_KEY_FILE) else default_key_file())
    if path == default_key_file() and os.path.lexists(path.parent):
        check_state_dir(path.parent)  # whoever can write it could put their own key there
    if path.is_file():
        return _read_key_file(path)
    if not create:
        where = f"{path}: no such file" if key_file is not None else f"`serve` on this machine writes {path}"
        raise ConfigError(
            f"no operator key: set ${ENV_KEY} to the key, or pass --operator-key-file FILE (or set ${ENV_KEY_FILE}); "
            f"{where}; the server's load/unload/logging APIs refuse requests without it"
        )
    return _write_key_file(path)


def check_state_dir(folder: Path) -> None:
    """ConfigError unless the run-state folder is a real folder (no symlink) that the current user or root owns and
    that neither its group nor others can write (like ssh's checks of ~/.ssh)."""
    info = os.lstat(folder)
    if stat.S_ISLNK(info.st_mode):
        problem = f"is a symbolic link (to {os.readlink(folder)!r})"
    elif not stat.S_ISDIR(info.st_mode):
        problem = "is not a folder"
    elif info.st_uid not in (os.geteuid(), 0):
        problem = _not_yours(info.st_uid)
    elif info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        problem = f"is writable by its group or others (mode {oct(info.st_mode & 0o777)})"
    else:
        return
    raise ConfigError(
        f"run-state folder {folder} {problem}: whoever can change it could replace the operator key; use a folder "
        f"of your own, mode 700 (${ENV_STATE_DIR}=DIR, or remove {folder} and let `serve` create it)"
    )


def _not_yours(uid: int) -> str:
    me = os.geteuid()
    return f"is owned by {_owner(uid)}, not by you ({_owner(me)})" + (" or root" if me != 0 else "")


def _owner(uid: int) -> str:
    try:
        import pwd

        return f"uid {uid} ({pwd.getpwuid(uid).pw_name})"
    except (ImportError, KeyError):
        return f"uid {uid}"


def _read_key_file(path: Path) -> OperatorKey:
    info = path.stat()
    mode = info.st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(f"operator key file {path} is readable by others (mode {oct(mode & 0o777)}); chmod 600 it")
    if info.st_uid not in (os.geteuid(), 0):
        raise ConfigError(
            f"operator key file {path} {_not_yours(info.st_uid)}: its owner can change the key; chown it to "
            "yourself, or write a new key file"
        )
    try:
        value = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read operator key file {path}: {exc}") from exc
    return OperatorKey(value, str(path))


def _write_key_file(path: Path) -> OperatorKey:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if path == default_key_file():
        check_state_dir(path.parent)  # an existing folder is used only if it is safe
    value = secrets.token_urlsafe(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process wrote it first: use theirs
        return _read_key_file(path)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(value + "\n")
    return OperatorKey(value, str(path))
