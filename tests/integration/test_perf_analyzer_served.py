"""A short real perf_analyzer run against the served ensemble (numbers are checked for sanity only)."""

from __future__ import annotations

import json
import math

import pytest

from ugt_ensemble.errors import MissingDependencyError
from ugt_ensemble.repository.inspect import RepositoryInfo
from ugt_ensemble_dev.bench.perf_analyzer import PerfAnalyzer, run, write_input_data


@pytest.fixture(scope="module")
def analyzer() -> PerfAnalyzer:
    try:
        return PerfAnalyzer.locate()
    except MissingDependencyError as exc:
        pytest.skip(str(exc))


def test_perf_analyzer_measures_every_ensemble_step(analyzer, server, built, tmp_path):
    _, result = built
    info = RepositoryInfo.read(result.repository)
    model = info.ensemble
    ids = [int(i) for i in result.catalog.item_ids[:12]]
    histories = [json.dumps(ids[:3]), json.dumps(ids[3:8]), json.dumps([ids[8], {"item_id": ids[9], "type": "cart"}])]
    input_data = write_input_data(tmp_path / "input.json", [{"HISTORY": h} for h in histories])

    results = run(
        analyzer,
        server.grpc_url,
        model,
        input_data,
        [1, 2],
        tmp_path / "out",
        measurement_ms=1500,
        stability_percentage=50,
        max_trials=4,
    )

    assert [r.concurrency for r in results] == [1, 2]
    measured = [r for r in results if r.ok]
    assert measured, [r.error for r in results]
    for r in measured:
        assert r.model == model and r.request_count > 0
        assert r.throughput > 0 and not math.isnan(r.p99_us)
        assert r.p99_us >= r.p95_us >= r.p90_us >= r.p50_us > 0
        assert r.server is not None and r.server.model == model and r.server.inference_count > 0
        assert sorted(s.model for s in r.steps) == sorted([info.preprocess, info.model_step, info.postprocess])
        for step in r.steps:
            assert step.inference_count > 0 and step.execution_count > 0 and step.avg_batch >= 1
            assert step.latency_us > 0 and step.compute_infer_us > 0
    csv_lines = (tmp_path / "out" / f"{model}.csv").read_text().splitlines()
    assert csv_lines[0].startswith("Concurrency,Inferences/Second")
    assert len(csv_lines) == 1 + len(measured)
    assert "Request concurrency: 1" in (tmp_path / "out" / f"{model}.log").read_text()


def test_bench_perf_analyzer_runs_every_round(built, server, tmp_path):
    """`rounds` reaches perf_analyzer: one measurement per (round, concurrency, target), medians kept."""
    from ugt_ensemble.config import BenchmarkConfig
    from ugt_ensemble_dev.bench.runner import run_benchmark

    try:
        PerfAnalyzer.locate()
    except MissingDependencyError as exc:
        pytest.skip(str(exc))
    _, result = built
    config = BenchmarkConfig(
        triton_url=server.grpc_url,
        targets=("model_step",),
        concurrency=(1,),
        history_lengths="8",
        histories=4,
        load=False,
        perf_analyzer=True,
        perf_measurement_ms=800,
        rounds=2,
    )
    outcome = run_benchmark(
        config,
        RepositoryInfo.read(result.repository),
        tmp_path,
        show_progress=False,
        server_pid=server.process.pid,
    )
    assert sorted(p.name for p in (tmp_path / "perf_analyzer" / "c1").iterdir()) == ["round1", "round2"]
    assert len(outcome.perf["model_step"]) == 1 and outcome.perf["model_step"][0].throughput > 0
    assert outcome.cpu_perf and outcome.cpu_perf[0][:2] == ("model_step", 1)
