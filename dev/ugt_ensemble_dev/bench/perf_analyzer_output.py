"""perf_analyzer's text report as data: client percentiles and the per-step server breakdown.

perf_analyzer 2.51 writes a CSV of client-side numbers only; the per-composing-model breakdown of an
ensemble is printed on stdout, so stdout is what `parse_output` reads.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

UNSTABLE = "no stable measurement"
NOT_MEASURED = "no measurement"
_NUMBER = r"[-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?"
_HEADER = re.compile(r"^\s*Request concurrency:\s*(\d+)", re.MULTILINE)
UNSTABLE_LINE = re.compile(
    r"Failed to obtain stable measurement within \d+ measurement windows "
    r"for concurrency (\d+)"
)
_STEP = re.compile(r"^(\S.*), version: (\S*)$")
_PART = re.compile(rf"(overhead|queue|compute input|compute infer|compute output|compute) ({_NUMBER}) usec")


@dataclass(frozen=True)
class StepBreakdown:
    """Server-side averages of one model (times in microseconds).

    When the report gives only a total `compute` (an ensemble's own line), it is in `compute_infer_us`.
    """

    model: str
    inference_count: int = 0
    execution_count: int = 0
    latency_us: float = 0.0
    queue_us: float = 0.0
    compute_input_us: float = 0.0
    compute_infer_us: float = 0.0
    compute_output_us: float = 0.0

    @property
    def avg_batch(self) -> float:
        """Average dynamic batch: inferences per execution."""
        return self.inference_count / max(self.execution_count, 1)

    @property
    def compute_us(self) -> float:
        return self.compute_input_us + self.compute_infer_us + self.compute_output_us


@dataclass(frozen=True)
class PerfAnalyzerResult:
    """One concurrency value: client throughput and latency percentiles (us), server-side breakdowns.

    `error` is set (and the numbers are NaN / 0) when the value has no measurement, e.g. it never
    became stable.
    """

    model: str
    concurrency: int
    throughput: float
    p50_us: float
    p90_us: float
    p95_us: float
    p99_us: float
    avg_latency_us: float | None
    request_count: int
    server: StepBreakdown | None
    steps: tuple[StepBreakdown, ...] = ()
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @classmethod
    def failed(cls, model: str, concurrency: int, error: str) -> PerfAnalyzerResult:
        nan = math.nan
        return cls(model, concurrency, nan, nan, nan, nan, nan, None, 0, None, (), error)


def parse_output(stdout: str, model: str) -> list[PerfAnalyzerResult]:
    """The results in perf_analyzer's text report, one per "Request concurrency: N" block.

    Unknown lines are ignored; missing fields default to 0 / None. A value named in a "Failed to obtain
    stable measurement ... for concurrency N" line (stderr, may be appended) or a block without client
    numbers comes back with `error` set.
    """
    unstable = {int(c) for c in UNSTABLE_LINE.findall(stdout)}
    headers = list(_HEADER.finditer(stdout))
    results: list[PerfAnalyzerResult] = []
    for i, header in enumerate(headers):
        end = headers[i + 1].start() if i + 1 < len(headers) else len(stdout)
        concurrency = int(header.group(1))
        block = stdout[header.end() : end].split("Inferences/Second vs.")[0]
        results.append(_parse_block(block, model, concurrency, concurrency in unstable))
    seen = {r.concurrency for r in results}
    results += [PerfAnalyzerResult.failed(model, c, UNSTABLE) for c in sorted(unstable - seen)]
    return results


def _parse_block(block: str, model: str, concurrency: int, unstable: bool) -> PerfAnalyzerResult:
    sections: dict[str, dict[str, str]] = {}  # "Client:", "Server:" or a composing model's name -> fields
    current: dict[str, str] | None = None
    for line in (raw.strip() for raw in block.splitlines()):
        step = _STEP.match(line)
        if line in ("Client:", "Server:") or step:
            current = sections.setdefault(step.group(1) if step else line, {})
        elif ":" in line and current is not None:
            key, _, value = line.partition(":")
            current.setdefault(key.strip().lower(), value.strip())
    client = sections.pop("Client:", {})
    if unstable or "throughput" not in client:
        return PerfAnalyzerResult.failed(model, concurrency, UNSTABLE if unstable else NOT_MEASURED)
    server = sections.pop("Server:", None)
    avg = _number(client.get("avg latency") or client.get("avg grpc time") or client.get("avg http time"))
    return PerfAnalyzerResult(
        model=model,
        concurrency=concurrency,
        throughput=_number(client.get("throughput")) or 0.0,
        p50_us=_latency(client, 50),
        p90_us=_latency(client, 90),
        p95_us=_latency(client, 95),
        p99_us=_latency(client, 99),
        avg_latency_us=avg,
        request_count=int(_number(client.get("request count")) or 0),
        server=None if server is None else _breakdown(model, server),
        steps=tuple(_breakdown(name, fields) for name, fields in sections.items()),
    )


def _breakdown(name: str, fields: Mapping[str, str]) -> StepBreakdown:
    latency = fields.get("avg request latency", "")
    parts = {key: float(value) for key, value in _PART.findall(latency)}
    return StepBreakdown(
        model=name,
        inference_count=int(_number(fields.get("inference count")) or 0),
        execution_count=int(_number(fields.get("execution count")) or 0),
        latency_us=_number(latency) or 0.0,
        queue_us=parts.get("queue", 0.0),
        compute_input_us=parts.get("compute input", 0.0),
        compute_infer_us=parts.get("compute infer", parts.get("compute", 0.0)),
        compute_output_us=parts.get("compute output", 0.0),
    )


def _number(text: str | None) -> float | None:
    match = re.match(_NUMBER, text or "")
    return float(match.group(0)) if match else None


def _latency(client: Mapping[str, str], percentile: int) -> float:
    value = _number(client.get(f"p{percentile} latency"))
    return math.nan if value is None else value
