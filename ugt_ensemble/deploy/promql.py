"""The PromQL behind the Grafana dashboard and the alert rules (`deploy.monitoring`): one place that knows
which series tell the truth about a served repository.

- Failures: Triton 2.51 adds 2 to `nv_inference_request_failure{model=<ensemble>}` per refused ensemble request
  (measured: 5 refused -> 10), so the ensemble's count is halved (`ENSEMBLE_FAILURE_COUNT`); which step refused
  and why is the steps' own `ugt_request_failure{model,code}` (Triton counts a Python step's error responses as
  successes).
- Probes: the watchdog's and the liveness probe's requests carry the `ugt_probe` parameter and the steps count
  them in `ugt_requests_total{traffic="probe"}`; user traffic is `traffic="user"` at the first step. Triton's
  ensemble latency quantiles include the probes (one empty history every 2 s).
- Stub starts: `ugt_step_starts_total` grows by one each time a step's stub starts (a heal reloads the step; a
  server restart starts them all again, which Prometheus sees as a counter reset).
"""

from __future__ import annotations

from dataclasses import dataclass

from ugt_ensemble.runtime import metric_names as names
from ugt_ensemble.runtime.metric_names import ENSEMBLE_FAILURE_COUNT


@dataclass(frozen=True)
class ServedModels:
    """The model names of a served repository."""

    ensemble: str = "ugt_recommend"
    preprocess: str = "preprocess"
    model_step: str = "ugt_trt"
    postprocess: str = "postprocess"

    @property
    def steps(self) -> tuple[str, str, str]:
        return (self.preprocess, self.model_step, self.postprocess)


def _model(name: str) -> str:
    return f'model="{name}"'


def _steps(models: ServedModels) -> str:
    return f'model=~"{"|".join(models.steps)}"'


def ensemble_failures(models: ServedModels, window: str = "5m") -> str:
    """Refused or failed ensemble requests per second, each once."""
    return f"sum(rate(nv_inference_request_failure{{{_model(models.ensemble)}}}[{window}])) / {ENSEMBLE_FAILURE_COUNT}"


def error_ratio(models: ServedModels, window: str = "5m") -> str:
    """Share of the ensemble's requests that failed."""
    failures = ensemble_failures(models, window)
    success = f"sum(rate(nv_inference_request_success{{{_model(models.ensemble)}}}[{window}]))"
    return f"({failures}) / ({success} + {failures})"


def user_requests(models: ServedModels, window: str = "1m") -> str:
    return f'sum(rate({names.REQUESTS}{{{_model(models.preprocess)},traffic="{names.USER}"}}[{window}]))'


def probe_requests(models: ServedModels, window: str = "1m") -> str:
    return f'sum(rate({names.REQUESTS}{{{_model(models.preprocess)},traffic="{names.PROBE}"}}[{window}]))'


def refusals_by_step(models: ServedModels, window: str = "5m") -> str:
    return f"sum by (model, code) (rate({names.FAILURES}{{{_steps(models)}}}[{window}]))"


def latency_quantile_ms(models: ServedModels, quantile: str) -> str:
    """Triton's summary quantile of the ensemble's request latency (needs summary_latencies=true), in ms."""
    return f'max(nv_inference_request_summary_us{{{_model(models.ensemble)},quantile="{quantile}"}}) / 1000'


def average_latency_ms(models: ServedModels, window: str = "1m") -> str:
    selector = _model(models.ensemble)
    return (f"sum(rate(nv_inference_request_duration_us{{{selector}}}[{window}])) / "
            f"sum(rate(nv_inference_request_success{{{selector}}}[{window}])) / 1000")  # fmt: skip


def queue_ms_by_step(models: ServedModels, window: str = "1m") -> str:
    """Average time a request waits in each step's queue, in ms."""
    selector = _steps(models)
    return (f"sum by (model) (rate(nv_inference_queue_duration_us{{{selector}}}[{window}])) / "
            f"sum by (model) (rate(nv_inference_request_success{{{selector}}}[{window}])) / 1000")  # fmt: skip


def pending_by_step(models: ServedModels) -> str:
    return f"sum by (model) (nv_inference_pending_request_count{{{_steps(models)}}})"


def stub_starts(models: ServedModels, window: str = "15m") -> str:
    """Stub starts of each step within `window` beyond the first: restarts and heals."""
    return f"sum by (model) (increase({names.STEP_STARTS}{{{_steps(models)}}}[{window}]))"


def short_answer_ratio(models: ServedModels, window: str = "5m") -> str:
    selector = _model(models.postprocess)
    return (f"sum(rate({names.SHORT_ANSWERS}{{{selector}}}[{window}])) / "
            f"sum(rate({names.ANSWERS}{{{selector}}}[{window}]))")  # fmt: skip


def rule_use(models: ServedModels, window: str = "5m") -> str:
    return f"sum by (rule) (rate({names.RULE_REQUESTS}{{{_model(models.preprocess)}}}[{window}]))"


def served_catalog(models: ServedModels) -> str:
    return f"max by (version, fingerprint) ({names.CATALOG_ITEMS}{{{_model(models.postprocess)}}})"
