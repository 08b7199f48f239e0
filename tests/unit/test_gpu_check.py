"""scripts/gpu_check.sh: its CPU-safe parts (help, argument errors, the one-line error without a GPU) and the
report it writes into BENCHMARKS.md, from fabricated results."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).parents[2] / "scripts"


def gpu_check(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(SCRIPTS / "gpu_check.sh"), *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHON": sys.executable, **env},
    )


@pytest.fixture(scope="module")
def report():
    spec = importlib.util.spec_from_file_location("gpu_check_report", SCRIPTS / "gpu_check_report.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_help():
    result = gpu_check("--help")
    assert result.returncode == 0
    assert "--batches" in result.stdout and "P99 < 30 ms at batch 64" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--frobnicate"], "unknown argument '--frobnicate'"),
        (["--batches"], "--batches needs a value"),
        (["--lengths", "32,abc"], "--lengths: expected positive integers"),
        (["--precisions", "fp8"], "--precisions: use fp32, fp16, int8"),
        (["--calibration", "/no/such/file"], "--calibration: no file"),
    ],
)
def test_argument_errors_are_one_line(args, message):
    result = gpu_check(*args)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and message in result.stderr, result.stderr


def test_without_a_gpu_it_exits_with_one_line(tmp_path):
    result = gpu_check("--work-dir", str(tmp_path / "work"), NVIDIA_SMI="false")
    assert result.returncode == 3
    assert result.stderr == "gpu_check.sh: no NVIDIA GPU here (nvidia-smi lists none); nothing was measured\n"
    assert not (tmp_path / "work").exists()


def test_without_tensorrt_it_falls_back_to_pytorch_on_cuda(tmp_path):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available() or importlib.util.find_spec("tensorrt"):
        pytest.skip("a real GPU check would run here")
    fake = tmp_path / "nvidia-smi"
    fake.write_text("#!/bin/sh\necho 'NVIDIA H200, 143771 MiB, 560.35'\n")
    fake.chmod(0o755)
    result = gpu_check("--work-dir", str(tmp_path / "work"), "--output", str(tmp_path / "B.md"), NVIDIA_SMI=str(fake))
    # here torch is the CPU build: the PyTorch helper is reached and says, in one line, what is missing
    assert result.returncode == 3, result.stderr
    assert (
        result.stderr.strip().splitlines()[-1].startswith("gpu_check_torch.py: torch ") and "no CUDA" in result.stderr
    )
    assert "timing the model step with PyTorch on CUDA" in result.stdout


def test_the_torch_helper_checks_its_arguments(tmp_path):
    helper = [sys.executable, str(SCRIPTS / "gpu_check_torch.py"), "--output", str(tmp_path / "t.json")]
    bad = subprocess.run([*helper, "--precisions", "int4"], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "unknown precision" in bad.stderr
    assert subprocess.run([*helper, "--batches", "0"], capture_output=True, timeout=120).returncode == 2


def test_triton_gpu_metrics_are_parsed(report):
    text = (
        "# HELP nv_gpu_utilization GPU utilization rate [0.0 - 1.0)\n"
        'nv_gpu_utilization{gpu_uuid="GPU-a"} 0.91\nnv_gpu_utilization{gpu_uuid="GPU-b"} 0.25\n'
        'nv_gpu_memory_used_bytes{gpu_uuid="GPU-a"} 2147483648\nnv_gpu_memory_used_bytes{gpu_uuid="GPU-b"} 1073741824\n'
        'nv_inference_count{model="ugt_trt",version="1"} 12\n'
    )
    assert report.parse_gpu_metrics(text) == {"util": 0.91, "memory_bytes": 3 * 2**30}


def fabricate_tensorrt_run(work: Path, precision: str, length: int, batch: int, p99: float, util: float) -> None:
    run = work / "bench" / precision / f"L{length}-c{batch}"
    run.mkdir(parents=True)
    (run / "start").write_text("100.0")
    (run / "end").write_text("110.0")
    columns = "target,model,concurrency,throughput,latency_p50,latency_p99"
    (run / "bench.csv").write_text(f"{columns}\nensemble,ugt_recommend,{batch},{batch * 100.0},{p99 / 2},{p99}\n")
    samples = [{"t": 100.0 + i, "util": util, "memory_bytes": 3 * 2**30} for i in range(10)]
    with (work / f"metrics-{precision}.jsonl").open("a") as handle:
        handle.writelines(json.dumps(s) + "\n" for s in samples)


def test_the_section_reports_the_targets_and_replaces_itself(report, tmp_path):
    work = tmp_path / "work"
    fabricate_tensorrt_run(work, "fp16", 512, 64, 21.5, 0.86)
    fabricate_tensorrt_run(work, "fp32", 512, 64, 41.0, 0.93)
    rows = report.tensorrt_rows(work)
    assert {(r["precision"], r["p99_ms"], round(r["util_mean"], 2)) for r in rows} == {
        ("fp16", 21.5, 0.86),
        ("fp32", 41.0, 0.93),
    }  # noqa: E501
    section = report.render_section("tensorrt", rows, "NVIDIA H200", ["TensorRT 10.5"])
    assert "fp16: p99 21.50 ms at batch 64, length 512 (target < 30 ms: met); GPU utilisation 86% (met)" in section
    assert "fp32: p99 41.00 ms" in section and "NOT met" in section
    assert "| fp16 | 512 | 64 | 6400.0 | 21.50 | 86% / 86% | 3072 |" in section
    target = tmp_path / "BENCHMARKS.md"
    target.write_text("# Benchmarks\n\nThe CPU suite.\n")
    report.replace_section(target, section)
    report.replace_section(target, report.render_section("torch", [], "NVIDIA H200", []))
    text = target.read_text()
    assert text.startswith("# Benchmarks\n\nThe CPU suite.\n\n" + report.BEGIN)
    assert text.count(report.BEGIN) == 1 and text.count(report.END) == 1
    assert "not Triton numbers" in text and "21.50" not in text and "not measured" in text
