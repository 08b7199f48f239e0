"""Per-model request counts, failures and latencies from Triton's own metrics endpoint (`/metrics`).

Triton exports, per model and version, counters of successful and failed requests and of the time they
spent (request, queue, compute), and with `--metrics-config=summary_latencies=true` (what `serve` sets)
latency quantiles. `model_stats` reads them for each model, so A/B variants compare side by side, and
corrects what Triton 2.51 gets wrong:

- its Python backend counts a request answered with an error response as a success; the project's Python
  steps count those themselves in `ugt_request_failure{model,version,code}`, and `model_stats` moves them from
  the success to the failure column, so a refused request is a failure of the step that refused it;
- it counts one refused ensemble request twice in `nv_inference_request_failure{model=<ensemble>}` (measured:
  5 refused requests -> 10, reason OTHER): an ensemble's failures are halved (`ENSEMBLE_FAILURE_COUNT`);
- health probes (the watchdog's, Kubernetes' liveness) are requests like any other to Triton; the steps count
  them apart (`ugt_requests_total{traffic="probe"}`), and `model_stats` moves them out of the success column
  of each step and of the probed ensemble (the first of `ensembles`) into `probes`. Triton's latencies still
  include them: one empty history every 2 s.
"""

from __future__ import annotations

import re
import urllib.request
from dataclasses import dataclass

from ugt_ensemble.errors import ServerError
from ugt_ensemble.runtime.metric_names import ENSEMBLE_FAILURE_COUNT, FAILURES, PROBE, REQUESTS

_LINE = re.compile(r"^(\w+)\{([^}]*)\} ([0-9.eE+-]+|NaN)$")
_LABEL = re.compile(r'(\w+)="([^"]*)"')
#: The ensemble a build names by default (`ExportConfig.model_name`).
DEFAULT_ENSEMBLES = ("ugt_recommend",)

Values = dict[tuple[str, frozenset], float]


@dataclass(frozen=True)
class ModelStats:
    """One model's totals since the server started (latencies in ms; None where Triton gave none). `success`
    and `failure` count user requests; `probes` the health probes it answered."""

    model: str
    success: int
    failure: int
    avg_ms: float | None
    avg_queue_ms: float | None
    p50_ms: float | None
    p99_ms: float | None
    probes: int = 0


@dataclass(frozen=True)
class Counts:
    """The raw totals of one model that stats and rates are computed from."""

    success: float  # user requests answered
    failure: float  # requests refused or failed, each once
    probes: float  # probe requests
    answered: float  # what Triton's durations are summed over (its own success count)
    duration_us: float | None
    queue_us: float | None


def scrape(metrics_url: str, timeout_s: float = 5.0) -> str:
    try:
        with urllib.request.urlopen(metrics_url, timeout=timeout_s) as response:
            return response.read().decode("utf-8", "replace")
    except OSError as exc:
        raise ServerError(f"cannot read Triton's metrics at {metrics_url} ({exc})") from None


def parse_metrics(text: str) -> Values:
    """(metric name, labels) -> value, summed over the versions of a model."""
    values: Values = {}
    for line in text.splitlines():
        match = _LINE.match(line.strip())
        if not match or match.group(3) == "NaN":
            continue
        labels = {k: v for k, v in _LABEL.findall(match.group(2)) if k != "version"}
        key = (match.group(1), frozenset(labels.items()))
        values[key] = values.get(key, 0.0) + float(match.group(3))
    return values


def model_names(values: Values) -> list[str]:
    """Every model Triton reports statistics of."""
    return sorted({dict(labels).get("model", "") for name, labels in values if name.startswith("nv_")} - {""})


def model_stats(
    text: str, models: list[str] | None = None, ensembles: tuple[str, ...] | list[str] = DEFAULT_ENSEMBLES
) -> list[ModelStats]:
    """Stats of every model in the metrics text (or of `models`, in that order); `ensembles`: the ensemble
    models among them, the first being the one the health probes go to."""
    values = parse_metrics(text)
    return [_stats(values, name, ensembles) for name in models or model_names(values)]


def model_counts(values: Values, model: str, ensembles: tuple[str, ...] | list[str] = DEFAULT_ENSEMBLES) -> Counts:
    """The corrected totals of `model` (see the module docstring)."""
    answered = values.get(("nv_inference_request_success", frozenset({"model": model}.items()))) or 0.0
    failed = sum_of(values, "nv_inference_request_failure", model=model)
    if model in ensembles:
        failed /= ENSEMBLE_FAILURE_COUNT
        probes = max(_probes(values).values(), default=0.0) if model == ensembles[0] else 0.0
        refused = 0.0
    else:
        probes, refused = _probes(values).get(model, 0.0), sum_of(values, FAILURES, model=model)
    get = lambda name: values.get((name, frozenset({"model": model}.items())))  # noqa: E731
    return Counts(
        success=max(answered - refused - probes, 0.0),
        failure=failed + refused,
        probes=probes,
        answered=answered,
        duration_us=get("nv_inference_request_duration_us"),
        queue_us=get("nv_inference_queue_duration_us"),
    )


def sum_of(values: Values, metric: str, **labels: str) -> float:
    """The sum of `metric` over the series whose labels include `labels`."""
    wanted = set(labels.items())
    return sum(value for (name, have), value in values.items() if name == metric and wanted <= have)


def _probes(values: Values) -> dict[str, float]:
    """model -> probe requests it received (the steps count them; every step of the pipeline sees each probe)."""
    probes: dict[str, float] = {}
    for (name, labels), value in values.items():
        label = dict(labels)
        if name == REQUESTS and label.get("traffic") == PROBE:
            probes[label["model"]] = probes.get(label["model"], 0.0) + value
    return probes


def _stats(values: Values, model: str, ensembles: tuple[str, ...] | list[str]) -> ModelStats:
    counts = model_counts(values, model, ensembles)
    per = lambda total: total / counts.answered / 1000 if total is not None and counts.answered else None  # noqa: E731
    summary = lambda q: ("nv_inference_request_summary_us", frozenset({"model": model, "quantile": q}.items()))  # noqa: E731
    return ModelStats(
        model,
        round(counts.success),
        round(counts.failure),
        per(counts.duration_us),
        per(counts.queue_us),
        _ms(values.get(summary("0.5"))),
        _ms(values.get(summary("0.99"))),
        round(counts.probes),
    )


def _ms(us: float | None) -> float | None:
    return None if us is None else us / 1000
