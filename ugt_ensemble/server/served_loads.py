"""Load only the step versions that an ensemble serves.

The steps' `version_policy: specific` lists every version kept for a rollback (`serving.rollout`); loading them
all costs a stub per step, version and instance (and each version's catalog in memory): after two deploys a
restarted `serve` ran 9 stubs where 3 answered requests. So `serve` (explicit model control) starts tritonserver
without `--load-model=*` and calls `load_repository`: each step is loaded with its configuration from disk and the
policy narrowed to the versions that the ensembles on disk (the repository's and its variants) pin
(`step_versions`), then every other model of the repository as its files say. `serving.rollout` narrows its loads
the same way. A server started on the repository any other way (`tritonserver --load-model=*`, a container) loads
what the files list.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterable

from google.protobuf import json_format

from ugt_ensemble.errors import RepositoryError, ServerError
from ugt_ensemble.repository.manifest import model_names, read_manifest
from ugt_ensemble.repository.rules import read_config


def repository_steps(root: Path) -> tuple[str, ...] | None:
    """The three steps the repository's manifest names, when each has a config; None otherwise."""
    try:
        steps = model_names(read_manifest(root)).steps
    except (RepositoryError, KeyError, TypeError, OSError, ValueError):
        return None
    return steps if all((root / step / "config.pbtxt").is_file() for step in steps) else None


def step_versions(root: Path, extra: Iterable[int] = ()) -> list[int] | None:
    """The versions the steps should have loaded: those an ensemble on disk pins, and `extra`, among the versions
    the steps' policies keep and have folders for; None when the policies do not list versions (then load what
    the files say)."""
    steps = repository_steps(root)
    if steps is None:
        return None
    policies = [read_config(root / step / "config.pbtxt").version_policy for step in steps]
    if not all(policy.HasField("specific") for policy in policies):
        return None
    numbers = set.intersection(*({int(p.name) for p in (root / s).iterdir() if p.name.isdigit()} for s in steps))
    kept = set(policies[0].specific.versions) & numbers
    wanted = (_pinned(root, steps, max(numbers, default=0)) | set(extra)) & kept
    return sorted(wanted or kept)


def _pinned(root: Path, steps: tuple[str, ...], latest: int) -> set[int]:
    """The step versions the ensembles on disk pin (-1, the latest version, as `latest`)."""
    pins: set[int] = set()
    for path in root.glob("*/config.pbtxt"):
        try:
            config = read_config(path)
        except RepositoryError:
            continue
        if config.platform == "ensemble":
            pins |= {s.model_version for s in config.ensemble_scheduling.step if s.model_name in steps}
    return {latest if pin == -1 else pin for pin in pins}


def narrowed_config(root: Path, step: str, versions: list[int]) -> str:
    """`step`'s configuration from disk with `version_policy: specific` holding `versions`, as the JSON that
    Triton's load API takes."""
    config = read_config(root / step / "config.pbtxt")
    config.version_policy.ClearField("specific")
    config.version_policy.specific.versions.extend(versions)
    return json_format.MessageToJson(config)


def load_steps(grpc_url: str, root: Path, steps: tuple[str, ...], versions: list[int] | None, headers: dict | None,
               timeout_s: float) -> None:  # fmt: skip
    """Load `steps` (in parallel) with `versions` loaded (None: as their files say)."""
    configs = {step: narrowed_config(root, step, versions) if versions else None for step in steps}
    _load_all(grpc_url, configs, headers, timeout_s)


def load_repository(grpc_url: str, repository: str | Path, headers: dict | None, timeout_s: float) -> list[str]:
    """What `--load-model=*` loads, but the steps only with the versions an ensemble serves: the steps first, then
    every other model of the repository (each group in parallel). Returns the names loaded."""
    root = Path(repository)
    models = sorted(p.parent.name for p in root.glob("*/config.pbtxt"))
    steps = repository_steps(root) or ()
    if steps:
        load_steps(grpc_url, root, steps, step_versions(root), headers, timeout_s)
    _load_all(grpc_url, {name: None for name in models if name not in steps}, headers, timeout_s)
    return models


def _load_all(grpc_url: str, configs: dict[str, str | None], headers: dict | None, timeout_s: float) -> None:
    """Load each model (with its override config when not None) in parallel; ServerError naming those that
    failed."""
    if not configs:
        return
    with ThreadPoolExecutor(max_workers=min(8, len(configs))) as pool:
        failures = [f for f in pool.map(lambda item: _load(grpc_url, *item, headers, timeout_s), configs.items()) if f]
    if failures:
        raise ServerError(f"{grpc_url}: " + "; ".join(failures))


def _load(grpc_url: str, model: str, config: str | None, headers: dict | None, timeout_s: float) -> str | None:
    import tritonclient.grpc as grpcclient
    from tritonclient.utils import InferenceServerException

    try:
        with grpcclient.InferenceServerClient(grpc_url) as client:
            client.load_model(model, headers=headers, config=config, client_timeout=timeout_s)
    except InferenceServerException as exc:
        message = exc.message() if callable(getattr(exc, "message", None)) else str(exc)
        return f"loading {model} failed: {message}"
    return None
