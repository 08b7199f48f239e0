"""A Grafana dashboard and Prometheus alert rules for a served repository (PromQL: `deploy.promql`).

`monitoring_files` gives the files that stand on their own: `monitoring/alerts.yaml` (a Prometheus rule file:
`promtool check rules`, `rule_files:` in prometheus.yml) and `monitoring/dashboard.json` (Grafana: Dashboards >
Import, with a Prometheus data source). `k8s_monitoring` wraps the same for a cluster with the Prometheus
Operator and Grafana's dashboard sidecar: a PrometheusRule and a ConfigMap labelled `grafana_dashboard: "1"`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ugt_ensemble.deploy import promql
from ugt_ensemble.deploy.promql import ServedModels
from ugt_ensemble.repository.manifest import model_names, read_manifest_or_empty

ALERTS_FILE = "monitoring/alerts.yaml"
DASHBOARD_FILE = "monitoring/dashboard.json"
GROUP = "ugt-ensemble"


@dataclass(frozen=True)
class AlertThresholds:
    """When each alert fires (after its `for` duration)."""

    error_ratio: float = 0.05  # share of ensemble requests refused or failed, over 5 min
    p99_ms: float = 1000.0  # the ensemble's p99 latency
    queue_ms: float = 3.0  # a step's average queue time per request (the autoscaler's default target)
    short_ratio: float = 0.2  # share of answers with fewer than K items, over 5 min


@dataclass(frozen=True)
class Panel:
    """One dashboard panel: its title, kind, unit, and (legend, PromQL) per series."""

    title: str
    queries: tuple[tuple[str, str], ...]
    unit: str = "short"
    kind: str = "timeseries"
    description: str = ""


def served_models(repository: str | Path, ensemble: str | None = None, model_step: str | None = None) -> ServedModels:
    """The model names a built repository's manifest records; where it has none, `ensemble` and `model_step` (e.g.
    read from the configs) and the defaults."""
    try:
        names = model_names(read_manifest_or_empty(Path(repository)))
    except (KeyError, TypeError):
        default = ServedModels()
        return ServedModels(ensemble or default.ensemble, default.preprocess, model_step or default.model_step)
    return ServedModels(names.ensemble, names.preprocess, names.model_step, names.postprocess)


def panels(models: ServedModels) -> list[Panel]:
    """The dashboard's panels, top to bottom."""
    return [
        Panel("User requests and probes /s", (("user", promql.user_requests(models)),
              ("probes", promql.probe_requests(models))), "reqps",
              description="Requests at the first step; probes carry the ugt_probe parameter and are counted apart."),
        Panel("Error ratio (ensemble)", (("refused or failed", promql.error_ratio(models)),), "percentunit",
              description="Each refused request once (Triton 2.51 counts an ensemble's failures twice: halved)."),
        Panel("Refused requests by step and code /s", (("{{model}} {{code}}", promql.refusals_by_step(models)),),
              "reqps", description="The steps' own ugt_request_failure (Triton counts them as successes)."),
        Panel("Ensemble latency (ms)", (("p50", promql.latency_quantile_ms(models, "0.5")),
              ("p99", promql.latency_quantile_ms(models, "0.99")), ("average", promql.average_latency_ms(models))),
              "ms", description="Triton's quantiles include the probes (one empty history every 2 s)."),
        Panel("Queue time per request by step (ms)", (("{{model}}", promql.queue_ms_by_step(models)),), "ms"),
        Panel("Pending requests by step", (("{{model}}", promql.pending_by_step(models)),)),
        Panel("Stub starts in 15 min (restarts, heals)", (("{{model}}", promql.stub_starts(models)),),
              description="A heal reloads a step: its stub starts again."),
        Panel("Short answers (fewer than K items)", (("short", promql.short_answer_ratio(models)),), "percentunit"),
        Panel("Rule use /s", (("{{rule}}", promql.rule_use(models)),), "reqps",
              description="Rows of user requests with exclusions, item sets, exclude-history."),
        Panel("Served catalog", (("v{{version}} {{fingerprint}}", promql.served_catalog(models)),), kind="table",
              description="Items of the catalog the postprocess step serves, by version and fingerprint."),
    ]  # fmt: skip


