"""The benchmark's pure parts: length distributions, workloads, results, checks, reports and the CLI flags."""

import json
import math

import numpy as np
import pytest

from ugt_ensemble.client.load import LoadSpec
from ugt_ensemble.client.load_results import COLUMNS, BenchmarkResult, median_run
from ugt_ensemble.config import BENCH_TARGETS, BenchmarkConfig
from ugt_ensemble.errors import ConfigError
from ugt_ensemble.histories import LengthDistribution
from ugt_ensemble.repository.inspect import RepositoryInfo
from ugt_ensemble.runtime.packing import PackingConfig
from ugt_ensemble_dev.bench.checks import check_targets
from ugt_ensemble_dev.bench.profiles import SuiteConfig, TuneConfig
from ugt_ensemble_dev.bench.report import markdown_table, plot, write_csv
from ugt_ensemble_dev.bench.runner import BenchReport, report_json, result_markdown
from ugt_ensemble_dev.bench.targets import TARGETS
from ugt_ensemble_dev.bench.workload import MALFORMED_HISTORY, make_workload

SEEDS_FIELDS = (
    "throughput", "latency_p50", "latency_p90", "latency_p95", "latency_p99", "latency_avg", "latency_min",
    "latency_max", "total_requests", "successful_requests", "failed_requests",
)  # fmt: skip


def _info(tmp_path, index, naive_peer=None, k=50):
    names = dict(ensemble="ugt_recommend", preprocess="preprocess", model_step="ugt_trt", postprocess="postprocess")
    return RepositoryInfo(tmp_path, **names, naive_peer=naive_peer, index=index,
                          packing=PackingConfig(64, (16, 64)), num_recommendations=k)  # fmt: skip


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
    workload = make_workload(_info(tmp_path, index), LengthDistribution("5-40"), count=50, malformed_share=0.3, seed=1)
    bad = [i for i, h in enumerate(workload.histories) if h == MALFORMED_HISTORY]
    assert 5 < len(bad) < 30 and all(workload.packed[i] is None for i in bad)
    good = next(i for i in range(50) if i not in bad)
    packed = workload.packed[good]
    assert packed["encoder_mask"].shape[1] in (16, 64)
    assert packed["encoder_mask"].sum() == len(json.loads(workload.histories[good]))


def _result(target, concurrency, throughput, p50, p99, failed=0):
    return BenchmarkResult(throughput, p50, p50, p99, p99, p50, p50, p99, 100 + failed, 100, failed,
                           target=target, model="m", concurrency=concurrency, seconds=1.0)  # fmt: skip


def test_result_has_the_seeds_fields_first_and_ours_with_defaults():
    names = [f for f in BenchmarkResult.__dataclass_fields__]
    assert tuple(names[: len(SEEDS_FIELDS)]) == SEEDS_FIELDS
    plain = BenchmarkResult(10.0, 1, 2, 3, 4, 2, 0.5, 5, 11, 10, 1)
    ours = (plain.target, plain.model, plain.concurrency, plain.seconds, plain.first_error)
    assert ours == ("ensemble", "", 1, 0.0, "")
    assert COLUMNS[:3] == ("target", "model", "concurrency") and set(COLUMNS) == set(names)
    assert list(plain.as_row()) == list(COLUMNS)


def test_result_from_samples_and_failures():
    stats = BenchmarkResult.from_samples(
        [0.001, 0.002, 0.003, 0.010], failed=2, seconds=0.5, target="ensemble", model="ugt_recommend", concurrency=4
    )
    assert stats.successful_requests == 4 and stats.failed_requests == 2 and stats.total_requests == 6
    assert stats.throughput == 8.0 and stats.concurrency == 4
    assert stats.latency_min == 1.0 and stats.latency_max == 10.0 and stats.latency_p50 == 2.5
    empty = BenchmarkResult.from_samples([], failed=3, seconds=1.0, first_error="boom")
    assert empty.successful_requests == 0 and math.isnan(empty.latency_p99) and empty.first_error == "boom"
    assert empty.throughput == 0.0 and empty.total_requests == 3


def test_summary_is_one_readable_line():
    line = BenchmarkResult.from_samples([0.002] * 9, failed=1, seconds=1.0, model="ugt_recommend", first_error="bad")
    text = line.summary()
    assert "\n" not in text and text.startswith("ensemble (ugt_recommend) c=1: 9.0 req/s")
    assert "p50 2.00" in text and "p99 2.00 ms" in text and "9/10 ok, 1 failed (first: bad)" in text


def test_median_run():
    assert median_run([3, 1, 2], key=float) == 2 and median_run([4, 1, 3, 2], key=float) == 3
    with pytest.raises(ValueError):
        median_run([], key=float)


def test_target_checks():
    runs = [
        _result("ensemble", 1, 200, 3.0, 5),
        _result("model_step", 1, 250, 2.5, 4),
        _result("ensemble", 8, 500, 15, 30),
        _result("model_step", 8, 520, 14, 28),
        _result("naive", 8, 150, 50, 60),
    ]
    checks = {c.name: c.ok for c in check_targets(runs)}
    assert checks == {
        "ensemble p50 overhead at concurrency 1": True,
        "ensemble throughput at concurrency 8": True,
        "ensemble vs naive peer at concurrency 8": True,
    }
    slow = check_targets([_result("ensemble", 8, 300, 15, 70), _result("naive", 8, 150, 50, 60)])
    assert [c.ok for c in slow] == [False]


def test_reports(tmp_path):
    runs = [_result("ensemble", c, 100 * c, 2.0 * c, 5.0 * c) for c in (1, 2, 4)]
    text = write_csv(runs, tmp_path / "b.csv").read_text()
    assert text.splitlines()[0].startswith("target,model,concurrency,throughput,latency_p50")
    assert len(text.splitlines()) == 4
    assert markdown_table(runs).count("\n") == 4
    picture = plot(runs, tmp_path / "b.png", "title")
    assert picture is None or picture.stat().st_size > 1000


