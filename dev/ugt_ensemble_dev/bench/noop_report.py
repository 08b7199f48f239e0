"""The no-op benchmark's report: throughput, p50, server CPU per request by process, and requests per second per
CPU core, as medians over the interleaved rounds with their range (Markdown, plus every run as JSON)."""

from __future__ import annotations

import dataclasses
import json
import math
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ugt_ensemble_dev.bench.noop import TARGETS, Measurement, NoopRun
from ugt_ensemble_dev.bench.perf_analyzer_output import PerfAnalyzerResult
from ugt_ensemble_dev.bench.perf_runs import breakdown_markdown

Metric = Callable[[Measurement], float]


@dataclass(frozen=True)
class Roles:
    """The server processes by role (stub names are model names)."""

    preprocess: str
    model_step: str
    postprocess: str
    server: str = "tritonserver"

    def pre_post(self, m: Measurement) -> float:
        """CPU ms per request of the preprocess and postprocess stubs."""
        return m.cpu_ms.get(self.preprocess, 0.0) + m.cpu_ms.get(self.postprocess, 0.0)

    def without_step(self, m: Measurement) -> float:
        """CPU ms per request of the whole server but the model-step stub (what a GPU host's CPU pays when the
        model step is not a Python stub: the Python steps, Triton's scheduling, gRPC)."""
        return self.pre_post(m) + m.cpu_ms.get(self.server, 0.0)


def _groups(run: NoopRun) -> dict[tuple[str, int], list[Measurement]]:
    groups: dict[tuple[str, int], list[Measurement]] = {}
    for m in run.measurements:
        groups.setdefault((m.target, m.concurrency), []).append(m)
    order = {t: i for i, t in enumerate(TARGETS)}
    return dict(sorted(groups.items(), key=lambda item: (item[0][1], order.get(item[0][0], 99))))


def _cell(runs: list[Measurement], metric: Metric, digits: int = 0) -> str:
    """The median (min-max) of `metric` over `runs` (the median alone for one run)."""
    values = [v for v in (metric(m) for m in runs) if not math.isnan(v)]
    if not values:
        return "-"
    median = f"{statistics.median(values):.{digits}f}"
    return median if len(values) == 1 else f"{median} ({min(values):.{digits}f}-{max(values):.{digits}f})"


def _per_core(ms: Metric) -> Metric:
    """Requests per second one core sustains at `ms` CPU milliseconds per request."""
    return lambda m: 1e3 / ms(m) if ms(m) > 0 else float("nan")


def speed_table(run: NoopRun) -> str:
    lines = ["| target | conc. | runs | req/s | p50 ms | p99 ms |", "|---|---|---|---|---|---|"]
    for (target, value), runs in _groups(run).items():
        lines.append(
            f"| {target} | {value} | {len(runs)} | {_cell(runs, lambda m: m.result.throughput)} | "
            f"{_cell(runs, lambda m: m.result.p50_us / 1e3, 2)} | {_cell(runs, lambda m: m.result.p99_us / 1e3, 2)} |"
        )
    return "\n".join(lines)


