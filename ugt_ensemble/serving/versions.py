"""Versions of a built repository, on disk: the steps hold numbered version folders side by side, and the
ensemble pins one version of all three steps, so a request never mixes versions.

A version N is `preprocess/N/` (its catalog), `<step>/N/` (its model file) and `postprocess/N/` (its
catalog): one model and one catalog together. The steps' configs list the versions Triton keeps loaded
(`version_policy: specific`), and the ensemble's config pins `model_version: N` for each of its steps.
The configs are shared by all versions, so a new version keeps the serving settings (K, engine, batch,
lengths) and brings a new model and/or catalog. `serving.rollout` drives a running server through the
same changes in an order that never fails a request.
"""

from __future__ import annotations

import datetime
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as mc

from ugt_ensemble.config import BuildConfig, ExportConfig, TritonConfig
from ugt_ensemble.errors import RepositoryError
from ugt_ensemble.model.provenance import ModelSource
from ugt_ensemble.repository.manifest import model_names, read_manifest, write_manifest
from ugt_ensemble.repository.rules import read_config

#: The manifest key of the versions the ensemble served, in order (`rollback` with no version goes back one).
HISTORY_KEY = "served_history"
MAX_HISTORY = 100


@dataclass(frozen=True)
class Version:
    """One version of the repository, as the manifest records it."""

    number: int
    created: str
    model_source: str
    catalog: dict[str, Any]
    pinned: bool


