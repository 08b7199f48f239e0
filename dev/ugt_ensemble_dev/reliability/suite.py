"""The reliability suite behind RELIABILITY.md: every scenario on one real server, then the report.

`python -m ugt_ensemble_dev.reliability --output RELIABILITY.md` (scripts/reliability.sh) builds a CPU
repository, serves it as `serve` does (`ServingContext`: explicit model control, the probe, the watchdog,
the cleanup after the server), and runs, in
order: poisoned BYTES tensors, the largest shapes, a soak, overload and a burst, the queue-policy trade-off,
a rollout and rollback, fuzzed requests, and a kill -9 of each stub; then it stops the server and records
how the stop went. `--short` runs every scenario for seconds (what CI runs).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np

from ugt_ensemble_dev.reliability import scenarios
from ugt_ensemble_dev.reliability.scenarios import Live, Section

LOGGER = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Durations:
    """How long each scenario runs (seconds unless named otherwise)."""

    soak_s: float = 600.0
    soak_window_s: float = 60.0
    overload_s: float = 30.0
    burst: int = 500
    policy_rates: tuple[float, ...] = (20.0, 100.0, 300.0)
    policy_s: float = 10.0
    rollout_wait_s: float = 5.0
    kill_settle_s: float = 12.0
    fuzz_requests: int = 10_000
    poison_rounds: int = 60

    @classmethod
    def short(cls) -> Durations:
        return cls(10.0, 5.0, 5.0, 200, (20.0, 100.0), 2.0, 2.0, 8.0, 300, 10)


def run_suite(
    workdir: Path, durations: Durations, repository: Path | None = None
) -> tuple[list[Section], dict[str, str]]:
    """Run every scenario (see the module docstring); the report's sections and the machine's description."""
    from ugt_ensemble.repository.inspect import RepositoryInfo
    from ugt_ensemble.server.context import ServingContext
    from ugt_ensemble_dev.bench.machine import describe_machine

    repo = _repository(workdir, repository)
    info = RepositoryInfo.read(repo)
    histories = _histories(info, 256, "32-1024")
    sections: list[Section] = []
    context = ServingContext.create(repo, info.ensemble, log_path=workdir / "tritonserver.log", watch_interval_s=0.5)
    with context:
        server = context.server
        machine = describe_machine(server.grpc_url)
        live = Live(
            server.grpc_url, server.http_url, server.process.pid, repo, info.ensemble, histories, server.operator_key
        )
        steps = _steps(live, info, durations, workdir, context.watchdog)
        for number, (name, step) in enumerate(steps, 1):
            LOGGER.info("[%d/%d] reliability: %s ...", number, len(steps), name)
            started = time.monotonic()
            sections.append(step())
            LOGGER.info("[%d/%d] reliability: %s: done (%.0f s)", number, len(steps), name, time.monotonic() - started)
        context.stop_watchdog()
        start = time.monotonic()
        code = server.stop()
        sections.append(_stop_section(code, time.monotonic() - start))
    return sections, machine


Step = tuple[str, Callable[[], Section]]


def _steps(live: Live, info, durations: Durations, workdir: Path, watchdog) -> list[Step]:  # noqa: ANN001
    d = durations
    rng = np.random.default_rng(3)
    longest = [_json(info.index.item_ids, 1024, rng) for _ in range(64)]
    index_b, catalog_b = _permuted_catalog(info, workdir)
    python_steps = [info.preprocess, info.model_step, info.postprocess]
    return [
        ("poisoned BYTES tensors", lambda: scenarios.poisoned_bytes(live, d.poison_rounds)),
        ("largest shapes", lambda: scenarios.largest_shapes(live, info.model_step, longest)),
        (f"soak ({d.soak_s:.0f} s)", lambda: scenarios.soak(live, d.soak_s, d.soak_window_s)),
        ("overload and burst", lambda: scenarios.overload(live, d.overload_s, d.burst)),
        (
            "queue policy",
            lambda: scenarios.queue_policy(
                live, d.policy_rates, d.policy_s, lambda on: _policy(live, python_steps, on)
            ),
        ),
        ("rollout and rollback", lambda: scenarios.rollout(live, catalog_b, info.index, index_b, d.rollout_wait_s)),
        (f"{d.fuzz_requests} fuzzed requests", lambda: _fuzz(live, d.fuzz_requests)),
        (
            "kill -9 of each stub",
            lambda: scenarios.stub_kills(live, python_steps, d.kill_settle_s, lambda: watchdog.heals),
        ),
    ]


def _repository(workdir: Path, given: Path | None) -> Path:
    """A copy of `given` (rollouts change it), or a fresh CPU build."""
    target = workdir / "repository"
    if given is not None:
        shutil.copytree(given, target)
        return target
    from ugt_ensemble.build import build_repository
    from ugt_ensemble.config import BuildConfig, ExportConfig, target_server_settings
    from ugt_ensemble.progress import StepProgress

    export, triton = target_server_settings("cpu-wheel")
    config = BuildConfig(output_dir=target, export=ExportConfig(**export), triton=triton, target_server="cpu-wheel")
    build_repository(config, StepProgress())
    return target


def _histories(info, count: int, lengths: str) -> list[str]:  # noqa: ANN001
    from ugt_ensemble.histories import LengthDistribution

    rng = np.random.default_rng(0)
    return [_json(info.index.item_ids, int(n), rng) for n in LengthDistribution(lengths).sample(count, rng)]


def _json(item_ids: np.ndarray, length: int, rng: np.random.Generator) -> str:
    from ugt_ensemble.histories import history_json, random_history

    return history_json(random_history(item_ids, length, rng))


def _permuted_catalog(info, workdir: Path):  # noqa: ANN001, ANN202
    """Catalog B: the same item ids with the codes shuffled among them (answers tell which one served)."""
    from ugt_ensemble.catalog import Catalog, save_catalog_csv

    order = np.random.default_rng(1).permutation(len(info.index))
    b = Catalog.from_arrays(info.index.item_ids, info.index.codes[order], info.index.codebook_sizes, "catalog B")
    save_catalog_csv(b, workdir / "catalog_b.csv")
    return b.index(), workdir / "catalog_b.csv"


def _policy(live: Live, models: list[str], enabled: bool) -> None:
    """Turn a queue policy (max_queue_size 128) on or off on `models`, through the load API."""
    import tritonclient.grpc as grpcclient

    headers = live.grpc_headers()
    with grpcclient.InferenceServerClient(live.grpc_url) as client:
        for model in models:
            if not enabled:
                client.load_model(model, headers=headers)  # back to the file on disk
                continue
            config = client.get_model_config(model, as_json=True)["config"]
            config.setdefault("dynamic_batching", {})["default_queue_policy"] = {"max_queue_size": 128}
            client.load_model(model, headers=headers, config=json.dumps(config))


def _fuzz(live: Live, count: int) -> Section:
    from ugt_ensemble_dev.reliability.fuzz_server import fuzz_server

    repository = live.repository  # its catalog and item sets: documents with business rules join the fuzzing
    result = fuzz_server(live.grpc_url, live.http_url, live.ensemble, live.server_pid, count, repository=repository)
    return Section(f"{count} fuzzed requests at concurrency 8", result.markdown(), result.ok)


def _stop_section(code: int | None, seconds: float) -> Section:
    text = (
        f"SIGINT to exit: {seconds:.1f} s, exit code {code}. (Once a stub has been killed, tritonserver 2.51 waits "
        "out its 10 s exit timeout and exits 1, even after the model was reloaded; measured without a kill: 2-3 s, 0.)"
    )
    return Section("Stopping the server after all of the above", text)


def new_workdir() -> Path:
    return Path(tempfile.mkdtemp(prefix="ugt-reliability-"))
