"""Roll versions out and back on a running server, with no request failed and none mixing versions.

The server runs in explicit model-control mode (`serve` does by default). Triton keeps serving a loaded
version while it loads another, and an ensemble swaps its pinned steps at once, so the order is:
1. pin what is served explicitly (once: a fresh build's ensemble follows the latest version);
2. add version N to the steps' policies and load the steps (the served version stays loaded as it is);
3. pin N in the ensemble and load it: requests sent after this point get N, those before finish on N-1.
Rolling back is step 3 with an older version; cleaning up lowers the policies first, then deletes.
Without a server URL the same file changes are made, and a (re)started server serves them.

Each operation holds the repository's lock (`serving.lock`) and reads the repository again once it has it:
two deploys at once build N+1 and N+2 one after the other, and a rollback asked for during a deploy
waits for it and then rolls back from the version the deploy left. A server URL needs the operator key
(`serving.live.resolve_operator_key`), which every load sends.

`ModelVersionManager` is the Python API's face of the same functions, named by the ensemble it serves.
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import Any, Iterator

from ugt_ensemble.errors import ConfigError, ServerError, UgtEnsembleError
from ugt_ensemble.progress import StepProgress
from ugt_ensemble.repository.lock import DEFAULT_TIMEOUT_S, RepositoryLock
from ugt_ensemble.server import served_loads
from ugt_ensemble.server.operator_key import OperatorKey
from ugt_ensemble.serving.deploy import add_version
from ugt_ensemble.serving.live import LiveServer, resolve_operator_key
from ugt_ensemble.serving.unchanged import UnchangedVersion
from ugt_ensemble.serving.variants import add_variant
from ugt_ensemble.serving.versions import VersionedRepository
from ugt_ensemble.serving.write_failure import write_failure

LOGGER = logging.getLogger(__name__)


class Rollout:
    """Deploy, roll back and clean up the versions of `repository`, live at `url` when given.

    `operator_key` is the key of the server's load API (default: `resolve_operator_key`); a version
    operation waits up to `lock_timeout_s` for another one on the same repository to finish.
    """

    def __init__(
        self, repository: str | Path, url: str | None = None, operator_key: OperatorKey | None = None,
        lock_timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> None:  # fmt: skip
        self.repo = VersionedRepository(repository)
        self.url = url
        self.server = LiveServer(url, operator_key or resolve_operator_key(url)) if url else None
        self.lock_timeout_s = lock_timeout_s
        #: Seconds the last operation waited for the repository's lock.
        self.lock_waited_s = 0.0
        #: After `cleanup`: the versions it kept because an ensemble serves them, and which.
        self.kept_for: dict[int, list[str]] = {}
        #: After a `deploy` that changed nothing: why no version was made (None otherwise).
        self.unchanged: str | None = None

    def deploy(
        self, changes: dict[str, Any], catalog_path: Path | None = None, switch: bool = True,
        number: int | None = None, progress: StepProgress | None = None, allow_set_changes: bool = False,
    ) -> int:  # fmt: skip
        """Build version N and (with `switch`) serve it; returns N. A version that would drop an item set the
        served one serves is refused (`serving.set_changes.SetChangeError`) unless `allow_set_changes`. One that
        would be the served version again is not made: the served version's number is returned and `unchanged`
        says why."""
        with self.locked("deploy"):
            try:
                self._pin_explicitly()
            except OSError as exc:  # a full disk: the configs are written atomically, so none changed
                raise write_failure(self.repo, None, exc) from None
            try:
                number = add_version(
                    self.repo.path, changes, catalog_path, number, progress, allow_set_changes, allow_unchanged=False
                )
            except UnchangedVersion as same:
                LOGGER.info("%s: %s", self.repo.path, same)
                self.unchanged = str(same)
                return same.served
            self.repo = VersionedRepository(self.repo.path)
            self.load_steps(number)
            if switch:
                self.switch(number)
            return number

    def switch(self, version: int, history: list[int] | None = None) -> None:
        """Serve `version` (rollout or rollback): pin it and reload the ensemble; then record `history` (default:
        the served history with `version` added) as the versions served (`VersionedRepository.served_history`)."""
        with self.locked("switch"):
            if version not in self.repo.loaded_policy():
                raise ConfigError(
                    f"version {version} is not kept loaded (versions loaded: {self.repo.loaded_policy()})"
                )
            previous = self.repo.pinned()
            history = history or [*self.repo.served_history(), version]
            self.ensure_loaded(version)
            self.repo.pin(version)
            try:
                self.load(self.repo.ensemble)
            except UgtEnsembleError:
                self.repo.pin(previous)  # the files keep saying what the server serves
                raise
            if version != previous:
                try:
                    self.repo.record_served(history)
                except OSError as exc:  # served all the same; only `rollback`'s default goes by it
                    LOGGER.warning("%s: cannot record the versions served (%s)", self.repo.path, exc)
            LOGGER.info("%s now serves version %d", self.repo.ensemble, version)

    def rollback(self, version: int | None = None) -> int:
        """Serve `version` (default: the version served before the served one was switched to, `previous`);
        returns it."""
        with self.locked("rollback"):
            if version is not None:
                self.switch(version)
                return version
            version, history = self.previous()
            self.switch(version, history)
            return version

    def previous(self) -> tuple[int, list[int]]:
        """The version served before the served one, and the history that rolling back to it leaves (the served
        history up to it: rolling back again goes one further). Versions no longer kept are skipped; with no
        history recorded (a repository switched before it was), the newest older version kept."""
        served, kept = self.repo.pinned(), set(self.repo.loaded_policy()) & set(self.repo.numbers())
        history = self.repo.served_history()
        for position in range(len(history) - 2, -1, -1):
            if history[position] in kept and history[position] != served:
                return history[position], history[: position + 1]
        older = [v for v in kept if v < served]
        if not older:
            raise ConfigError(f"no version served before {served} is kept; pass the version to serve (--version)")
        LOGGER.warning("%s: no version served before %d is recorded; rolling back to the newest older one kept, %d",
                       self.repo.path, served, max(older))  # fmt: skip
        return max(older), [max(older)]

    def cleanup(self, keep: int = 3) -> list[int]:
        """Keep the newest `keep` versions and every version an ensemble serves (the repository's own, its
        variants, and with a URL any the server's loaded ensembles serve); delete the others from the
        steps' policies, then from disk. Returns the deleted."""
        if keep < 1:
            raise ConfigError(f"`keep` must be >= 1, got {keep}")
        with self.locked("cleanup"):
            numbers = self.repo.numbers()
            self.kept_for = self.served_versions()
            kept = sorted(set(numbers[-keep:]) | (set(self.kept_for) & set(numbers)))
            removed = [v for v in numbers if v not in kept]
            if removed:
                self.repo.keep_loaded(kept)
                self.load_steps(*(self.server.ready_versions(self.repo.steps) if self.server else ()))
                for version in removed:
                    self.repo.remove(version)
            return removed

    def add_variant(self, name: str, version: int) -> Path:
        """Write ensemble `name` serving `version` (`serving.variants.add_variant`) and load it."""
        with self.locked("variant"):
            path = add_variant(self.repo.path, name, version)
            self.repo = VersionedRepository(self.repo.path)
            self.ensure_loaded(version)
            self.load(name)
            return path

    def served_versions(self) -> dict[int, list[str]]:
        """{version: [ensembles serving it]} from the files and, with a URL, from the server."""
        served = self.repo.served_by()
        if self.server is not None:
            for version, names in self.server.served_versions(self.repo.steps).items():
                served.setdefault(version, [])
                served[version] += [f"{n} (on the server)" for n in names if n not in served[version]]
        return served

    @contextlib.contextmanager
    def locked(self, operation: str) -> Iterator[None]:
        """Hold the repository's lock for `operation`, with the repository read again once it is held."""
        with RepositoryLock(self.repo.path, operation, self.lock_timeout_s) as lock:
            self.lock_waited_s = max(self.lock_waited_s, lock.waited_s)
            self.repo = VersionedRepository(self.repo.path)
            yield

    def _pin_explicitly(self) -> None:
        """A fresh build follows the latest version; before another version appears, pin the served one."""
        if self.repo.pins_explicitly() and self.repo.has_specific_policy():
            return
        served = self.repo.pinned()
        self.repo.pin(served)
        self.load(self.repo.ensemble)
        self.repo.keep_loaded([served])
        self.load_steps()

    def load(self, *models: str) -> None:
        """Load `models` on the server (nothing without a URL)."""
        if self.server is not None:
            self.server.load(*models)

    def load_steps(self, *extra: int) -> None:
        """Load the steps on the server (nothing without a URL) with the versions an ensemble serves, in the files
        or on the server, and `extra` (`served_loads`): a version no ensemble serves any more is unloaded."""
        if self.server is not None:
            on_server = self.server.served_versions(self.repo.steps)
            self.server.load_steps(self.repo, served_loads.step_versions(self.repo.path, {*on_server, *extra}))

    def ensure_loaded(self, version: int) -> None:
        """Load `version` of the steps if the server has it not ready (e.g. a restarted `serve` loads only the
        served versions), keeping those an ensemble serves."""
        if self.server is None:
            return
        try:
            ready = self.server.ready_versions(self.repo.steps)
        except ServerError as exc:  # an unreachable server: the ensemble's load says so, and the pin goes back
            LOGGER.debug("cannot tell which versions %s has loaded: %s", self.url, exc)
            return
        if version not in ready:
            self.load_steps(version)


class ModelVersionManager:
    """Versions by ensemble name: `deploy_version`, `rollback`, `cleanup_old_versions` (over `Rollout`).

    `model_name` is the ensemble (a version is all three steps together); `model_file` is the new model
    step: a torch.export archive (.pt2) or an ONNX file (.onnx).
    """

    def __init__(
        self, model_repository: str | Path, triton_url: str | None = None, operator_key: OperatorKey | None = None
    ) -> None:
        self.repository = Path(model_repository)
        self.triton_url = triton_url
        self.operator_key = operator_key

    def deploy_version(
        self,
        model_name: str,
        model_file: str | Path,
        version: int | None = None,
        catalog_path: str | Path | None = None,
        allow_set_changes: bool = False,
    ) -> int:
        """Build `model_file` as version `version` (default: the next) and serve it; returns the version.
        Dropping an item set the served version serves needs `allow_set_changes`."""
        rollout = self._rollout(model_name)
        source = Path(model_file)
        changes = {"onnx_path": source} if source.suffix == ".onnx" else {"model_file": source}
        catalog = Path(catalog_path) if catalog_path else None
        return rollout.deploy(changes, catalog, number=version, allow_set_changes=allow_set_changes)

    def rollback(self, model_name: str, version: int) -> None:
        """Serve `version` again."""
        self._rollout(model_name).rollback(version)

    def cleanup_old_versions(self, model_name: str, keep: int = 3) -> None:
        """Delete all but the newest `keep` versions (and the served one)."""
        self._rollout(model_name).cleanup(keep)

    def _rollout(self, model_name: str) -> Rollout:
        rollout = Rollout(self.repository, self.triton_url, self.operator_key)
        if rollout.repo.ensemble != model_name:
            raise ConfigError(f"{self.repository} serves the ensemble {rollout.repo.ensemble!r}, not {model_name!r}")
        return rollout
