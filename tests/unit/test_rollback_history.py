"""`rollback` without a version undoes the last switch: it serves the version served before the current one, never
a version deployed `--no-switch` and never served; through the real CLI on a real built repository, no server."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ugt_ensemble.build import build_repository
from ugt_ensemble.catalog import save_catalog_csv, synthetic_catalog
from ugt_ensemble.config import BuildConfig, ExportConfig, TritonConfig
from ugt_ensemble.repository.manifest import MANIFEST
from ugt_ensemble.serving.versions import HISTORY_KEY, VersionedRepository

ROOT = Path(__file__).parents[2]


@pytest.fixture
def repo(tmp_path, tiny_config) -> Path:
    save_catalog_csv(synthetic_catalog(1_000, seed=5), tmp_path / "a.csv")
    export = ExportConfig(precision="fp32", max_seq_length=64, validation_shapes=((1, 1), (2, 16)),
                          catalog_path=tmp_path / "a.csv")  # fmt: skip
    build_repository(BuildConfig(output_dir=tmp_path / "repo", model_config=tiny_config, seed=5, export=export,
                                 triton=TritonConfig.cpu()))  # fmt: skip
    return tmp_path / "repo"


def _cli(repo: Path, *args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "ugt_ensemble", *args, "--model-repository", str(repo)]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    return result


def _catalogs(repo: Path, count: int) -> list[str]:
    """`count` catalogs, each the build's less one item of its own (a deploy of the served catalog makes no
    version)."""
    lines = (repo.parent / "a.csv").read_text().splitlines(keepends=True)
    paths = []
    for k in range(count):
        path = repo.parent / f"a{k}.csv"
        path.write_text("".join(lines[: k + 1] + lines[k + 2 :]))
        paths.append(str(path))
    return paths


def _rollback(repo: Path) -> int:
    result = _cli(repo, "rollback", "-q")
    assert result.returncode == 0, result.stderr[-3000:]
    return int(result.stdout.split(" serves version ")[1].split()[0])


def test_rollback_goes_to_the_version_served_before_not_one_never_served(repo):
    for catalog, extra in zip(_catalogs(repo, 3), ([], ["--no-switch"], [])):  # 2 served, 3 never served, 4 served
        assert _cli(repo, "deploy", "--catalog", catalog, "-q", *extra).returncode == 0
    assert VersionedRepository(repo).pinned() == 4
    assert VersionedRepository(repo).served_history() == [1, 2, 4]
    assert _rollback(repo) == 2  # the newest older one kept, 3, was never served
    assert VersionedRepository(repo).pinned() == 2
    assert _rollback(repo) == 1  # one further back, not back to 4
    refused = _cli(repo, "rollback", "-q")
    assert refused.returncode == 2 and "no version served before 1 is kept; pass the version" in refused.stderr
    assert _cli(repo, "rollback", "--version", "3", "-q").returncode == 0
    assert _rollback(repo) == 1 and VersionedRepository(repo).served_history() == [1]


def test_a_repository_without_a_recorded_history_rolls_back_to_the_newest_older_version(repo):
    for catalog in _catalogs(repo, 2):
        assert _cli(repo, "deploy", "--catalog", catalog, "-q").returncode == 0
    manifest = json.loads((repo / MANIFEST).read_text())
    del manifest[HISTORY_KEY]  # switched by a version of this package that recorded none
    (repo / MANIFEST).write_text(json.dumps(manifest))
    result = _cli(repo, "rollback")
    assert result.returncode == 0 and "serves version 2" in result.stdout, result.stderr[-2000:]
    assert "no version served before 3 is recorded; rolling back to the newest older one kept, 2" in result.stderr