class VersionedRepository:
    """The versions of the ensemble that `repository`'s manifest names (see the module docstring)."""

    def __init__(self, repository: str | Path) -> None:
        self.path = Path(repository)
        self.manifest = read_manifest(self.path)
        try:
            names = model_names(self.manifest)
            self.ensemble, self.steps = names.ensemble, names.steps
        except (KeyError, TypeError) as exc:
            raise RepositoryError(f"{self.path}: its manifest lacks {exc}; rebuild it with this version") from None

    def build_config(self, **changes: Any) -> BuildConfig:
        """The settings the repository was built with (from its manifest), with `changes`."""
        export, triton = dict(self.manifest["export"]), dict(self.manifest["triton"])
        export["validation_shapes"] = tuple(tuple(s) for s in export.get("validation_shapes") or ()) or None
        return BuildConfig(
            output_dir=self.path,
            export=ExportConfig(**export),
            triton=TritonConfig.from_dict(triton),
            target_server=self.manifest.get("target_server"),
            **changes,
        )

    def numbers(self) -> list[int]:
        """The versions every step has a folder for, oldest first."""
        sets = [{int(p.name) for p in (self.path / s).iterdir() if p.is_dir() and p.name.isdigit()} for s in self.steps]
        return sorted(set.intersection(*sets))

    def pinned(self) -> int:
        """The version the ensemble serves: its pin, or (unpinned, -1) the latest version."""
        pins = {step.model_version for step in self._ensemble_config().ensemble_scheduling.step}
        if len(pins) != 1:
            raise RepositoryError(f"{self.path}/{self.ensemble}: its steps pin different versions {sorted(pins)}")
        pin = pins.pop()
        return pin if pin != -1 else max(self.numbers())

    def pins_explicitly(self) -> bool:
        """True when the ensemble pins a version (not -1, the latest)."""
        return all(step.model_version != -1 for step in self._ensemble_config().ensemble_scheduling.step)

    def has_specific_policy(self) -> bool:
        """True when every step's version policy lists its versions."""
        return all(read_config(self.path / s / "config.pbtxt").version_policy.HasField("specific") for s in self.steps)

    def versions(self) -> list[Version]:
        """Every version, with what the manifest says about it."""
        records, pinned = self.manifest.get("versions", {}), self.pinned()
        first = {"created": self.manifest.get("created", ""), "model_source": self.manifest.get("model_source", "")}
        result = []
        for number in self.numbers():
            record = records.get(str(number)) or (first | {"catalog": self.manifest.get("catalog", {})})
            result.append(
                Version(number, record["created"], record["model_source"], record.get("catalog", {}), number == pinned)
            )
        return result

    def variants(self) -> dict[str, int | None]:
        """Every other ensemble of the same steps (the manifest's variants and any found on disk) -> the
        version its config pins (None when its config is missing or pins no single version)."""
        names = set(self.manifest.get("variants") or {})
        names |= {p.name for p in self.path.iterdir() if p.is_dir() and (p / "config.pbtxt").is_file()}
        result: dict[str, int | None] = {}
        for name in sorted(names - {self.ensemble, *self.steps}):
            config_path = self.path / name / "config.pbtxt"
            try:
                config = read_config(config_path) if config_path.is_file() else None
            except RepositoryError:
                config = None
            if config is not None and config.platform != "ensemble":
                continue
            steps = [s for s in config.ensemble_scheduling.step if s.model_name in self.steps] if config else []
            if config is not None and not steps:
                continue
            pins = {s.model_version for s in steps}
            if pins == {-1} and self.numbers():  # follows the latest version
                pins = {max(self.numbers())}
            result[name] = pins.pop() if len(pins) == 1 else None
        return result

    def served_by(self) -> dict[int, list[str]]:
        """{version: [ensembles whose config pins it]}: the repository's ensemble and its variants."""
        served: dict[int, list[str]] = {self.pinned(): [self.ensemble]}
        for name, version in self.variants().items():
            if version is not None:
                served.setdefault(version, []).append(name)
        return served

    def pin(self, version: int) -> None:
        """Make the ensemble pin `version` of all three steps (a file change; `rollout` loads it)."""
        if version not in self.numbers():
            raise RepositoryError(f"{self.path}: no version {version} (there are {self.numbers()})")
        config = self._ensemble_config()
        for step in config.ensemble_scheduling.step:
            step.model_version = version
        write_config(self.path / self.ensemble / "config.pbtxt", config)

    def served_history(self) -> list[int]:
        """The versions the ensemble was switched to, oldest first, ending with the one it serves (recorded since
        switches record it: a repository built before starts with the served version alone)."""
        recorded = self.manifest.get(HISTORY_KEY)
        history = [v for v in recorded if type(v) is int] if isinstance(recorded, list) else []
        served = self.pinned()
        return history if history and history[-1] == served else [*history, served]

    def record_served(self, history: list[int]) -> None:
        """Record `history` (see `served_history`; its last `MAX_HISTORY` entries) in the manifest."""
        self.manifest[HISTORY_KEY] = list(history[-MAX_HISTORY:])
        write_manifest(self.path, self.manifest)

    def keep_loaded(self, versions: list[int]) -> None:
        """Set the steps' version policy to exactly `versions`."""
        for step in self.steps:
            path = self.path / step / "config.pbtxt"
            config = read_config(path)
            config.version_policy.CopyFrom(mc.ModelVersionPolicy(specific={"versions": sorted(set(versions))}))
            write_config(path, config)

    def loaded_policy(self) -> list[int]:
        """The versions the steps' policies keep loaded (all of them when the policy is not `specific`)."""
        config = read_config(self.path / self.steps[0] / "config.pbtxt")
        if config.version_policy.HasField("specific"):
            return sorted(config.version_policy.specific.versions)
        return [max(self.numbers())] if not config.version_policy.HasField("all") else self.numbers()

    def model_source(self, number: int) -> ModelSource:
        """The kind and file of version `number`'s model (its record, else the build's for the first)."""
        return ModelSource.from_record(self.manifest.get("versions", {}).get(str(number)) or self.manifest)

    def record(
        self, number: int, model_source: str, catalog: dict[str, Any], files: list[str], model: ModelSource,
        extra: dict[str, Any] | None = None,
    ) -> None:  # fmt: skip
        """Add version `number` to the manifest (its files too, so a later build can replace them):
        `model_source` in words, `model` typed, and the `extra` fields of its record."""
        created = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
        self.manifest.setdefault("versions", {})[str(number)] = {
            "created": created,
            "model_source": model_source,
            "model": model.as_dict(),
            "catalog": catalog,
            **(extra or {}),
        }
        self.manifest["files"] = sorted(set(self.manifest.get("files", [])) | set(files))
        write_manifest(self.path, self.manifest)

    def remove(self, number: int) -> None:
        """Delete version `number`'s folders (only those; the manifest forgets their files)."""
        users = self.served_by().get(number)
        if users:
            raise RepositoryError(f"{self.path}: version {number} is served by {', '.join(users)}; pin another first")
        prefixes = tuple(f"{step}/{number}/" for step in self.steps)
        for step in self.steps:
            folder = self.path / step / str(number)
            if folder.is_dir() and not folder.is_symlink():
                shutil.rmtree(folder)
        self.manifest["files"] = [f for f in self.manifest.get("files", []) if not f.startswith(prefixes)]
        self.manifest.get("versions", {}).pop(str(number), None)
        write_manifest(self.path, self.manifest)

    def _ensemble_config(self) -> mc.ModelConfig:
        return read_config(self.path / self.ensemble / "config.pbtxt")


def write_config(path: Path, config: mc.ModelConfig) -> None:
    """Rewrite a config.pbtxt (keeping its comment header), atomically."""
    header = [line for line in path.read_text(encoding="utf-8").splitlines() if line.startswith("#")]
    partial = path.with_name(f".config.pbtxt.{os.getpid()}.tmp")
    try:
        partial.write_text("\n".join([*header, text_format.MessageToString(config)]), encoding="utf-8")
        os.replace(partial, path)
    except OSError:  # e.g. a full disk: the config stays as it was, no partial file beside it
        partial.unlink(missing_ok=True)
        raise
