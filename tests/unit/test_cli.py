"""The CLI through subprocess: one-line errors (no traceback) and a full build without a server."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest


def cli(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "ugt_ensemble", *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=600
    )


@pytest.mark.parametrize(
    ("files", "args", "message"),
    [
        ({"bad.csv": "item_id,l1,l2,l3\n1,2,3,x\n"}, ["--catalog", "bad.csv"], "line 2: l3 is 'x', not an integer"),
        ({}, ["--checkpoint", "missing.pt"], "checkpoint missing.pt: no such file"),
        ({"ckpt.pt": "garbage"}, ["--checkpoint", "ckpt.pt"], "not a weights-only PyTorch checkpoint"),
        (
            {"m.json": '{"d_model": 30}'},
            ["--model-config", "m.json"],
            "model config m.json: `num_heads` (4) must divide",
        ),
        ({}, ["--max-seq-length", "2048"], "exceeds the model's `max_seq_length` (1024)"),
        (
            {},
            ["--engine", "tensorrt", "--precision", "fp16"],
            "platform tensorrt_plan (--engine tensorrt) needs TensorRT",
        ),
        ({}, ["--engine", "onnxruntime", "--precision", "int8"], "int8 is not available with platform onnxruntime"),
        ({}, ["--model", "missing.pt2", "--catalog", "c.csv"], "catalog c.csv: no such file"),
        ({"m.pt2": "not an archive"}, ["--model", "m.pt2"], "needs the catalog its codes refer to"),
        (
            {"c.csv": "item_id,l1,l2,l3\n1,2,3,4\n", "m.pt2": "x"},
            ["--model", "m.pt2", "--catalog", "c.csv"],
            "model m.pt2: not a torch.export archive",
        ),
        ({}, ["--target-server", "cpu-wheel", "--engine", "tensorrt"], "has the Python backend only"),
    ],
)
def test_build_errors_are_one_line_and_exit_2(tmp_path, files, args, message):
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    result = cli("build", "--output-dir", "out", *args, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--ensemble-name", "empfehlung_ü"], "must be 1-64 ASCII characters"),
        (["--ensemble-name", "x" * 300], "must be 1-64 ASCII characters"),
        (["--ensemble-name", "../up"], "must be 1-64 ASCII characters"),
        (["--output-dir", "a_file"], "exists and is not a directory"),
    ],
)
def test_bad_names_and_output_paths_fail_before_any_work(tmp_path, args, message):
    (tmp_path / "a_file").write_text("keep")
    start = time.perf_counter()
    result = cli("build", *args, cwd=tmp_path)
    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert time.perf_counter() - start < 30  # refused before the export (which takes minutes)
    assert (tmp_path / "a_file").read_text() == "keep"


def test_build_from_files_writes_a_valid_repository(tmp_path, catalog, tiny_config):
    rows = "\n".join(f"{i},{a},{b},{c}" for i, (a, b, c) in zip(catalog.item_ids, catalog.codes.tolist()))
    (tmp_path / "catalog.csv").write_text("item_id,l1,l2,l3\n" + rows + "\n")
    (tmp_path / "model.json").write_text(json.dumps(tiny_config.to_dict()))
    (tmp_path / "repo").mkdir()
    (tmp_path / "repo" / "README.md").write_text("kept")
    result = cli(
        "build",
        "--output-dir",
        "repo",
        "--catalog",
        "catalog.csv",
        "--model-config",
        "model.json",
        "--max-seq-length",
        "128",
        "--max-batch-size",
        "8",
        "--exclude-history",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert "[10/10] Checking configs against Triton's ModelConfig proto: done" in result.stderr
    assert "Wrote the Triton model repository" in result.stdout and "catalog validity: 100.0%" in result.stdout
    manifest = json.loads((tmp_path / "repo" / "ugt_build.json").read_text())
    assert manifest["catalog"]["items"] == len(catalog) and manifest["model_config"]["d_model"] == 32
    assert (tmp_path / "repo" / "README.md").read_text() == "kept"
    assert not list(tmp_path.glob(".repo.staging-*"))
    check = cli("validate", "--model-repository", "repo", cwd=tmp_path)
    assert check.returncode == 0 and "✓" in check.stdout


def test_validate_reports_problems(tmp_path):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "config.pbtxt").write_text('name: "m"\nbackend: "python"\nmax_batch_sise: 1\n')
    result = cli("validate", "--model-repository", tmp_path)
    assert result.returncode == 1 and "max_batch_sise" in result.stdout


def test_infer_without_histories_says_how(tmp_path):
    result = cli("infer", "--url", "127.0.0.1:1")
    assert result.returncode == 2 and "no histories" in result.stderr


def test_export_script_builds_then_reuses_the_export(tmp_path):
    repo = tmp_path / "repo"
    env = {
        **os.environ,
        "MODEL_REPOSITORY": str(repo),
        "MODEL_NAME": "reco",
        "MAX_BATCH_SIZE": "8",
        "PYTHON": sys.executable,
    }
    script = Path(__file__).parents[2] / "scripts" / "export.sh"
    common = ["--skip-trt", "--synthetic-items", "500", "--max-seq-length", "64"]
    first = subprocess.run(["bash", str(script), *common], capture_output=True, text=True, env=env, timeout=600)
    assert first.returncode == 0, first.stderr[-2000:]
    assert (repo / "reco" / "config.pbtxt").is_file() and "max_batch_size: 8" in (
        repo / "ugt_trt" / "config.pbtxt"
    ).read_text()
    second = subprocess.run(
        ["bash", str(script), "--skip-export", *common], capture_output=True, text=True, env=env, timeout=600
    )
    assert second.returncode == 0, second.stderr[-2000:]
    assert "Taking " in second.stderr and "Exporting ONNX" not in second.stderr and "Validating ONNX" in second.stderr
    without = subprocess.run(
        ["bash", str(script), "-q"],
        capture_output=True,
        text=True,
        env={**env, "MODEL_REPOSITORY": str(tmp_path / "other")},
        timeout=600,
    )
    assert without.returncode == 2 and "(--engine tensorrt) needs TensorRT" in without.stderr  # no TensorRT here


@pytest.mark.parametrize("command", ["infer", "serve", "validate", "bench", "stats", "versions", "build"])
def test_commands_start_without_torch_or_tritonclient(command):
    """Only running an export imports torch; --help and the parser of every command stay light."""
    code = (
        "import sys\nfrom ugt_ensemble.cli import main\ntry:\n    main([%r, '--help'])\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in ('torch', 'onnx', 'tritonclient') if m in sys.modules), file=sys.stderr)"
    ) % command
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.stderr.strip().splitlines()[-1] == "[]", result.stderr[-1000:]
