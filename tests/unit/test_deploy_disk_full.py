"""A deploy on a full disk stops with one line (what failed, that the repository is unchanged, the free space and
what a version takes), exit 2, no traceback, and leaves the repository as it was: a real built repository copied
onto a small tmpfs (needs root to mount it; skipped otherwise), the real CLI."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ugt_ensemble.build import build_repository
from ugt_ensemble.catalog import Catalog, save_catalog_csv, synthetic_catalog
from ugt_ensemble.config import BuildConfig, ExportConfig, TritonConfig
from ugt_ensemble.errors import RepositoryError
from ugt_ensemble.progress import StepProgress
from ugt_ensemble.serving.rollout import Rollout
from ugt_ensemble.serving.versions import VersionedRepository

ROOT = Path(__file__).parents[2]
#: Room left on the tmpfs beside the copied repository: less than a new version's catalog data.
SPARE_KIB = 700


def _tree(root: Path) -> dict[str, str]:
    """Every file's sha256 by relative path (the lock file aside: a version command creates it)."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != ".ugt-lock"
    }


@pytest.fixture
def small_disk(tmp_path, tiny_config):
    """mount(spare_kib) -> (repository on a tmpfs with about `spare_kib` free, catalog file elsewhere); unmounted
    afterwards."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    catalog = synthetic_catalog(2_000, seed=3)
    save_catalog_csv(catalog, tmp_path / "a.csv")
    save_catalog_csv(Catalog(catalog.item_ids[1:], catalog.codes[1:]), tmp_path / "b.csv")  # deployed: a change
    export = ExportConfig(precision="fp32", max_seq_length=64, validation_shapes=((1, 1), (2, 16)),
                          catalog_path=tmp_path / "a.csv")  # fmt: skip
    build_repository(BuildConfig(output_dir=tmp_path / "built", model_config=tiny_config, seed=3, export=export,
                                 triton=TritonConfig.cpu()))  # fmt: skip
    # what the repository takes on a tmpfs: each file rounded up to whole 4 KiB pages, each folder one page
    paths = list((tmp_path / "built").rglob("*"))
    used = sum(4 * -(-p.stat().st_size // 4096) if p.is_file() else 4 for p in paths)
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = []

    def mount(spare_kib: int | None) -> tuple[Path, Path]:
        """`spare_kib` free beside the copy; None: room for a whole new version (as large as the built one)."""
        spare_kib = used + 1024 if spare_kib is None else spare_kib
        size = f"size={used + 200 + spare_kib}k"
        if subprocess.run(["mount", "-t", "tmpfs", "-o", size, "tmpfs", str(disk)], capture_output=True).returncode:
            pytest.skip("cannot mount a tmpfs here")
        mounted.append(disk)
        shutil.copytree(tmp_path / "built", disk / "repo", symlinks=True)
        versions = VersionedRepository(disk / "repo")
        versions.pin(1)
        versions.keep_loaded([1])  # as after a first deploy: nothing is pinned again before the new version
        return disk / "repo", tmp_path / "b.csv"

    try:
        yield mount
    finally:
        for folder in mounted:
            subprocess.run(["umount", str(folder)], check=True)


def test_a_full_disk_during_deploy_is_one_line_and_changes_nothing(small_disk):
    repo, catalog = small_disk(SPARE_KIB)
    before = _tree(repo)
    command = [sys.executable, "-m", "ugt_ensemble", "deploy", "--model-repository", str(repo), "--catalog",
               str(catalog), "-q"]  # fmt: skip
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    free = shutil.disk_usage(repo).free
    print(f"\ndeploy on a full disk ({free // 1024} KiB free after it): rc {result.returncode}: {result.stderr}")
    assert result.returncode == 2, result.stdout + result.stderr[-3000:]
    assert "Traceback" not in result.stderr and result.stderr.count("\n") == 1
    message = result.stderr
    assert message.startswith(f"error: deploy of version 2 to {repo} failed")
    assert "no space left on device" in message
    assert f"{repo} is unchanged (the partly written version was removed; no version 2 is there)" in message
    assert f"{repo.parent} has " in message and " MiB free; the served version takes " in message
    assert message.rstrip().endswith("free space and deploy again")
    assert _tree(repo) == before and VersionedRepository(repo).numbers() == [1]
    assert [p.name for p in repo.parent.iterdir()] == ["repo"]  # no staging folder left beside it
    assert free >= SPARE_KIB * 1024 // 2  # what the partly written version took is free again


class FillingProgress(StepProgress):
    """Progress that fills the disk when the staged version starts moving in: the commit phase meets ENOSPC."""

    def __init__(self, filler: Path) -> None:
        super().__init__(enabled=False)
        self.filler = filler

    def step(self, title: str):  # noqa: ANN201 - a context manager
        if title.startswith("Checking the configs and moving the version in"):
            with self.filler.open("wb") as handle:
                try:
                    while True:
                        handle.write(b"\0" * 65536)
                        handle.flush()
                except OSError:
                    pass
        return super().step(title)


def test_a_disk_filling_up_while_the_version_moves_in_takes_it_out_again(small_disk):
    # room for the staged version (a data-only version copies the model file: about as large as the served one),
    # filled before it moves in
    repo, catalog = small_disk(None)
    before, filler = _tree(repo), repo.parent / "filler"
    with pytest.raises(RepositoryError) as caught:
        Rollout(repo).deploy({}, catalog, progress=FillingProgress(filler))
    filler.unlink(missing_ok=True)
    message = str(caught.value)
    assert "in step 'Checking the configs and moving the version in': no space left on device" in message
    assert f"{repo} is unchanged (the partly written version was removed; no version 2 is there)" in message
    assert _tree(repo) == before and VersionedRepository(repo).numbers() == [1]
    assert VersionedRepository(repo).loaded_policy() == [1]
    assert sorted(p.name for p in repo.parent.iterdir()) == ["repo"]
