"""A deploy that would drop an item set the served version serves is refused, naming the set, the column, its old
and new kind and the row, unless `--allow-set-changes`: through the real CLI on a real built repository (the
reference UGT, data-only versions), no server."""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ugt_ensemble.build import build_repository
from ugt_ensemble.catalog import synthetic_catalog
from ugt_ensemble.config import BuildConfig, ExportConfig, TritonConfig
from ugt_ensemble.serving.rollout import Rollout
from ugt_ensemble.serving.set_changes import SetChangeError, served_set_names
from ugt_ensemble.serving.versions import VersionedRepository

ROOT = Path(__file__).parents[2]
ITEMS = 2_000
COLOURS = np.array(["red", "blue", "green"])


def _write(path: Path, in_stock: list[str], colour: list[str]) -> Path:
    catalog = synthetic_catalog(ITEMS, seed=3)
    lines = ["item_id,l1,l2,l3,in_stock,colour"]
    lines += [f"{i},{a},{b},{c},{s},{k}" for (i, (a, b, c)), s, k in zip(zip(catalog.item_ids, catalog.codes),
                                                                         in_stock, colour)]  # fmt: skip
    path.write_text("\n".join(lines) + "\n")
    return path


def _in_stock() -> list[str]:
    return [str(int(i % 3 == 0)) for i in range(ITEMS)]


def _colour() -> list[str]:
    return list(COLOURS[np.arange(ITEMS) % 3])


@pytest.fixture(scope="module")
def built(tmp_path_factory, tiny_config) -> Path:
    folder = tmp_path_factory.mktemp("set_changes")
    export = ExportConfig(precision="fp32", max_seq_length=64, validation_shapes=((1, 1), (2, 16)),
                          catalog_path=_write(folder / "a.csv", _in_stock(), _colour()),
                          set_columns=("in_stock", "colour"))  # fmt: skip
    config = BuildConfig(output_dir=folder / "repo", model_config=tiny_config, seed=3, export=export,
                         triton=TritonConfig.cpu())  # fmt: skip
    build_repository(config)
    return folder / "repo"


@pytest.fixture
def repo(built, tmp_path) -> Path:
    """A fresh copy of the built repository (version 1 serves in_stock, colour=red|blue|green)."""
    shutil.copytree(built, tmp_path / "repo", symlinks=True)
    return tmp_path / "repo"


def _deploy(repo: Path, *args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "ugt_ensemble", "deploy", "--model-repository", str(repo), *args]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)


def _refused(result: subprocess.CompletedProcess, repo: Path) -> str:
    assert result.returncode == 2, result.stdout + result.stderr[-3000:]
    assert "Traceback" not in result.stderr and result.stderr.startswith("error: deploy of version 2 refused: ")
    assert result.stderr.rstrip().endswith("or deploy with --allow-set-changes")
    assert VersionedRepository(repo).numbers() == [1] and VersionedRepository(repo).pinned() == 1
    assert not [p for p in repo.parent.iterdir() if p.name.startswith(".repo.version-")]  # staging removed
    return result.stderr


def test_one_maybe_cell_refuses_naming_line_value_and_kinds_then_passes_with_the_flag(repo, tmp_path):
    in_stock = _in_stock()
    in_stock[1233] = "maybe"  # data row 1234: line 1235 of the file, after the header
    new = _write(tmp_path / "new.csv", in_stock, _colour())
    message = _refused(_deploy(repo, "--catalog", str(new), "-q"), repo)
    assert (f"catalog {new} line 1235: in_stock = 'maybe' makes the boolean column in_stock a category column; "
            "the served set 'in_stock' would disappear") in message  # fmt: skip
    assert "INVALID_ARGUMENT (HTTP 400)" in message
    result = _deploy(repo, "--catalog", str(new), "--allow-set-changes", "-q")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Deployed version 2" in result.stdout and "line 1235: in_stock = 'maybe'" in result.stderr  # logged
    assert VersionedRepository(repo).pinned() == 2
    assert {"in_stock=0", "in_stock=1", "in_stock=maybe"} <= set(served_set_names(VersionedRepository(repo)))


def test_set_flags_that_leave_out_a_served_set_refuse(built, repo, tmp_path):
    fresh = tmp_path / "fresh.txt"
    fresh.write_text("\n".join(str(i) for i in synthetic_catalog(ITEMS, seed=3).item_ids[:40]) + "\n")
    message = _refused(_deploy(repo, "--item-set", f"fresh={fresh}", "-q"), repo)
    left_out = "the deploy's set flags leave out --set-column in_stock: the served set 'in_stock' would disappear"
    assert left_out in message
    colour = message.split("the deploy's set flags leave out --set-column colour: the served sets ")[1]
    named = sorted(colour.split(" would disappear")[0].split(", "))
    assert named == ["'colour=blue'", "'colour=green'", "'colour=red'"]
    catalog = str(built.parent / "a.csv")
    kept = _deploy(repo, "--catalog", catalog, "--set-column", "in_stock", "--set-column", "colour", "--item-set",
                   f"fresh={fresh}", "-q")  # fmt: skip
    assert kept.returncode == 0, kept.stderr[-3000:]  # every served set defined again, one added: no question
    assert set(served_set_names(VersionedRepository(repo))) == {"in_stock", "colour=red", "colour=blue",
                                                                "colour=green", "fresh"}  # fmt: skip


def test_a_category_value_gone_and_a_category_turned_boolean_refuse(repo, tmp_path):
    colour = ["red" if c == "blue" else c for c in _colour()]
    gone = _write(tmp_path / "gone.csv", _in_stock(), colour)
    message = _refused(_deploy(repo, "--catalog", str(gone), "-q"), repo)
    assert f"catalog {gone}: no row of column colour has the value(s) 'blue' any more; the served set " in message
    flags = _write(tmp_path / "flags.csv", _in_stock(), [str(i % 2) for i in range(ITEMS)])
    message = _refused(_deploy(repo, "--catalog", str(flags), "-q"), repo)
    assert "column colour now holds only 0/1/true/false, which makes the category column colour a boolean" in message


def test_the_python_api_refuses_too_and_a_parquet_cell_is_named_by_row(repo, tmp_path, caplog):
    pa, pq = pytest.importorskip("pyarrow"), pytest.importorskip("pyarrow.parquet")
    catalog = synthetic_catalog(ITEMS, seed=3)
    in_stock = _in_stock()
    in_stock[9] = "perhaps"
    table = pa.table({"item_id": catalog.item_ids, "l1": catalog.codes[:, 0], "l2": catalog.codes[:, 1],
                      "l3": catalog.codes[:, 2], "in_stock": in_stock, "colour": _colour()})  # fmt: skip
    pq.write_table(table, tmp_path / "new.parquet")
    with pytest.raises(SetChangeError, match=r"new.parquet row 10: in_stock = 'perhaps' makes the boolean column"):
        Rollout(repo).deploy({}, tmp_path / "new.parquet")
    with caplog.at_level(logging.WARNING):
        assert Rollout(repo).deploy({}, tmp_path / "new.parquet", allow_set_changes=True) == 2
    assert "row 10: in_stock = 'perhaps'" in caplog.text
