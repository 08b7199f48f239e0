"""A/B variants: two ensembles served side by side in one server, and a stable router between them.

`add_variant` writes a second ensemble into a repository that pins another version of the same steps
(`serving.versions`), so both variants share the steps' instances. `ABTestingRouter` sends each user to one
variant by a hash that does not change between processes: Python's `hash()` of a string is salted per
process, so a router built on it would move a user from one variant to the other between clients.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from ugt_ensemble.config import require_model_name
from ugt_ensemble.errors import ConfigError
from ugt_ensemble.repository.manifest import write_manifest
from ugt_ensemble.repository.rules import read_config
from ugt_ensemble.serving.versions import VersionedRepository, write_config

BUCKETS = 10_000


class ABTestingRouter:
    """Send a stable `traffic_split` share of users to `model_a`, the rest to `model_b`."""

    def __init__(self, model_a: str, model_b: str, traffic_split: float = 0.5) -> None:
        if not 0.0 <= traffic_split <= 1.0:
            raise ConfigError(f"`traffic_split` must be in [0, 1], got {traffic_split}")
        self.model_a, self.model_b, self.traffic_split = model_a, model_b, traffic_split

    def route(self, user_id: str | int) -> str:
        """The variant of `user_id`: the same in every process, on every machine."""
        return self.model_a if bucket(user_id) < self.traffic_split * BUCKETS else self.model_b


def bucket(user_id: str | int) -> int:
    """A stable bucket in [0, BUCKETS) for a user id (BLAKE2b of its text)."""
    digest = hashlib.blake2b(str(user_id).encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % BUCKETS


def add_variant(repository: str | Path, name: str, version: int) -> Path:
    """Write ensemble `name` beside the repository's own, serving `version` of the same steps.

    The version must be kept loaded by the steps' policies; returns the new ensemble's config path
    (load it on a running server with the repository API, e.g. `Rollout`'s `_load` or tritonclient).
    """
    repo = VersionedRepository(repository)
    require_model_name(name)
    if name in (repo.ensemble, *repo.steps):
        raise ConfigError(f"{name!r} is already a model of {repo.path}")
    if version not in repo.loaded_policy():
        raise ConfigError(f"version {version} is not kept loaded (loaded: {repo.loaded_policy()}); deploy it first")
    source = repo.path / repo.ensemble / "config.pbtxt"
    config = read_config(source)
    config.name = name
    for step in config.ensemble_scheduling.step:
        step.model_version = version
    target = repo.path / name / "config.pbtxt"
    (repo.path / name / "1").mkdir(parents=True, exist_ok=True)
    target.write_text(source.read_text(encoding="utf-8"), encoding="utf-8")
    write_config(target, config)
    manifest = repo.manifest
    manifest.setdefault("variants", {})[name] = version
    manifest["models"] = sorted(set(manifest.get("models", [])) | {name})
    manifest["files"] = sorted(set(manifest.get("files", [])) | {f"{name}/config.pbtxt"})
    write_manifest(repo.path, manifest)
    return target
