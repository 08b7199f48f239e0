"""`build` writes perf_analyzer input data with business rules from the repository's own item sets, and the real
perf_analyzer sends it to a real tritonserver: every request is answered, and the steps count the rules used
(before: the input data held no request with rules, so no benchmark or Model Analyzer run exercised them)."""

from __future__ import annotations

import json
import subprocess
import time

import numpy as np
import pytest

from ugt_ensemble.build import build_repository
from ugt_ensemble.catalog.synthetic import synthetic_catalog
from ugt_ensemble.config import BuildConfig, ExportConfig, TritonConfig
from ugt_ensemble.repository.input_data import input_data_files
from ugt_ensemble.server import TritonServer
from ugt_ensemble.serving.metrics import parse_metrics, scrape, sum_of
from ugt_ensemble.tools.environment import tool_environment
from ugt_ensemble.tools.model_analyzer import _perf_analyzer

CATEGORIES = ("books", "games", "music")


@pytest.fixture(scope="module")
def built_with_sets(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sets")
    catalog = synthetic_catalog(3_000, seed=11)
    category = np.array(CATEGORIES)[np.arange(len(catalog)) % len(CATEGORIES)]
    lines = ["item_id,l1,l2,l3,category"] + [
        f"{i},{a},{b},{c},{k}" for i, (a, b, c), k in zip(catalog.item_ids, catalog.codes, category)
    ]
    (folder / "items.csv").write_text("\n".join(lines) + "\n")
    export = ExportConfig(precision="fp32", catalog_path=folder / "items.csv", set_columns=("category",),
                          validation_shapes=((1, 1), (4, 64)))  # fmt: skip
    config = BuildConfig(output_dir=folder / "ensemble", seed=11, export=export, triton=TritonConfig.cpu())
    return config, build_repository(config)


def test_build_writes_rule_requests_from_its_sets_and_perf_analyzer_sends_them(built_with_sets, tmp_path):
    config, result = built_with_sets
    files = input_data_files(result.repository)
    assert files.ensemble_rules in result.tool_files
    documents = [
        json.loads(row["HISTORY"]["content"][0]) for row in json.loads(files.ensemble_rules.read_text())["data"]
    ]
    assert len(documents) == 16 and all(isinstance(d, dict) and "events" in d for d in documents)
    sets = {name for d in documents for name in d.get("sets", ())}
    assert sets == {f"category={c}" for c in CATEGORIES}  # the repository's own sets, each in turn
    assert sum("exclude" in d for d in documents) == 8 and sum(d.get("exclude_history", False) for d in documents) == 8

    model = config.export.model_name
    with TritonServer(result.repository, ready_models=[model], log_path=tmp_path / "server.log") as server:
        environment = tool_environment()
        command = [_perf_analyzer(environment), "-m", model, "-u", server.grpc_url, "-i", "grpc",
                   "--input-data", str(files.ensemble_rules), "-p", "2000", "--request-count", "32"]  # fmt: skip
        done = subprocess.run(command, env=environment.environ(), capture_output=True, text=True, timeout=180)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
        deadline = time.monotonic() + 30  # the steps send their counts once a second (step_metrics.FLUSH_S)
        while True:
            values = parse_metrics(scrape(server.metrics_url))
            used = {rule: sum_of(values, "ugt_rule_requests_total", rule=rule)
                    for rule in ("exclude", "sets", "exclude_history")}  # fmt: skip
            if all(count > 0 for count in used.values()) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
    assert sum_of(values, "ugt_request_failure") == 0  # every rule request answered
    assert all(count > 0 for count in used.values()), used