def cpu_table(run: NoopRun, roles: Roles) -> str:
    columns = [roles.preprocess, roles.postprocess, roles.model_step, roles.server, "total"]
    lines = ["| target | conc. | " + " | ".join(columns) + " |", "|---|---|" + "---|" * len(columns)]
    for (target, value), runs in _groups(run).items():
        cells = [_cell(runs, lambda m, c=c: m.cpu_ms.get(c, float("nan")), 3) for c in columns]
        lines.append(f"| {target} | {value} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def per_core_table(run: NoopRun, roles: Roles) -> str:
    lines = [
        f"| target | conc. | {roles.preprocess} + {roles.postprocess} | + {roles.server} (all but the model-step "
        "stub) | whole server |",
        "|---|---|---|---|---|",
    ]
    total: Metric = lambda m: m.cpu_ms.get("total", 0.0)  # noqa: E731
    for (target, value), runs in _groups(run).items():
        cells = [_cell(runs, _per_core(ms)) for ms in (roles.pre_post, roles.without_step, total)]
        lines.append(f"| {target} | {value} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def median_results(run: NoopRun) -> dict[str, list[PerfAnalyzerResult]]:
    """Per target, the median-throughput run at each concurrency (for perf_analyzer's per-step breakdown)."""
    chosen: dict[str, list[PerfAnalyzerResult]] = {t: [] for t in TARGETS}
    for (target, _), runs in _groups(run).items():
        ranked = sorted(runs, key=lambda m: m.result.throughput)
        chosen.setdefault(target, []).append(ranked[len(ranked) // 2].result)
    return chosen


def sizing(run: NoopRun, roles: Roles) -> str:
    """What the no-op run at its highest concurrency means for cores per GPU (CPU ms per request = cores per
    1,000 requests per second)."""
    groups = _groups(run)
    top = max((c for t, c in groups if t == TARGETS[0]), default=None)
    if top is None:
        return "No stable measurement of the no-op ensemble: nothing to size from."
    noop, floor = groups[(TARGETS[0], top)], groups.get((TARGETS[1], top), [])
    pre_post = statistics.median(roles.pre_post(m) for m in noop)
    rest = statistics.median(roles.without_step(m) for m in noop)
    text = (
        f"At concurrency {top}, {roles.preprocess} + {roles.postprocess} cost {pre_post:.3f} CPU ms per request "
        f"({1e3 / pre_post:.0f} requests/s per core), and with tritonserver's own work (scheduling, gRPC, the "
        f"hops) {rest:.3f} ms ({1e3 / rest:.0f} requests/s per core): a GPU that answers R requests/s needs about "
        f"R x {rest:.3f} / 1000 cores for everything but the model step (e.g. {rest:.1f} cores at 1,000 req/s), "
        "before headroom."
    )
    if floor:
        hops = statistics.median(roles.without_step(m) for m in floor)
        text += (
            f" The two-hop floor (constant steps, the same tensors) costs {hops:.3f} ms of that: "
            f"{100 * hops / rest:.0f} % is the Python-backend hops and Triton, {rest - hops:.3f} ms the steps' work."
        )
    return text


def report_markdown(run: NoopRun, command: str) -> str:
    roles = Roles(run.info.preprocess, run.info.model_step, run.info.postprocess)
    machine = "\n".join(f"- {key}: {value}" for key, value in run.machine.items())
    cfg = run.config
    breakdown = {t: [dataclasses.replace(r, model=t) for r in rs] for t, rs in median_results(run).items()}
    return "\n\n".join([
        "# CPU per request with a no-op model step",
        f"Command: `{command}`",
        f"Machine:\n{machine}",
        f"Repository: {run.info.path} (ensemble `{run.info.ensemble}`, {len(run.info.index.item_ids)} catalog "
        f"items); perf_analyzer over gRPC with {run.input_data.name}, concurrency "
        f"{', '.join(map(str, cfg.concurrency))}, {cfg.rounds} interleaved round(s) (round, concurrency, target), "
        f"{cfg.measurement_ms} ms windows, stability {cfg.stability_percentage} %. Cells: median (min-max) over "
        "the rounds. Server CPU is user + system time of each process over the whole perf_analyzer run "
        "divided by the ensemble requests served in it.",
        f"- **{TARGETS[0]}**: {roles.preprocess}, {roles.postprocess} and the ensemble as built; `{roles.model_step}`"
        " keeps its config and answers the first catalog items' codes with descending scores without computing.\n"
        f"- **{TARGETS[1]}**: the same ensemble and step configs, every step a constant Python step returning what "
        "the real step returns for one (median-length) history: the same tensors over the same hops, no work.",
        "## Throughput and latency\n\n" + speed_table(run),
        "## Server CPU ms per request, by process\n\n" + cpu_table(run, roles),
        "## Requests per second per CPU core (1000 / CPU ms per request)\n\n" + per_core_table(run, roles),
        "## Sizing\n\n" + sizing(run, roles),
        "## Per step (perf_analyzer, the median-throughput run), µs per request\n\n" + breakdown_markdown(breakdown),
    ]) + "\n"  # fmt: skip


def write_report(run: NoopRun, output: Path, command: str) -> tuple[Path, Path]:
    """`output` (Markdown) and `output` with .json (every run), written; their paths."""
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(report_markdown(run, command), encoding="utf-8")
    runs = [
        {"target": m.target, "concurrency": m.concurrency, "round": m.round, "throughput": m.result.throughput,
         "p50_us": m.result.p50_us, "p99_us": m.result.p99_us, "cpu_ms_per_request": m.cpu_ms}
        for m in run.measurements
    ]  # fmt: skip
    raw = output.with_suffix(".json")
    raw.write_text(json.dumps({"command": command, "machine": run.machine, "runs": runs}, indent=1), encoding="utf-8")
    return output, raw
