"""The repository's lock file is never a way to write another file: whoever can write the repository folder can
plant `.ugt-lock` as a symlink or a hard link to a file the operator (often root) may write; version commands
refuse it, naming the path, and the other file keeps every byte."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ugt_ensemble.config import BuildConfig, ExportConfig, TritonConfig
from ugt_ensemble.errors import RepositoryError
from ugt_ensemble.repository.lock import LOCK_FILE, RepositoryLock, read_holder
from ugt_ensemble.repository.manifest import write_manifest
from ugt_ensemble.repository.writer import write_models
from ugt_ensemble.serving.versions import VersionedRepository

ROOT = Path(__file__).parents[2]
STEPS = ("preprocess", "ugt_trt", "postprocess")
PRECIOUS = "precious data, 1234567890\n" * 10


@pytest.fixture
def repository(tmp_path, catalog) -> Path:
    """A written one-version repository (a placeholder model file): enough for `versions --cleanup`."""
    root = tmp_path / "repo"
    write_models(root, BuildConfig(export=ExportConfig(precision="fp32"), triton=TritonConfig.cpu()), catalog.index())
    (root / "ugt_trt" / "1" / "model.onnx").write_bytes(b"placeholder")
    names = {"preprocess_name": STEPS[0], "step_name": STEPS[1], "postprocess_name": STEPS[2]}
    write_manifest(root, {"generator": "test", "ensemble": "ugt_recommend", "triton": names,
                          "models": ["ugt_recommend", *STEPS], "files": [], "versions": {}})  # fmt: skip
    VersionedRepository(root).keep_loaded([1])
    return root


@pytest.fixture
def victim(tmp_path) -> Path:
    path = tmp_path / "victim.txt"
    path.write_text(PRECIOUS)
    return path


def _cleanup(root: Path) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "ugt_ensemble", "versions", "--cleanup", "--keep", "5", "--model-repository",
               str(root)]  # fmt: skip
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_a_symlinked_lock_file_is_refused_and_its_target_keeps_its_bytes(repository, victim):
    (repository / LOCK_FILE).symlink_to(victim)
    result = _cleanup(repository)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and result.stderr.count("\n") == 1
    assert f"{repository / LOCK_FILE}: the repository's lock file is a symbolic link" in result.stderr
    assert "remove" in result.stderr
    assert victim.read_text() == PRECIOUS
    assert read_holder(repository / LOCK_FILE) == {}  # reading does not follow it either


def test_a_hard_linked_lock_file_is_refused_and_the_other_name_keeps_its_bytes(repository, victim):
    os.link(victim, repository / LOCK_FILE)
    result = _cleanup(repository)
    assert result.returncode == 2 and "is a hard link (2 names share the file)" in result.stderr, result.stderr
    assert victim.read_text() == PRECIOUS


@pytest.mark.parametrize("kind", ["fifo", "folder"])
def test_a_lock_path_that_is_no_regular_file_is_refused_without_blocking(tmp_path, kind):
    path = tmp_path / LOCK_FILE
    os.mkfifo(path) if kind == "fifo" else path.mkdir()
    with pytest.raises(RepositoryError, match="lock file is not a regular file"):
        with RepositoryLock(tmp_path, "deploy", timeout_s=0):
            pass


def test_a_symlink_planted_between_check_and_open_is_refused(tmp_path, victim, monkeypatch):
    """O_NOFOLLOW, not only the check before: the symlink appears after `lstat` found nothing."""
    real_lstat = os.lstat
    planted = []

    def plant_first(path, *args, **kwargs):  # the attacker wins the race right after the first check
        try:
            return real_lstat(path, *args, **kwargs)
        finally:
            if str(path).endswith(LOCK_FILE) and not planted:
                planted.append(True)
                os.symlink(victim, path)

    monkeypatch.setattr(os, "lstat", plant_first)
    with pytest.raises(RepositoryError, match="lock file is a symbolic link"):
        with RepositoryLock(tmp_path, "deploy", timeout_s=0):
            pass
    assert planted and victim.read_text() == PRECIOUS


def test_a_plain_lock_file_left_by_an_earlier_run_is_used(repository):
    (repository / LOCK_FILE).write_text('{"operation": "deploy"}\n')
    result = _cleanup(repository)
    assert result.returncode == 0, result.stderr
    assert (repository / LOCK_FILE).read_text() == ""  # released: no holder named
