"""CPU per request with the model step replaced by a no-op: what preprocess + postprocess cost a GPU host.

On a GPU host the model step runs on the GPU, and the CPU pays for the Python steps, Triton's scheduling and the
hops between them. `run_noop` measures that on this machine: it copies a built repository twice (`noop_repos`: the
no-op model step, and the two-hop floor of constant steps with the same tensors), serves both with real
tritonservers (loopback, free ports, no watchdog), and drives each ensemble with perf_analyzer over gRPC at every
concurrency, interleaved (round, concurrency, target), metering each server process's CPU per request (`cpu`).
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from ugt_ensemble.repository.inspect import RepositoryInfo
from ugt_ensemble_dev.bench import perf_analyzer as pa
from ugt_ensemble_dev.bench.cpu import CpuMeter
from ugt_ensemble_dev.bench.machine import describe_machine
from ugt_ensemble_dev.bench.noop_repos import (
    capture_floor_rows,
    make_floor_repository,
    make_noop_repository,
    perf_histories,
)
from ugt_ensemble_dev.bench.perf_analyzer_output import PerfAnalyzerResult
from ugt_ensemble_dev.bench.perf_runs import STABILITY_PERCENTAGE

LOGGER = logging.getLogger(__name__)
NOOP, FLOOR = "no-op model step", "two-hop floor"
TARGETS = (NOOP, FLOOR)


@dataclass(frozen=True)
class NoopConfig:
    """What `run_noop` measures: perf_analyzer's concurrency values, interleaved rounds and window."""

    concurrency: tuple[int, ...] = (1, 2, 4, 8)
    rounds: int = 3
    measurement_ms: int = 4000
    stability_percentage: int = STABILITY_PERCENTAGE


@dataclass(frozen=True)
class Measurement:
    """One perf_analyzer run of one target's ensemble, with the server CPU ms per request by process."""

    target: str
    concurrency: int
    round: int
    result: PerfAnalyzerResult
    cpu_ms: dict[str, float]


@dataclass(frozen=True)
class NoopRun:
    """Everything `run_noop` measured, and what the report says about the setup."""

    info: RepositoryInfo
    config: NoopConfig
    input_data: Path
    measurements: list[Measurement]
    machine: dict[str, str]


@contextlib.contextmanager
def serving(repository: Path, info: RepositoryInfo, log: Path) -> Iterator[tuple[str, int]]:
    """(gRPC address, tritonserver pid) of a server on `repository` until the block ends: served as `serve`
    serves it (explicit model control, a probe through the ensemble, cleanup), without a watchdog."""
    from ugt_ensemble.server.context import ServingContext

    ready = [info.ensemble, info.preprocess, info.model_step, info.postprocess]
    LOGGER.info("starting tritonserver on %s", repository)
    with ServingContext.create(repository, info.ensemble, ready_models=ready, watch_interval_s=0, log_path=log) as ctx:
        yield ctx.grpc_url, ctx.pid  # type: ignore[misc]


def run_noop(info: RepositoryInfo, workdir: Path, input_data: Path, config: NoopConfig) -> NoopRun:
    """Build both copies of `info`'s repository under `workdir`, serve them, and measure (see the module)."""
    analyzer = pa.PerfAnalyzer.locate()  # before any server starts
    workdir.mkdir(parents=True, exist_ok=True)
    noop = make_noop_repository(info, workdir / "noop")
    with serving(noop, info, workdir / "noop.log") as (noop_url, noop_pid):
        rows = capture_floor_rows(noop_url, info, perf_histories(input_data))
        floor = make_floor_repository(info, workdir / "floor", rows)
        with serving(floor, info, workdir / "floor.log") as (floor_url, floor_pid):
            servers = {NOOP: (noop_url, noop_pid), FLOOR: (floor_url, floor_pid)}
            machine = describe_machine(noop_url)
            measurements = _interleaved(analyzer, info.ensemble, servers, input_data, config, workdir / "perf")
    return NoopRun(info, config, input_data, measurements, machine)


def _interleaved(
    analyzer: pa.PerfAnalyzer,
    ensemble: str,
    servers: dict[str, tuple[str, int]],
    input_data: Path,
    config: NoopConfig,
    folder: Path,
) -> list[Measurement]:
    """Each (round, concurrency, target) once, in that order; runs with no stable measurement are left out.
    `servers`: target -> (gRPC address, tritonserver pid); its stubs are looked up before each run (a stub
    that a load replaced may linger for a moment after the server is ready)."""
    measurements = []
    for round_no in range(1, config.rounds + 1):
        for value in config.concurrency:
            for target, (url, pid) in servers.items():
                LOGGER.info("perf_analyzer: %s at concurrency %d, round %d", target, value, round_no)
                out = folder / target.replace(" ", "_") / f"c{value}_round{round_no}"
                with CpuMeter(pid, url).measure(ensemble) as cpu:
                    results = pa.run(
                        analyzer, url, ensemble, input_data, [value], out, config.measurement_ms,
                        stability_percentage=config.stability_percentage,
                    )  # fmt: skip
                measurements += [Measurement(target, value, round_no, r, by_model(cpu)) for r in results if r.ok]
    return measurements


def by_model(cpu_ms: dict[str, float]) -> dict[str, float]:
    """`CpuMeter`'s process -> ms summed by model: "preprocess#2" (a second instance, or the stub of a load that
    replaced another) adds to "preprocess"."""
    summed: dict[str, float] = {}
    for name, ms in cpu_ms.items():
        key = name.split("#", 1)[0]
        summed[key] = summed.get(key, 0.0) + ms
    return summed
