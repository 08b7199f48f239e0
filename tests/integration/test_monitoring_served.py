"""Metrics an operator can trust, end to end: a real Prometheus (Debian's package) scrapes a real tritonserver
every second under a little traffic (answered, refused, with rules, health probes); every dashboard panel's
query returns series, a refused request counts once in `stats` and in the dashboard's queries, probes are
counted apart, a step's reload shows as a stub start and fires the real alert rule."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import yaml

from ugt_ensemble.deploy.monitoring import alert_groups, panels, served_models
from ugt_ensemble.server import TritonServer
from ugt_ensemble.server.context import server_args
from ugt_ensemble.server.probe import probe_ensemble
from ugt_ensemble.server.process import Ports
from ugt_ensemble.server.restore import reload_with_new_stub

PROMETHEUS = shutil.which("prometheus")
pytestmark = pytest.mark.skipif(PROMETHEUS is None, reason="prometheus is not installed (apt-get install prometheus)")
ANSWERED, REFUSED, PROBES = 12, 5, 3


@contextmanager
def prometheus(target: str, rules: Path, folder: Path):
    """A Prometheus scraping `target` (host:port) every second with the alert `rules`; yields its URL."""
    port = Ports.free().http
    config = folder / "prometheus.yml"
    config.write_text(yaml.safe_dump({
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(rules)],
        "scrape_configs": [{"job_name": "triton", "static_configs": [{"targets": [target]}]}],
    }))  # fmt: skip
    with open(folder / "prometheus.log", "wb") as log:
        process = subprocess.Popen(
            [PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={folder / 'data'}",
             f"--web.listen-address=127.0.0.1:{port}"], stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        _wait(lambda: _get(f"{url}/-/ready") is not None, 60, "Prometheus ready")
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_every_panel_has_series_and_failures_count_once(built, tmp_path):
    config, result = built
    models = served_models(result.repository)
    rules = tmp_path / "alerts.yaml"
    rules.write_text(yaml.safe_dump({"groups": alert_groups(models)}))
    with TritonServer(result.repository, ready_models=[models.ensemble], extra_args=server_args(),
                      log_path=tmp_path / "tritonserver.log") as server:  # fmt: skip
        with prometheus(f"127.0.0.1:{server.ports.metrics}", rules, tmp_path) as url:
            _traffic(server.grpc_url, models.ensemble, result.catalog.item_ids[:3].tolist())
            # the steps send their counts once a second, so a scrape may see some of a step's counts before others
            expected = {
                f'sum(ugt_requests_total{{model="{models.preprocess}",traffic="user"}})': ANSWERED + REFUSED,
                f'sum(ugt_requests_total{{model="{models.preprocess}",traffic="probe"}})': PROBES,
                'sum(ugt_rule_requests_total{rule="exclude"})': 4,
            }
            scraped = lambda: {query: _value(url, query) for query in expected}  # noqa: E731
            _wait(lambda: scraped() == expected, 60, f"Prometheus to scrape the traffic: {expected}")

            # Before: 5 refused requests were nv_inference_request_failure{model="ugt_recommend"} 10
            assert _value(url, f'sum(nv_inference_request_failure{{model="{models.ensemble}"}})') == 2 * REFUSED
            assert _value(url, f'sum(ugt_request_failure{{model="{models.preprocess}"}})') == REFUSED
            for panel in panels(models):
                for legend, query in panel.queries:
                    _wait(lambda q=query: _series(url, q), 30, f"series for {panel.title!r} ({legend}): {query}")

            rows = _stats_cli(server.metrics_url, models.ensemble)
            assert rows[models.ensemble][:3] == [ANSWERED, REFUSED, PROBES]  # success, failure, probes
            assert rows[models.preprocess][:3] == [ANSWERED, REFUSED, PROBES]

            # A heal reloads the step (the watchdog's `reload_with_new_stub`): a stub start, and the alert fires
            with grpcclient.InferenceServerClient(server.grpc_url) as client:
                reload_with_new_stub(client, models.postprocess, server.grpc_operator_headers())
            starts = f'ugt_step_starts_total{{model="{models.postprocess}"}}'
            _wait(lambda: _value(url, starts) == 2, 30, "the second start of postprocess")
            _wait(lambda: _firing(url, "UgtStubRestarted") == [models.postprocess], 30, "UgtStubRestarted firing")


def _traffic(grpc_url: str, ensemble: str, items: list[int]) -> None:
    with grpcclient.InferenceServerClient(grpc_url) as client:
        documents = [json.dumps(items[: i % 3 + 1]) for i in range(ANSWERED - 4)]
        documents += [json.dumps({"events": items[:1], "exclude": items[1:2]})] * 4
        for document in documents + ["not json"] * REFUSED:
            tensor = grpcclient.InferInput("HISTORY", [1, 1], "BYTES")
            tensor.set_data_from_numpy(np.array([[document.encode()]], dtype=object))
            try:
                client.infer(ensemble, [tensor])
            except grpcclient.InferenceServerException as exc:
                assert "not valid JSON" in str(exc) and document == "not json"
    for _ in range(PROBES):
        assert probe_ensemble(grpc_url, ensemble) > 0


def _stats_cli(metrics_url: str, ensemble: str) -> dict[str, list[int]]:
    """model -> [success, failure, probes] as the real `stats` command prints them."""
    command = [sys.executable, "-m", "ugt_ensemble", "stats", "--metrics-url", metrics_url, "--ensembles", ensemble]
    output = subprocess.run(command, capture_output=True, text=True, timeout=120, check=True).stdout
    rows = [line.split() for line in output.splitlines()[1:] if line and not line.startswith(" ")]
    return {row[0]: [int(v) for v in row[1:4]] for row in rows if len(row) >= 8 and row[1].isdigit()}


def _get(url: str) -> dict | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            body = response.read()
    except OSError:
        return None
    return json.loads(body) if body.startswith(b"{") else {}


def _series(url: str, query: str) -> list:
    answer = _get(f"{url}/api/v1/query?query={urllib.parse.quote(query)}")
    assert answer is not None and answer.get("status", "success") == "success", (query, answer)
    return answer.get("data", {}).get("result", [])


def _value(url: str, query: str) -> float | None:
    result = _series(url, query)
    return float(result[0]["value"][1]) if result else None


def _firing(url: str, alert: str) -> list[str]:
    alerts = (_get(f"{url}/api/v1/alerts") or {}).get("data", {}).get("alerts", [])
    return sorted(a["labels"].get("model", "") for a in alerts if a["labels"]["alertname"] == alert
                  and a["state"] == "firing")  # fmt: skip


def _wait(condition, timeout_s: float, what: str) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(0.5)
