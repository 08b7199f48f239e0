"""`bench --tune`: try model-step settings on a live server and pick the fastest for the ensemble.

The server runs with `--model-control-mode=explicit`, and each candidate is applied by reloading the
model step with a config override (Triton's load API), so nothing restarts. Candidates are measured in
interleaved rounds, because a shared machine drifts over minutes, and compared by their median
ensemble throughput at one concurrency. A candidate replaces the current settings only when it is
faster by more than `margin` and its median p99 is at most `p99_slack` worse; otherwise the current
settings stay, and the report says why.
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass, field

import tritonclient.grpc as grpcclient
from tritonclient.grpc import model_config_pb2 as mc
from tritonclient.utils import InferenceServerException

from ugt_ensemble.client.load import LoadSpec, run_load
from ugt_ensemble.client.load_results import BenchmarkResult, median_run
from ugt_ensemble.errors import ConfigError
from ugt_ensemble.repository.inspect import RepositoryInfo
from ugt_ensemble.repository.step_settings import StepSettings, config_json, with_settings
from ugt_ensemble.server.operator_key import OperatorKey
from ugt_ensemble_dev.bench.profiles import TuneConfig
from ugt_ensemble_dev.bench.targets import make_target
from ugt_ensemble_dev.bench.workload import workload_of

__all__ = ["Candidate", "TuneConfig", "TuneResult", "candidate_grid", "choose", "run_tune", "tune_markdown"]
LOGGER = logging.getLogger(__name__)


@dataclass
class Candidate:
    """One setting's runs (one per round); `error` when the server refused to load it."""

    settings: StepSettings
    runs: list[BenchmarkResult] = field(default_factory=list)
    error: str = ""

    @property
    def median(self) -> BenchmarkResult | None:
        """The median-throughput run (None before any run)."""
        return median_run(self.runs, key=lambda run: run.throughput) if self.runs else None


@dataclass
class TuneResult:
    """Every candidate measured, the current settings, and the chosen ones with the reason."""

    current: StepSettings
    candidates: list[Candidate]
    chosen: StepSettings
    reason: str


def candidate_grid(
    current: StepSettings, instances: tuple[int, ...], threads: tuple[int, ...], delays: tuple[int, ...]
) -> list[StepSettings]:
    """The current settings first, then every combination of instance_count, intra-op threads (only
    where the engine has them) and queue delay."""
    thread_values = (None,) if current.intra_op_threads is None else threads
    grid = [StepSettings(i, t, d) for i, t, d in itertools.product(instances, thread_values, delays)]
    return [current] + [s for s in dict.fromkeys(grid) if s != current]


def tune_grid(current: StepSettings, config: TuneConfig, cores: int) -> list[StepSettings]:
    """`candidate_grid` over the values `config` tries on a machine with `cores` cores."""
    return candidate_grid(current, *config.axes(cores))


def run_tune(
    url: str,
    info: RepositoryInfo,
    step_config: mc.ModelConfig,
    settings: list[StepSettings],
    config: TuneConfig,
    show_progress: bool = True,
    operator_key: OperatorKey | None = None,
) -> TuneResult:
    """Measure every candidate (`settings[0]` is the current one) on the model step `info.model_step`
    and leave the server on the winner. `operator_key`: the server's key for its load API."""
    measurement = config.measurement(url)
    target = make_target("ensemble", info, workload_of(measurement, info))
    spec = LoadSpec.of(measurement, config.concurrency)
    candidates = [Candidate(s) for s in settings]
    headers = operator_key.grpc_headers() if operator_key is not None else None
    with grpcclient.InferenceServerClient(url) as client:
        for round_index in range(config.rounds):
            for candidate in (c for c in candidates if not c.error):
                LOGGER.info("tune round %d/%d: %s", round_index + 1, config.rounds, candidate.settings.label())
                overrides = with_settings(step_config, candidate.settings)
                candidate.error = _load(client, info.model_step, overrides, headers)
                if candidate.error:
                    LOGGER.warning("  not loadable: %s", candidate.error)
                    continue
                candidate.runs.append(run_load(target, url, spec, show_progress))
                LOGGER.info("  %s", candidate.runs[-1].summary())
        chosen, reason = choose(candidates, config.margin, config.p99_slack)
        error = _load(client, info.model_step, with_settings(step_config, chosen), headers)
    if error:
        raise ConfigError(f"could not reload {info.model_step!r} with the chosen settings: {error}")
    return TuneResult(settings[0], candidates, chosen, reason)


def choose(candidates: list[Candidate], margin: float, p99_slack: float) -> tuple[StepSettings, str]:
    """The winner among `candidates` (the first is the current settings) and why."""
    current = candidates[0]
    if current.median is None:
        raise ConfigError(f"the current settings ({current.settings.label()}) could not be measured: {current.error}")
    base = current.median
    measured = [c for c in candidates[1:] if c.median and c.median.failed_requests == 0]
    eligible = [c for c in measured if c.median.latency_p99 <= base.latency_p99 * (1 + p99_slack)]
    best = max(eligible, key=lambda c: c.median.throughput, default=None)
    if best is None or best.median.throughput <= base.throughput * (1 + margin):
        why = f"no candidate was more than {margin:.0%} faster with p99 within {p99_slack:.0%}"
        fastest = max(measured, key=lambda c: c.median.throughput, default=None)
        if fastest is not None:
            m = fastest.median
            why += (
                f"; fastest other: {fastest.settings.label()} at {m.throughput / base.throughput:.2f}x "
                f"the throughput, {m.latency_p99 / base.latency_p99:.2f}x the p99"
            )
        return current.settings, f"kept the current settings ({why})"
    ratio = best.median.throughput / base.throughput
    return best.settings, f"{best.settings.label()}: {ratio:.2f}x the current throughput, p99 within {p99_slack:.0%}"


def tune_markdown(result: TuneResult, config: TuneConfig) -> str:
    """The candidates as a Markdown table (median run of each, spread over rounds), then the choice."""
    lines = [
        f"Ensemble at concurrency {config.concurrency}, history lengths `{config.history_lengths}`, "
        f"{config.duration_s:g} s per run, {config.rounds} interleaved rounds; median-throughput run shown.\n",
        "| model-step settings | req/s | req/s over rounds | p50 ms | p99 ms | failed | |",
        "|---|---|---|---|---|---|---|",
    ]
    for c in result.candidates:
        mark = "chosen" if c.settings == result.chosen else ("current" if c.settings == result.current else "")
        m = c.median
        if m is None:
            lines.append(f"| {c.settings.label()} | - | - | - | - | - | not loadable: {c.error} |")
            continue
        spread = f"{min(r.throughput for r in c.runs):.0f}-{max(r.throughput for r in c.runs):.0f}"
        lines.append(
            f"| {c.settings.label()} | {m.throughput:.1f} | {spread} | {m.latency_p50:.2f} | {m.latency_p99:.2f} | "
            f"{m.failed_requests} | {mark} |"
        )
    return "\n".join(lines) + f"\n\nChoice: {result.reason}.\n"


def _load(
    client: grpcclient.InferenceServerClient, model: str, config: mc.ModelConfig, headers: dict[str, str] | None
) -> str:
    """Reload `model` with `config` as override (`headers`: the operator key's); an error message, or ""."""
    try:
        client.load_model(model, headers=headers, config=config_json(config))
    except InferenceServerException as exc:
        return exc.message() or str(exc)
    return ""
