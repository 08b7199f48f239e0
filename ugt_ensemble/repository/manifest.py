"""`ugt_build.json`: what a build wrote into a model repository, read back only when it can be trusted.

The manifest lists the model folders and every file a build wrote (paths relative to the repository).
The next build of the same repository deletes nothing else; a manifest that is not ours, does not
parse, or names a path outside the repository is an error, never a licence to delete.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from ugt_ensemble.config import require_model_name
from ugt_ensemble.errors import ConfigError, InputFileError, RepositoryError

MANIFEST = "ugt_build.json"
GENERATOR = "ugt-ensemble"
#: Files that builds before manifests listed their files wrote into each model folder.
LEGACY_FILES = (
    "config.pbtxt",
    "1/model.py",
    "1/triton_io.py",
    "1/catalog.npz",
    "1/model.onnx",
    "1/model.plan",
    "1/model.plan.json",
    "1/checkpoint.pt",
    "1/ugt_runtime/*.py",
)


def read_manifest(repository: Path) -> Any:
    """The build manifest of `repository`; InputFileError naming the file if it is missing or unreadable."""
    path = Path(repository) / MANIFEST
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputFileError(f"{path}: cannot read the build manifest ({exc})") from None


def read_manifest_or_empty(repository: Path) -> dict[str, Any]:
    """The build manifest of `repository` as a dict, or {} when it is missing, unreadable or not a JSON object
    (for readers that fall back to the configs: checks, k8s rendering, the watchdog's expected models)."""
    try:
        manifest = read_manifest(repository)
    except InputFileError:
        return {}
    return manifest if isinstance(manifest, dict) else {}


def write_manifest(repository: Path, manifest: dict[str, Any]) -> Path:
    """Write `manifest` as `repository`/ugt_build.json (atomically: a reader sees the old or the new one)."""
    path = Path(repository) / MANIFEST
    partial = path.with_name(f".{MANIFEST}.{os.getpid()}.tmp")
    try:
        partial.write_text(json.dumps(manifest, indent=2, default=str) + "\n", encoding="utf-8")
        os.replace(partial, path)
    except OSError:  # e.g. a full disk: the manifest stays as it was, no partial file beside it
        partial.unlink(missing_ok=True)
        raise
    return path


@dataclass(frozen=True)
class ModelNames:
    """The models a build wrote, by role, as its manifest names them."""

    ensemble: str
    preprocess: str
    model_step: str
    postprocess: str
    naive_peer: str | None = None

    @property
    def steps(self) -> tuple[str, str, str]:
        """The ensemble's steps, in request order."""
        return (self.preprocess, self.model_step, self.postprocess)


def model_names(manifest: Any) -> ModelNames:
    """The names a parsed manifest records (the one reader of them); KeyError naming the missing field,
    TypeError when the manifest or its `triton` section is not a mapping."""
    if not isinstance(manifest, dict) or not isinstance(manifest.get("triton", {}), dict):
        raise TypeError("the manifest is not a JSON object with a `triton` object")
    triton = manifest["triton"]
    names = (manifest["ensemble"], triton["preprocess_name"], triton["step_name"], triton["postprocess_name"])
    if not all(isinstance(name, str) for name in names):
        raise TypeError(f"the manifest's model names {list(names)} are not all strings")
    return ModelNames(*names, naive_peer=triton.get("naive_peer_name") if triton.get("naive_peer") else None)


def ensemble_name(repository: Path, default: str = "ugt_recommend") -> str:
    """The ensemble a build wrote into `repository` (from its manifest), else `default`."""
    try:
        return model_names(read_manifest(repository)).ensemble
    except (InputFileError, KeyError, TypeError):
        return default


@dataclass(frozen=True)
class PreviousBuild:
    """The model folders and files a previous build recorded (empty when there was none)."""

    models: tuple[str, ...] = ()
    files: frozenset[str] = frozenset()
    legacy: bool = False  # written before manifests listed files: `LEGACY_FILES` stand in for the list

    def wrote(self, relative: str) -> bool:
        """True if the previous build wrote `relative` (a posix path inside the repository)."""
        if relative in self.files:
            return True
        model, _, inside = relative.partition("/")
        return self.legacy and model in self.models and any(PurePosixPath(inside).match(p) for p in LEGACY_FILES)


def previous_build(repository: Path) -> PreviousBuild:
    """What the manifest of `repository` says a previous build wrote.

    Raises RepositoryError when a manifest exists but cannot be trusted (not ours, unreadable, or naming
    anything but model folders and files inside them).
    """
    path = Path(repository) / MANIFEST
    if not path.exists() and not path.is_symlink():
        return PreviousBuild()
    try:
        if path.is_symlink() or not path.is_file():
            raise ValueError("it is not a regular file")
        manifest = json.loads(path.read_text(encoding="utf-8"))
        return _trusted(manifest)
    except (OSError, ValueError, TypeError, ConfigError) as exc:
        raise RepositoryError(
            f"{path} cannot be trusted ({exc}), so build will not delete anything on its word; "
            "move the file away or choose another --output-dir (nothing was changed)"
        ) from None


def _trusted(manifest: object) -> PreviousBuild:
    if not isinstance(manifest, dict) or not str(manifest.get("generator", "")).startswith(GENERATOR):
        raise ValueError(f"it was not written by {GENERATOR}")
    models = manifest.get("models")
    if not isinstance(models, list):
        raise ValueError('"models" is not a list')
    names = tuple(require_model_name(m) for m in models)
    files = manifest.get("files")
    if files is None:
        return PreviousBuild(names, frozenset(), legacy=True)
    if not isinstance(files, list):
        raise ValueError('"files" is not a list')
    return PreviousBuild(names, frozenset(_inside_a_model(f, names) for f in files))


def _inside_a_model(relative: object, models: tuple[str, ...]) -> str:
    """`relative` if it is a plain posix path below one of `models`, else ValueError."""
    if not isinstance(relative, str):
        raise ValueError(f'"files" holds {relative!r}, not a path')
    parts = PurePosixPath(relative).parts
    if relative.startswith("/") or len(parts) < 2 or parts[0] not in models or any(p in ("", ".", "..") for p in parts):
        raise ValueError(f'"files" holds {relative[:200]!r}, which is not a file inside one of its models')
    return str(PurePosixPath(relative))
