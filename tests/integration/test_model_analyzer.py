"""Triton Model Analyzer's quick search on the built repository, end to end in local launch mode on CPU,
as README shows it (`python -m ugt_ensemble analyze`), kept short."""

from __future__ import annotations

import csv
import shutil
import subprocess
import sys

import pytest
import yaml

from ugt_ensemble.tools.model_analyzer import analyzer_dir


@pytest.fixture(scope="module")
def repository(built, tmp_path_factory):
    """A copy of the built repository (Model Analyzer writes its files beside it)."""
    _, result = built
    target = tmp_path_factory.mktemp("analyze") / "ensemble"
    shutil.copytree(result.repository, target)
    return target


def test_the_written_config_fills_in_what_local_mode_needs(repository):
    done = subprocess.run(
        [sys.executable, "-m", "ugt_ensemble", "analyze", "--model-repository", str(repository), "--write-only"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    config = yaml.safe_load((analyzer_dir(repository) / "config.yaml").read_text())
    assert config["triton_launch_mode"] == "local" and config["run_config_search_mode"] == "quick"
    flags = config["triton_server_flags"]
    assert (shutil.os.path.isfile(f"{flags['backend-directory']}/python/libtriton_python.so"))
    assert {flags[f"{kind}-address"] for kind in ("http", "grpc", "metrics")} == {"127.0.0.1"}
    assert "cuda_runtime/lib" in config["triton_server_environment"]["LD_LIBRARY_PATH"]
    assert config["triton_server_environment"]["PATH"].startswith(str(shutil.os.path.dirname(sys.executable)))
    assert config["perf_analyzer_flags"]["input-data"].endswith("ensemble_tools/perf_input_ugt_recommend.json")
    assert not any(p.name.endswith("_tools") for p in repository.iterdir())  # nothing inside the repository


def test_model_analyzer_profiles_the_ensemble_and_reports(repository):
    if shutil.which("model-analyzer", path=shutil.os.path.dirname(sys.executable)) is None:
        pytest.skip("model-analyzer is not installed (pip install 'ugt-ensemble[analyze]')")
    command = [
        sys.executable, "-m", "ugt_ensemble", "analyze", "--model-repository", str(repository),
        "--max-concurrency", "2", "--max-instance-count", "1", "--max-batch-size", "2", "--measurement-ms", "500",
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=900)
    log = (analyzer_dir(repository) / "model_analyzer.log").read_text(errors="replace")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:] + log[-3000:]
    results = analyzer_dir(repository) / "results"
    assert (results / "reports" / "summaries" / "ugt_recommend" / "result_summary.html").is_file()
    with (results / "results" / "metrics-model-inference.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    batch_sizes = {row["Max Batch Size"] for row in rows}
    assert "1,1,1" in batch_sizes  # a candidate below the build's 64 loads (warm-up follows max_batch_size)
    assert all(float(row["Throughput (infer/sec)"]) > 0 for row in rows)
    assert "failed to run warmup sample" not in log
