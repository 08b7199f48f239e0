"""The alert rules and the dashboard that `k8s` writes: Prometheus' own promtool checks the rules and fires each
alert on series shaped like Triton's and the steps' metrics; the PrometheusRule manifest holds the same rules."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from ugt_ensemble.cli import main
from ugt_ensemble.config import BuildConfig, ExportConfig, target_server_settings
from ugt_ensemble.deploy.monitoring import panels
from ugt_ensemble.deploy.promql import ServedModels
from ugt_ensemble.repository.writer import write_models

PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(PROMTOOL is None, reason="promtool is not installed (apt-get install prometheus)")

#: Ten refused requests a minute (Triton counts each twice) beside 60 answered ones; a 2 s p99; 10 ms queue time
#: per request at the model step; postprocess' stub started again at minute 10; half the answers short.
SERIES = {
    'nv_inference_request_failure{model="ugt_recommend",reason="OTHER"}': "0+20x30",
    'nv_inference_request_success{model="ugt_recommend"}': "0+60x30",
    'nv_inference_request_summary_us{model="ugt_recommend",quantile="0.99"}': "2000000x30",
    'nv_inference_queue_duration_us{model="ugt_trt"}': "0+600000x30",
    'nv_inference_request_success{model="ugt_trt"}': "0+60x30",
    'ugt_step_starts_total{model="postprocess"}': "1x10 2x20",
    'ugt_answers_total{model="postprocess"}': "0+100x30",
    'ugt_short_answers_total{model="postprocess"}': "0+50x30",
}
#: alert -> (its labels beyond severity, its summary) on those series at minute 20.
FIRING = {
    "UgtErrorRateHigh": ({}, "ugt_recommend: 14.29% of requests fail"),
    "UgtLatencyP99High": ({}, "ugt_recommend: p99 latency 2000 ms"),
    "UgtQueueTimeHigh": ({"model": "ugt_trt"}, "ugt_trt: requests wait 10 ms in its queue"),
    "UgtStubRestarted": ({"model": "postprocess"}, "postprocess: its stub started again (a restart or a heal)"),
    "UgtShortAnswers": ({}, "50% of answers hold fewer than K items"),
}


@pytest.fixture
def written(tmp_path, catalog) -> Path:
    """The monitoring files the real CLI writes for a repository (configs and data: no export needed)."""
    write_models(tmp_path / "repo", BuildConfig(), catalog.index())
    out = tmp_path / "out"
    args = ["k8s", "--model-repository", str(tmp_path / "repo"), "--output-dir", str(out), "--monitoring-only"]
    assert main(args) == 0
    return out / "monitoring"


@needs_promtool
def test_the_alert_rules_pass_promtool_and_each_fires_on_its_series(written):
    check = subprocess.run([PROMTOOL, "check", "rules", str(written / "alerts.yaml")], capture_output=True, text=True)
    assert check.returncode == 0 and "SUCCESS: 5 rules found" in check.stdout, check.stdout + check.stderr
    rules = {r["alert"]: r for r in yaml.safe_load((written / "alerts.yaml").read_text())["groups"][0]["rules"]}
    assert set(rules) == set(FIRING)
    tests = [
        {
            "eval_time": "20m",
            "alertname": name,
            "exp_alerts": [
                {
                    "exp_labels": {**labels, "severity": rules[name]["labels"]["severity"]},
                    "exp_annotations": {"summary": summary, "description": rules[name]["annotations"]["description"]},
                }
            ],
        }
        for name, (labels, summary) in FIRING.items()
    ]
    quiet = {"eval_time": "3m", "alertname": "UgtErrorRateHigh", "exp_alerts": []}  # not before its 5 minutes
    series = [{"series": name, "values": values} for name, values in SERIES.items()]
    test_file = written / "alerts_test.yaml"
    test_file.write_text(yaml.safe_dump({"rule_files": ["alerts.yaml"], "evaluation_interval": "1m", "tests": [
        {"interval": "1m", "input_series": series, "alert_rule_test": [*tests, quiet]}]}))  # fmt: skip
    result = subprocess.run([PROMTOOL, "test", "rules", str(test_file)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_thresholds_flags_and_the_prometheusrule_manifest(tmp_path, catalog):
    export, triton = target_server_settings("cpu-wheel", None)
    write_models(tmp_path / "repo", BuildConfig(export=ExportConfig(**export), triton=triton), catalog.index())
    (tmp_path / "repo" / "ugt_trt" / "1" / "model.onnx").write_bytes(b"placeholder")  # no export needed here
    out = tmp_path / "out"
    args = ["k8s", "--model-repository", str(tmp_path / "repo"), "--output-dir", str(out), "--alert-p99-ms", "250"]
    assert main(args) == 0
    alone = yaml.safe_load((out / "monitoring" / "alerts.yaml").read_text())["groups"]
    manifest = yaml.safe_load((out / "prometheusrule.yaml").read_text())
    assert manifest["kind"] == "PrometheusRule" and manifest["spec"]["groups"] == alone
    p99 = next(r for r in alone[0]["rules"] if r["alert"] == "UgtLatencyP99High")
    assert p99["expr"].endswith("> 250")
    board = json.loads((out / "monitoring" / "dashboard.json").read_text())
    config_map = yaml.safe_load((out / "grafana-dashboard.yaml").read_text())
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(next(iter(config_map["data"].values()))) == board
    expressions = [t["expr"] for p in board["panels"] for t in p["targets"]]
    assert expressions == [q for panel in panels(ServedModels()) for _, q in panel.queries]


def test_monitoring_only_needs_a_repository(tmp_path, capsys):
    assert main(["k8s", "--model-repository", str(tmp_path / "none"), "--monitoring-only"]) == 2
    assert "no such repository" in capsys.readouterr().err