def test_report_markdown_and_json(tmp_path):
    config = BenchmarkConfig(concurrency=(1, 8), model_repository=tmp_path, duration_s=2.0)
    runs = [_result("ensemble", 1, 100, 2.0, 4.0)]
    report = BenchReport(config, runs, check_targets(runs))
    assert "2 s per run after 100 warm-up requests" in result_markdown(report, None)
    data = json.loads(json.dumps(report_json(report), default=str))
    assert data["config"]["concurrency"] == [1, 8] and data["runs"][0]["latency_p99"] == 4.0


def test_config_validation():
    with pytest.raises(ConfigError, match="targets"):
        BenchmarkConfig(targets=("gpu",))
    assert BenchmarkConfig(concurrency=4).concurrency == (4,)
    with pytest.raises(ConfigError):
        LoadSpec(0, 10, None, 0)
    spec = LoadSpec.of(BenchmarkConfig(num_requests=7, num_warmup_requests=3), 2)
    assert (spec.concurrency, spec.count, spec.num_warmup_requests) == (2, 7, 3)
    assert LoadSpec.of(BenchmarkConfig(duration_s=1.5), 1).count is None


def test_mode_configs_reuse_the_benchmark_defaults_and_checks():
    tune = TuneConfig()
    assert tune.num_warmup_requests == BenchmarkConfig().num_warmup_requests
    assert tune.measurement("h:1").triton_url == "h:1" and tune.measurement("").concurrency == (tune.concurrency,)
    assert TuneConfig(instance_count=(3,)).axes(8) == ((3,), (1, 2, 8), (0, 200))
    assert TuneConfig().axes(4)[0] == (1, 2)
    with pytest.raises(ConfigError, match="history lengths"):
        TuneConfig(history_lengths="x")
    with pytest.raises(ConfigError, match="rounds"):
        SuiteConfig(rounds=0)


def test_target_descriptions_agree_with_the_config():
    assert tuple(TARGETS) == BENCH_TARGETS


def test_suite_document_keeps_the_optimisation_log(tmp_path, monkeypatch):
    from ugt_ensemble_dev.bench import suite

    monkeypatch.setattr(suite, "describe_machine", lambda url: {"cpu": "test CPU"})
    report = tmp_path / "BENCHMARKS.md"
    report.write_text("# old\n\n## Optimisation log\n\n- 2026-11-22: spinning off, +25 % throughput\n")
    runs = [_result("ensemble", 1, 100, 2.0, 4.0)]
    results = {
        part: BenchReport(BenchmarkConfig(history_lengths=lengths), runs, check_targets(runs))
        for part, lengths in (("compare", "100"), ("lengths", "32-1024"))
    }
    text = suite.suite_markdown(results, report, tmp_path / "benchmarks", "127.0.0.1:1", "python -m ugt_ensemble x")
    assert "- cpu: test CPU" in text and "`python -m ugt_ensemble x`" in text
    assert text.count("| ensemble | 1 |") == 2
    assert text.rstrip().endswith("- 2026-11-22: spinning off, +25 % throughput")


def test_suite_configs_follow_the_repository(tmp_path, index):
    from ugt_ensemble_dev.bench.suite import suite_configs

    parts = suite_configs("h:1", _info(tmp_path, index), SuiteConfig(duration_s=2.0))
    assert parts["compare"].targets == ("ensemble", "model_step", "client_packing")
    assert parts["compare"].duration_s == 2.0 and parts["lengths"].triton_url == "h:1"
    with_peer = suite_configs("h:1", _info(tmp_path, index, naive_peer="ugt_naive"), SuiteConfig())
    assert with_peer["compare"].targets == BENCH_TARGETS


def _parse(*argv):
    from ugt_ensemble.cli import build_parser

    return build_parser().parse_args(["bench", *argv])


def test_cli_flags_map_into_the_configs(tmp_path, index):
    from ugt_ensemble_dev.bench.cli import config_from_args, suite_config_from_args, tune_config_from_args

    info = _info(tmp_path, index, naive_peer="ugt_naive")
    default = config_from_args(_parse(), info)
    assert default == BenchmarkConfig(model_repository=tmp_path)
    args = _parse("--concurrency", "1,4", "--requests", "12", "--warmup", "2", "--target", "model_step,naive")
    config = config_from_args(args, info, "h:1")
    assert (config.concurrency, config.num_requests, config.num_warmup_requests) == ((1, 4), 12, 2)
    assert config.targets == ("model_step", "naive") and config.triton_url == "h:1"
    compare = config_from_args(_parse("--compare", "--perf-analyzer-only"), info)
    assert compare.targets == BENCH_TARGETS and compare.history_lengths == "100" and compare.concurrency == (1, 8)
    assert not compare.load and compare.perf_analyzer
    assert config_from_args(_parse("--model", "ugt_trt"), info).targets == ("model_step",)
    with pytest.raises(ConfigError, match="no model 'nope'"):
        config_from_args(_parse("--model", "nope"), info)
    tune = tune_config_from_args(_parse("--concurrency", "2,6", "--duration", "0.5", "--tune-instances", "1,3"))
    assert (tune.concurrency, tune.duration_s, tune.instance_count, tune.rounds) == (6, 0.5, (1, 3), TuneConfig.rounds)
    assert suite_config_from_args(_parse("--rounds", "5")) == SuiteConfig(rounds=5)


def test_cli_rejects_unknown_targets(capsys):
    with pytest.raises(SystemExit):
        _parse("--target", "gpu")
    assert "choose from ensemble" in capsys.readouterr().err
