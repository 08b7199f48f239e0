"""A short smoke of `python -m ugt_ensemble_dev.bench noop` (no timing assertions): the no-op copy of a built
repository serves real catalog items, and one tiny run writes the report."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from ugt_ensemble.client import RecommendClient
from ugt_ensemble.errors import MissingDependencyError
from ugt_ensemble.repository.inspect import RepositoryInfo
from ugt_ensemble_dev.bench.noop import serving
from ugt_ensemble_dev.bench.noop_repos import make_noop_repository
from ugt_ensemble_dev.bench.perf_analyzer import PerfAnalyzer


def test_noop_repository_answers_the_first_catalog_items(built, tmp_path):
    _, result = built
    info = RepositoryInfo.read(result.repository)
    noop = make_noop_repository(info, tmp_path / "noop")
    assert (noop / info.preprocess / "config.pbtxt").read_bytes() == (
        info.path / info.preprocess / "config.pbtxt"
    ).read_bytes()
    assert (noop / info.model_step / "config.pbtxt").read_bytes() == (
        info.path / info.model_step / "config.pbtxt"
    ).read_bytes()
    with serving(noop, info, tmp_path / "server.log") as (url, _), RecommendClient(url, info.ensemble) as client:
        answer = client.recommend_one([int(i) for i in info.index.item_ids[:5]])
    first = set(info.index.item_ids[: info.num_recommendations].tolist())
    assert set(answer.item_ids.tolist()) == first  # postprocess mapped the no-op's codes back to these items
    assert np.all(np.diff(answer.scores) <= 0)


def test_noop_bench_writes_its_report(built, tmp_path):
    try:
        PerfAnalyzer.locate()
    except MissingDependencyError as exc:
        pytest.skip(str(exc))
    _, result = built
    report = tmp_path / "out" / "noop.md"
    command = [
        sys.executable, "-m", "ugt_ensemble_dev.bench", "noop", "--model-repository", str(result.repository),
        "--output", str(report), "--concurrency", "1", "--rounds", "1", "--measurement-ms", "1000",
        "--stability", "100", "--work-dir", str(tmp_path / "work"),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    text = report.read_text(encoding="utf-8")
    for heading in ("## Throughput and latency", "## Requests per second per CPU core", "## Sizing"):
        assert heading in text
    runs = json.loads(report.with_suffix(".json").read_text(encoding="utf-8"))["runs"]
    assert {r["target"] for r in runs} == {"no-op model step", "two-hop floor"}
    assert all(r["throughput"] > 0 and r["cpu_ms_per_request"].get("total", 0) > 0 for r in runs)
