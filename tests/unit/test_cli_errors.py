"""Every command on bad input: one line of error on stderr, a non-zero exit, no traceback."""

import subprocess
import sys

import pytest

MISSING = "/nonexistent/repository"
COMMANDS = [
    (["build", "--catalog", "missing.csv"], "catalog missing.csv: no such file"),
    (["build", "--output-dir", "a_file"], "exists and is not a directory"),
    (["serve", "--model-repository", MISSING, "--http-port", "0", "--grpc-port", "0", "--metrics-port", "0"],
     "does not exist"),
    (["infer", "--file", "missing.jsonl"], "histories file missing.jsonl: cannot read"),
    (["infer"], "no histories"),
    (["demo", "--output-dir", "a_file"], "a_file"),
    (["bench", "--model-repository", MISSING], "cannot read the build manifest"),
    (["deploy", "--model-repository", MISSING, "--model", "m.pt2"], "cannot read the build manifest"),
    (["rollback", "--model-repository", MISSING], "cannot read the build manifest"),
    (["versions", "--model-repository", MISSING], "cannot read the build manifest"),
    (["variant", "--model-repository", MISSING, "--name", "b", "--version", "2"], "cannot read the build manifest"),
    (["stats", "--metrics-url", "http://127.0.0.1:1/metrics"], "cannot read Triton's metrics"),
]  # fmt: skip


@pytest.mark.parametrize(("args", "message"), COMMANDS, ids=[" ".join(a[:2]) for a, _ in COMMANDS])
def test_one_line_of_error_and_no_traceback(tmp_path, args, message):
    (tmp_path / "a_file").write_text("not a directory")
    result = subprocess.run(
        [sys.executable, "-m", "ugt_ensemble", *args], capture_output=True, text=True, cwd=tmp_path, timeout=120
    )
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert result.returncode != 0 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert len(errors) == 1 and message in errors[0], result.stderr[-2000:]


def test_validate_reports_a_missing_repository_as_problems(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "ugt_ensemble", "validate", "--model-repository", MISSING],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 1 and "Traceback" not in result.stderr and "not a directory" in result.stdout
