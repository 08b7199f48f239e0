"""One serving context: tritonserver on a built repository, ready, probed and watched, then stopped and cleaned up.

`serve` (through its `Supervisor`), the benchmark and the reliability suite all serve a repository this way:
- `server_args` holds the arguments of a served repository in one place: explicit model control (the
  repository API stays open for deploys, rollbacks and the watchdog's healing), latency summaries on the
  metrics endpoint (read by `stats`), and the prefix of the Python backend's shared-memory regions, so that
  the cleanup finds exactly this server's regions;
- `start` starts tritonserver; in explicit mode it then loads the repository's models through the API, the
  steps only with the versions an ensemble serves (`server.served_loads`: `--load-model=*` loaded every
  version the policies keep for a rollback); it waits until the ready models are ready, sends a real inference
  through the ensemble (up to 3 attempts, 1 s apart), then starts the watchdog (explicit mode with
  `watch_interval_s` > 0; its loads and reloads must finish within `heal_timeout_s`);
- `stop` stops the watchdog and the server, then removes the stub processes and shared memory it left.
As a context manager it starts on entry and always stops on exit; `Supervisor` calls `start` and `stop`
again for each restart.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Sequence

from ugt_ensemble.errors import ServerError
from ugt_ensemble.server.operator_key import OperatorKey
from ugt_ensemble.server.orphans import Cleanup, clean_up_after, new_shm_prefix, shm_prefix_args
from ugt_ensemble.server.probe import probe_ensemble
from ugt_ensemble.server.process import Ports, TritonServer
from ugt_ensemble.server.watchdog import Watchdog

#: Explicit model control with every model loaded at start: the repository API stays open. (`serve` starts with
#: `EXPLICIT_MODE` alone and loads the served versions itself: `server.served_loads`.)
EXPLICIT_ARGS = ("--model-control-mode=explicit", "--load-model=*")
EXPLICIT_MODE = EXPLICIT_ARGS[:1]
#: Latency quantiles per model on the metrics endpoint (read by `python -m ugt_ensemble stats`).
METRICS_ARGS = ("--metrics-config=summary_latencies=true",)


def server_args(explicit: bool = True, shm_prefix: str | None = None, load_all: bool = True) -> tuple[str, ...]:
    """The tritonserver arguments of a served repository (model control, metrics, shared-memory prefix); explicit
    mode loads every model at start unless `load_all` is False (then the caller loads them)."""
    prefix = shm_prefix_args(shm_prefix) if shm_prefix else ()
    control = (EXPLICIT_ARGS if load_all else EXPLICIT_MODE) if explicit else ()
    return control + METRICS_ARGS + prefix


class ServingContext:
    """`server` serving `ensemble`: started, probed and watched by `start`, stopped and cleaned up by `stop`."""

    def __init__(
        self,
        server: TritonServer,
        ensemble: str,
        watch_interval_s: float = 2.0,
        shm_prefix: str | None = None,
        heal_timeout_s: float = 60.0,
    ) -> None:
        self.server, self.ensemble = server, ensemble
        self.watch_interval_s, self.shm_prefix = watch_interval_s, shm_prefix
        self.heal_timeout_s = heal_timeout_s
        #: Models `start` loads through the API and waits for (explicit mode: `served_loads.load_repository`).
        self.load_models: tuple[str, ...] | None = None
        self.watchdog: Watchdog | None = None
        #: What each `stop` removed after the server (one entry per stop of a started server).
        self.cleanups: list[Cleanup] = []

    @classmethod
    def create(
        cls,
        repository: str | Path,
        ensemble: str | None = None,
        *,
        ports: Ports | None = None,
        host: str = "127.0.0.1",
        ready_models: Sequence[str] = (),
        startup_timeout_s: float = 180.0,
        log_path: str | Path | None = None,
        explicit: bool = True,
        watch_interval_s: float = 2.0,
        operator_key: OperatorKey | None = None,
        heal_timeout_s: float = 60.0,
    ) -> ServingContext:
        """A context for `repository` (not started): `ensemble` defaults to the build manifest's, the ready
        models to the ensemble; the watchdog runs only in explicit mode (0 s: no watchdog)."""
        from ugt_ensemble.repository.manifest import ensemble_name

        ensemble = ensemble or ensemble_name(Path(repository))
        prefix = new_shm_prefix()
        args = server_args(explicit, prefix, load_all=False)
        ready = list(ready_models) or [ensemble]
        server = TritonServer(
            repository, ports, host, [] if explicit else ready, startup_timeout_s, log_path, args,
            operator_key=operator_key,
        )  # fmt: skip
        context = cls(server, ensemble, watch_interval_s if explicit else 0.0, prefix, heal_timeout_s)
        context.load_models = tuple(ready) if explicit else None
        return context

    @property
    def grpc_url(self) -> str:
        return self.server.grpc_url

    @property
    def pid(self) -> int | None:
        """The running tritonserver's pid (None before the first start)."""
        return self.server.process.pid if self.server.process is not None else None

    def start(self) -> ServingContext:
        """Start tritonserver, probe the ensemble, start the watchdog (see the module docstring).

        A failed start or probe raises and leaves the server to `stop`."""
        self.server.start()
        if self.load_models is not None:
            self.load_served()
        self.probe()
        if self.watch_interval_s > 0:
            self.watchdog = Watchdog(
                self.server.grpc_url,
                self.server.process.pid,  # type: ignore[union-attr]
                self.server.model_repository,
                self.ensemble,
                self.watch_interval_s,
                headers=self.server.grpc_operator_headers(),
                load_timeout_s=self.heal_timeout_s,
            ).start()
        return self

    def load_served(self) -> None:
        """Load the repository's models (the steps with the versions an ensemble serves), then wait for the ready
        models; ServerError naming a model that failed to load."""
        from ugt_ensemble.server.served_loads import load_repository

        headers = self.server.grpc_operator_headers()
        load_repository(self.server.grpc_url, self.server.model_repository, headers, self.server.startup_timeout_s)
        self.server.wait_ready(self.load_models or ())

    def probe(self, attempts: int = 3) -> None:
        """A real inference through the ensemble; ServerError if it fails `attempts` times, 1 s apart."""
        for attempt in range(attempts):
            try:
                probe_ensemble(self.server.grpc_url, self.ensemble)
                return
            except Exception as exc:  # noqa: BLE001 - a client error is a failed probe too
                if attempt == attempts - 1:
                    raise exc if isinstance(exc, ServerError) else ServerError(f"the probe failed: {exc}") from None
                time.sleep(1.0)

    def stop_watchdog(self) -> None:
        if self.watchdog is not None:
            self.watchdog.stop()
            self.watchdog = None

    def stop(self) -> int | None:
        """Stop the watchdog and the server, then remove what the server left; its exit code (None: never started)."""
        self.stop_watchdog()
        if self.server.process is None:
            return None
        code = self.server.stop()
        self.cleanups.append(clean_up_after(self.server.process.pid, self.shm_prefix))
        return code

    def __enter__(self) -> ServingContext:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
        self.server.__exit__(*exc_info)  # its temporary folder (the backend directory)
