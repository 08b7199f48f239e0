"""Per-model request counts, failures and latencies from Triton's own metrics endpoint (`/metrics`).

Triton exports, per model and version, counters of successful and failed requests and of the time they
spent (request, queue, compute), and with `--metrics-config=summary_latencies=true` (what `serve` sets)
latency quantiles. `model_stats` reads them for each model, so A/B variants compare side by side.

Triton 2.51's Python backend counts a request answered with an error response as a success; the
project's Python steps count those themselves in `ugt_request_failure{model,version,code}`, and
`model_stats` moves them from the success to the failure column, so a refused request is a failure of
the step that refused it.
"""

from __future__ import annotations

import re
import urllib.request
from dataclasses import dataclass

from ugt_ensemble.errors import ServerError

_LINE = re.compile(r"^(\w+)\{([^}]*)\} ([0-9.eE+-]+|NaN)$")
_LABEL = re.compile(r'(\w+)="([^"]*)"')


@dataclass(frozen=True)
class ModelStats:
    """One model's totals since the server started (latencies in ms; None where Triton gave none)."""

    model: str
    success: int
    failure: int
    avg_ms: float | None
    avg_queue_ms: float | None
    p50_ms: float | None
    p99_ms: float | None


def scrape(metrics_url: str, timeout_s: float = 5.0) -> str:
    try:
        with urllib.request.urlopen(metrics_url, timeout=timeout_s) as response:
            return response.read().decode("utf-8", "replace")
    except OSError as exc:
        raise ServerError(f"cannot read Triton's metrics at {metrics_url} ({exc})") from None


def parse_metrics(text: str) -> dict[tuple[str, frozenset], float]:
    """(metric name, labels) -> value, summed over the versions of a model."""
    values: dict[tuple[str, frozenset], float] = {}
    for line in text.splitlines():
        match = _LINE.match(line.strip())
        if not match or match.group(3) == "NaN":
            continue
        labels = {k: v for k, v in _LABEL.findall(match.group(2)) if k != "version"}
        key = (match.group(1), frozenset(labels.items()))
        values[key] = values.get(key, 0.0) + float(match.group(3))
    return values


def model_stats(text: str, models: list[str] | None = None) -> list[ModelStats]:
    """Stats of every model in the metrics text (or of `models`, in that order)."""
    values = parse_metrics(text)
    names = models or sorted({dict(labels).get("model", "") for _, labels in values} - {""})
    return [_stats(values, name) for name in names]


def _stats(values: dict, model: str) -> ModelStats:
    def get(name: str, **extra: str) -> float | None:
        return values.get((name, frozenset({"model": model, **extra}.items())))

    refused = _failures(values, model, "ugt_request_failure")
    success = (get("nv_inference_request_success") or 0) - refused
    failure = _failures(values, model, "nv_inference_request_failure") + refused
    duration, queue = get("nv_inference_request_duration_us"), get("nv_inference_queue_duration_us")
    per = lambda total: total / success / 1000 if total is not None and success else None  # noqa: E731
    quantile = lambda q: _ms(get("nv_inference_request_summary_us", quantile=q))  # noqa: E731
    return ModelStats(model, int(success), int(failure), per(duration), per(queue), quantile("0.5"), quantile("0.99"))


def _failures(values: dict, model: str, metric: str) -> float:
    """The sum of counter `metric` for `model` over every other label (failure reason, error code)."""
    return sum(
        value for (name, labels), value in values.items() if name == metric and dict(labels).get("model") == model
    )


def _ms(us: float | None) -> float | None:
    return None if us is None else us / 1000
