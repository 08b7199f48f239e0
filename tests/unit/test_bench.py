"""The benchmark's pure parts: length distributions, workloads, statistics, checks and reports."""

import json

import numpy as np
import pytest

from ugt_ensemble.bench.checks import check_targets
from ugt_ensemble.bench.loadgen import LoadSpec
from ugt_ensemble.bench.report import markdown_table, plot, write_csv
from ugt_ensemble.bench.runner import BenchmarkConfig
from ugt_ensemble.bench.stats import RunStats
from ugt_ensemble.bench.workload import MALFORMED_HISTORY, LengthDistribution, RepositoryInfo, make_workload
from ugt_ensemble.errors import ConfigError
from ugt_ensemble.runtime.packing import PackingConfig


@pytest.mark.parametrize(("spec", "low", "high"), [("100", 100, 100), ("32-1024", 32, 1024), ("8,64,512", 8, 512)])
def test_length_distributions_stay_in_bounds(spec, low, high, rng):
    sizes = LengthDistribution(spec).sample(2_000, rng)
    assert sizes.min() >= low and sizes.max() <= high
    if "-" in spec:  # log-uniform: about as many below the geometric mean as above
        assert 0.4 < np.mean(sizes < np.sqrt(low * high)) < 0.6


@pytest.mark.parametrize("spec", ["", "abc", "10-5", "1-2-3"])
def test_bad_length_specs(spec):
    with pytest.raises(ConfigError):
        LengthDistribution(spec)


def test_workload_packs_like_the_server_and_marks_malformed(index, tmp_path):
    info = RepositoryInfo(tmp_path, "ugt_recommend", "ugt_trt", None, index, PackingConfig(64, (16, 64)))
    workload = make_workload(info, LengthDistribution("5-40"), count=50, malformed_share=0.3, seed=1)
    bad = [i for i, h in enumerate(workload.histories) if h == MALFORMED_HISTORY]
    assert 5 < len(bad) < 30 and all(workload.packed[i] is None for i in bad)
    good = next(i for i in range(50) if i not in bad)
    packed = workload.packed[good]
    assert packed["encoder_mask"].shape[1] in (16, 64)
    assert packed["encoder_mask"].sum() == len(json.loads(workload.histories[good]))


def _stats(target, concurrency, throughput, p50, p99):
    return RunStats(target, "m", concurrency, 100, 0, 1.0, throughput, p50, p50, p99, p99, p50, p50, p99)


def test_stats_from_samples_and_failures():
    stats = RunStats.from_samples("ensemble", "ugt_recommend", 4, [0.001, 0.002, 0.003, 0.010], failed=2, seconds=0.5)
    assert stats.succeeded == 4 and stats.failed == 2 and stats.throughput == 8.0
    assert stats.min_ms == 1.0 and stats.max_ms == 10.0 and stats.p50_ms == 2.5
    empty = RunStats.from_samples("ensemble", "x", 1, [], failed=3, seconds=1.0, first_error="boom")
    assert empty.succeeded == 0 and np.isnan(empty.p99_ms) and empty.first_error == "boom"


def test_target_checks():
    runs = [
        _stats("ensemble", 1, 200, 3.0, 5),
        _stats("model_step", 1, 250, 2.5, 4),
        _stats("ensemble", 8, 500, 15, 30),
        _stats("model_step", 8, 520, 14, 28),
        _stats("naive", 8, 150, 50, 60),
    ]
    checks = {c.name: c.ok for c in check_targets(runs)}
    assert checks == {
        "ensemble p50 overhead at concurrency 1": True,
        "ensemble throughput at concurrency 8": True,
        "ensemble vs naive peer at concurrency 8": True,
    }
    slow = check_targets([_stats("ensemble", 8, 300, 15, 70), _stats("naive", 8, 150, 50, 60)])
    assert [c.ok for c in slow] == [False]


def test_reports(tmp_path):
    runs = [_stats("ensemble", c, 100 * c, 2.0 * c, 5.0 * c) for c in (1, 2, 4)]
    text = write_csv(runs, tmp_path / "b.csv").read_text()
    assert text.splitlines()[0].startswith("target,model,concurrency") and len(text.splitlines()) == 4
    assert markdown_table(runs).count("\n") == 4
    picture = plot(runs, tmp_path / "b.png", "title")
    assert picture is None or picture.stat().st_size > 1000


def test_config_validation():
    with pytest.raises(ConfigError, match="targets"):
        BenchmarkConfig(targets=("gpu",))
    with pytest.raises(ConfigError, match="exactly one"):
        BenchmarkConfig(requests=None)
    with pytest.raises(ConfigError):
        LoadSpec(0)


def test_suite_document_keeps_the_optimisation_log(tmp_path, monkeypatch):
    from ugt_ensemble.bench import suite
    from ugt_ensemble.bench.runner import BenchmarkResult

    monkeypatch.setattr(suite, "describe_machine", lambda url: {"cpu": "test CPU"})
    report = tmp_path / "BENCHMARKS.md"
    report.write_text("# old\n\n## Optimisation log\n\n- 2026-11-22: spinning off, +25 % throughput\n")
    runs = [_stats("ensemble", 1, 100, 2.0, 4.0)]
    results = {
        part: BenchmarkResult(BenchmarkConfig(history_lengths=lengths), runs, check_targets(runs))
        for part, lengths in (("compare", "100"), ("lengths", "32-1024"))
    }
    text = suite.suite_markdown(results, report, tmp_path / "benchmarks", "127.0.0.1:1", "python -m ugt_ensemble x")
    assert "- cpu: test CPU" in text and "`python -m ugt_ensemble x`" in text
    assert text.count("| ensemble | 1 |") == 2
    assert text.rstrip().endswith("- 2026-11-22: spinning off, +25 % throughput")
