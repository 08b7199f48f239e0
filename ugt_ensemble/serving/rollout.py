"""Roll versions out and back on a running server, with no request failed and none mixing versions.

The server runs in explicit model-control mode (`serve` does by default). Triton keeps serving a loaded
version while it loads another, and an ensemble swaps its pinned steps at once, so the order is:
1. pin what is served explicitly (once: a fresh build's ensemble follows the latest version);
2. add version N to the steps' policies and load the steps (the served version stays loaded as it is);
3. pin N in the ensemble and load it: requests sent after this point get N, those before finish on N-1.
Rolling back is step 3 with an older version; cleaning up lowers the policies first, then deletes.
Without a server URL the same file changes are made, and a (re)started server serves them.

`ModelVersionManager` is the seeds' face of the same functions (002 §10.3).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from ugt_ensemble.errors import ConfigError, ServerError
from ugt_ensemble.progress import StepProgress
from ugt_ensemble.serving.deploy import add_version
from ugt_ensemble.serving.versions import VersionedRepository

LOGGER = logging.getLogger(__name__)


class Rollout:
    """Deploy, roll back and clean up the versions of `repository`, live at `url` when given."""

    def __init__(self, repository: str | Path, url: str | None = None) -> None:
        self.repo = VersionedRepository(repository)
        self.url = url

    def deploy(
        self, changes: dict[str, Any], catalog_path: Path | None = None, switch: bool = True,
        number: int | None = None, progress: StepProgress | None = None,
    ) -> int:  # fmt: skip
        """Build version N and (with `switch`) serve it; returns N."""
        self._pin_explicitly()
        number = add_version(self.repo.path, changes, catalog_path, number, progress)
        self.repo = VersionedRepository(self.repo.path)
        self.load(*self.repo.steps)
        if switch:
            self.switch(number)
        return number

    def switch(self, version: int) -> None:
        """Serve `version` (rollout or rollback): pin it and reload the ensemble."""
        if version not in self.repo.loaded_policy():
            raise ConfigError(f"version {version} is not kept loaded (versions loaded: {self.repo.loaded_policy()})")
        self.repo.pin(version)
        self.load(self.repo.ensemble)
        LOGGER.info("%s now serves version %d", self.repo.ensemble, version)

    def rollback(self, version: int | None = None) -> int:
        """Serve `version` (default: the newest one older than the served one); returns it."""
        served = self.repo.pinned()
        if version is None:
            older = [v for v in self.repo.loaded_policy() if v < served]
            if not older:
                raise ConfigError(f"no version older than {served} is kept; pass the version to serve")
            version = max(older)
        self.switch(version)
        return version

    def cleanup(self, keep: int = 3) -> list[int]:
        """Keep the newest `keep` versions and the served one; delete the others. Returns the deleted."""
        if keep < 1:
            raise ConfigError(f"`keep` must be >= 1, got {keep}")
        numbers, served = self.repo.numbers(), self.repo.pinned()
        kept = sorted(set(numbers[-keep:]) | {served})
        removed = [v for v in numbers if v not in kept]
        if removed:
            self.repo.keep_loaded(kept)
            self.load(*self.repo.steps)
            for version in removed:
                self.repo.remove(version)
        return removed

    def _pin_explicitly(self) -> None:
        """A fresh build follows the latest version; before another version appears, pin the served one."""
        if self.repo.pins_explicitly() and self.repo.has_specific_policy():
            return
        served = self.repo.pinned()
        self.repo.pin(served)
        self.load(self.repo.ensemble)
        self.repo.keep_loaded([served])
        self.load(*self.repo.steps)

    def load(self, *models: str) -> None:
        if self.url is None:
            return
        import tritonclient.grpc as grpcclient
        from tritonclient.utils import InferenceServerException

        with grpcclient.InferenceServerClient(self.url) as client:
            for model in models:
                try:
                    client.load_model(model)
                except InferenceServerException as exc:
                    message = exc.message() if callable(getattr(exc, "message", None)) else str(exc)
                    hint = " (run the server in explicit model-control mode: serve --model-control explicit)"
                    raise ServerError(f"{self.url}: loading {model} failed: {message}" + (
                        hint if "polling is enabled" in message else "")) from None  # fmt: skip
                if not client.is_model_ready(model):
                    raise ServerError(f"{self.url}: {model} is not ready after loading it")


class ModelVersionManager:
    """The seeds' version manager (002 §10.3): `deploy_version`, `rollback`, `cleanup_old_versions`.

    `model_name` is the ensemble (a version is all three steps together); `model_file` is the new model
    step: a torch.export archive (.pt2) or an ONNX file (.onnx).
    """

    def __init__(self, model_repository: str | Path, triton_url: str | None = None) -> None:
        self.repository = Path(model_repository)
        self.triton_url = triton_url

    def deploy_version(
        self,
        model_name: str,
        model_file: str | Path,
        version: int | None = None,
        catalog_path: str | Path | None = None,
    ) -> int:
        """Build `model_file` as version `version` (default: the next) and serve it; returns the version."""
        rollout = self._rollout(model_name)
        source = Path(model_file)
        changes = {"onnx_path": source} if source.suffix == ".onnx" else {"model_file": source}
        return rollout.deploy(changes, Path(catalog_path) if catalog_path else None, number=version)

    def rollback(self, model_name: str, version: int) -> None:
        """Serve `version` again."""
        self._rollout(model_name).rollback(version)

    def cleanup_old_versions(self, model_name: str, keep: int = 3) -> None:
        """Delete all but the newest `keep` versions (and the served one)."""
        self._rollout(model_name).cleanup(keep)

    def _rollout(self, model_name: str) -> Rollout:
        rollout = Rollout(self.repository, self.triton_url)
        if rollout.repo.ensemble != model_name:
            raise ConfigError(f"{self.repository} serves the ensemble {rollout.repo.ensemble!r}, not {model_name!r}")
        return rollout