def dashboard(models: ServedModels) -> dict[str, Any]:
    """A Grafana dashboard (JSON model, schema 39) over a `datasource` variable."""
    source = {"type": "prometheus", "uid": "${datasource}"}
    built = []
    for i, panel in enumerate(panels(models)):
        targets = [{"refId": chr(65 + j), "expr": expr, "legendFormat": legend, "datasource": source}
                   for j, (legend, expr) in enumerate(panel.queries)]  # fmt: skip
        built.append({
            "id": i + 1, "type": panel.kind, "title": panel.title, "description": panel.description,
            "datasource": source, "targets": targets,
            "gridPos": {"h": 8, "w": 12, "x": 12 * (i % 2), "y": 8 * (i // 2)},
            "fieldConfig": {"defaults": {"unit": panel.unit}, "overrides": []},
        })  # fmt: skip
    variable = {"name": "datasource", "type": "datasource", "query": "prometheus", "label": "Prometheus"}
    return {
        "title": f"ugt-ensemble: {models.ensemble}",
        "uid": f"ugt-{models.ensemble}"[:40],
        "tags": ["ugt-ensemble", "triton"],
        "schemaVersion": 39,
        "time": {"from": "now-1h", "to": "now"},
        "refresh": "30s",
        "templating": {"list": [variable]},
        "panels": built,
    }


def alert_groups(models: ServedModels, thresholds: AlertThresholds = AlertThresholds()) -> list[dict[str, Any]]:
    """The Prometheus rule groups (one group, `GROUP`)."""
    t = thresholds
    rules = [
        _alert("UgtErrorRateHigh", f"{promql.error_ratio(models)} > {t.error_ratio:g}", "5m", "critical",
               f"{models.ensemble}: {{{{ $value | humanizePercentage }}}} of requests fail",
               "Refused or failed ensemble requests (each once) above the threshold for 5 minutes; see the "
               "'Refused requests by step and code' panel for the step and reason."),
        _alert("UgtLatencyP99High", f"{promql.latency_quantile_ms(models, '0.99')} > {t.p99_ms:g}", "5m", "warning",
               f"{models.ensemble}: p99 latency {{{{ $value }}}} ms", "Triton's p99 of the ensemble's latency."),
        _alert("UgtQueueTimeHigh", f"{promql.queue_ms_by_step(models)} > {t.queue_ms:g}", "10m", "warning",
               "{{ $labels.model }}: requests wait {{ $value }} ms in its queue",
               "Average queue time per request above the target for 10 minutes: add replicas or instances."),
        _alert("UgtStubRestarted", f"{promql.stub_starts(models)} > 0", "0m", "warning",
               "{{ $labels.model }}: its stub started again (a restart or a heal)",
               "A Python step's stub started within 15 minutes after the first: the watchdog healed it or the "
               "server restarted. Look at serve's log for the reason."),
        _alert("UgtShortAnswers", f"{promql.short_answer_ratio(models)} > {t.short_ratio:g}", "15m", "warning",
               "{{ $value | humanizePercentage }} of answers hold fewer than K items",
               "Rules (item sets, exclusions) or a small catalog leave too few eligible items."),
    ]  # fmt: skip
    return [{"name": GROUP, "rules": rules}]


def monitoring_files(models: ServedModels, thresholds: AlertThresholds = AlertThresholds()) -> dict[str, str]:
    """relative file name -> text of the stand-alone alert rules and dashboard."""
    import yaml

    header = "# Generated by ugt-ensemble (python -m ugt_ensemble k8s --monitoring-only). promtool check rules\n"
    rules = header + yaml.safe_dump({"groups": alert_groups(models, thresholds)}, sort_keys=False, width=120)
    return {ALERTS_FILE: rules, DASHBOARD_FILE: json.dumps(dashboard(models), indent=1) + "\n"}


def k8s_monitoring(
    models: ServedModels, name: str, namespace: str | None, labels: dict[str, str], thresholds: AlertThresholds
) -> dict[str, str]:
    """prometheusrule.yaml and grafana-dashboard.yaml (a ConfigMap for Grafana's sidecar) as manifests."""
    import yaml

    metadata = {"name": f"{name}-monitoring", **({"namespace": namespace} if namespace else {}), "labels": labels}
    rule = {"apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusRule", "metadata": metadata,
            "spec": {"groups": alert_groups(models, thresholds)}}  # fmt: skip
    board = {"apiVersion": "v1", "kind": "ConfigMap",
             "metadata": {**metadata, "name": f"{name}-dashboard", "labels": {**labels, "grafana_dashboard": "1"}},
             "data": {f"{name}.json": json.dumps(dashboard(models))}}  # fmt: skip
    dump = lambda document: yaml.safe_dump(document, sort_keys=False, width=120)  # noqa: E731
    return {"prometheusrule.yaml": dump(rule), "grafana-dashboard.yaml": dump(board)}


def _alert(name: str, expr: str, duration: str, severity: str, summary: str, description: str) -> dict[str, Any]:
    return {
        "alert": name,
        "expr": expr,
        "for": duration,
        "labels": {"severity": severity},
        "annotations": {"summary": summary, "description": description},
    }
