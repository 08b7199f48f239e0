"""`python -m ugt_ensemble semantic-ids` end to end (the real command on small files), and the embeddings readers'
refusals, each naming the file, the row or line and the field."""

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("faiss")
pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

from ugt_ensemble.catalog.embeddings import load_embeddings  # noqa: E402
from ugt_ensemble.catalog.files import load_catalog, read_catalog_columns  # noqa: E402
from ugt_ensemble.errors import InputFileError  # noqa: E402

SIZES = "8,16,32"
N, DIM = 400, 6


def vectors(n: int = N, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((10, DIM))[rng.integers(0, 10, n)] + 0.1 * rng.standard_normal((n, DIM))).astype(
        np.float32
    )


def write_csv(path: Path, ids, data: np.ndarray, extra: dict | None = None) -> Path:
    extra = extra or {}
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["item_id", *(f"e{i}" for i in range(data.shape[1])), *extra])
        for row, (item, vector) in enumerate(zip(ids, data)):
            writer.writerow([item, *vector.tolist(), *(values[row] for values in extra.values())])
    return path


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ugt_ensemble", "semantic-ids", *args, "--codebook-sizes", SIZES,
                           "--iterations", "5"], capture_output=True, text=True, timeout=120)  # fmt: skip


def test_parquet_in_parquet_out_with_kept_columns_is_a_catalog_build_accepts(tmp_path):
    ids = np.arange(N) * 3 + 5
    table = pa.table({"item_id": ids, "embedding": pa.array(list(vectors())), "in_stock": ids % 2 == 0,
                      "category": np.array(["shoes", "bags"])[ids % 2]})  # fmt: skip
    pq.write_table(table, tmp_path / "emb.parquet")
    out = tmp_path / "catalog.parquet"
    result = run(str(tmp_path / "emb.parquet"), "-o", str(out), "--keep-columns", "in_stock,category")
    assert result.returncode == 0, result.stderr[-2000:]
    catalog = load_catalog(out, (8, 16, 32))
    assert sorted(catalog.item_ids.tolist()) == sorted(ids.tolist())
    read_ids, (in_stock, category) = read_catalog_columns(out, ("in_stock", "category"))
    assert set(in_stock.values) == {"true", "false"} and set(category.values) == {"shoes", "bags"}
    report = json.loads((tmp_path / "catalog.report.json").read_text())
    assert report["items"] == N and report["codes_used"]["l1"] <= 8 and report["peak_rss_mib"] > 0
    assert {"collisions", "quantisation_error", "seconds", "total_seconds"} <= set(report)
    assert (tmp_path / "catalog.codebooks.npz").is_file()
    assert "Level 3/3: k-means" in result.stderr and "k-means iteration 5/5" in result.stderr
    assert f"{N} items ({N} encoded, 0 kept)" in result.stdout


def test_csv_in_csv_out_then_new_items_keep_the_old_codes(tmp_path):
    data = vectors(N + 100)
    write_csv(tmp_path / "first.csv", range(N), data[:N], {"in_stock": [1, 0] * (N // 2)})
    first = tmp_path / "catalog.csv"
    result = run(str(tmp_path / "first.csv"), "-o", str(first), "--keep-columns", "in_stock")
    assert result.returncode == 0, result.stderr[-2000:]
    old = load_catalog(first, (8, 16, 32))
    write_csv(tmp_path / "all.csv", range(N + 100), data, {"in_stock": [1] * (N + 100)})
    grown = tmp_path / "grown.csv"
    result = run(str(tmp_path / "all.csv"), "-o", str(grown), "--existing", str(first), "--keep-columns", "in_stock")
    assert result.returncode == 0, result.stderr[-2000:]
    new = load_catalog(grown, (8, 16, 32))
    assert np.array_equal(new.item_ids[:N], old.item_ids) and np.array_equal(new.codes[:N], old.codes)
    assert len(new) == N + 100 and "(100 encoded, 400 kept)" in result.stdout


def test_npy_with_an_id_file(tmp_path):
    np.save(tmp_path / "emb.npy", vectors())
    (tmp_path / "ids.txt").write_text("item_id\n" + "\n".join(str(i + 1000) for i in range(N)) + "\n")
    result = run(str(tmp_path / "emb.npy"), "--item-ids", str(tmp_path / "ids.txt"), "-o", str(tmp_path / "c.csv"))
    assert result.returncode == 0, result.stderr[-2000:]
    assert load_catalog(tmp_path / "c.csv", (8, 16, 32)).item_ids.min() == 1000


def test_a_bad_file_is_one_line_of_error(tmp_path):
    data = vectors(20)
    data[7, 3] = np.nan
    write_csv(tmp_path / "emb.csv", range(20), data)
    result = run(str(tmp_path / "emb.csv"), "-o", str(tmp_path / "c.csv"))
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert errors == [f"error: embeddings {tmp_path / 'emb.csv'}: 1 component(s) are NaN, infinite or beyond the "
                      "float32 range: line 9 component 3 (nan)"]  # fmt: skip
    assert not (tmp_path / "c.csv").exists()


def refusal(path: Path, **kwargs) -> str:
    with pytest.raises(InputFileError) as caught:
        load_embeddings(path, **kwargs)
    return str(caught.value)


def test_refusals_name_the_file_row_and_field(tmp_path):
    data = vectors(6)
    dup = write_csv(tmp_path / "dup.csv", [1, 2, 3, 2, 5, 6], data)
    assert refusal(dup) == f"embeddings {dup}: 1 duplicate item_id(s): 2 at line 3 and line 5"
    text = write_csv(tmp_path / "text.csv", range(6), data)
    text.write_text(text.read_text().replace(str(data[4, 2].item()), "abc", 1))
    assert refusal(text) == f"embeddings {text}: line 6: e2 is 'abc', not a number"
    ragged = tmp_path / "ragged.parquet"
    pq.write_table(pa.table({"item_id": [1, 2, 3], "embedding": [[0.1, 0.2], [0.3, 0.4], [0.5]]}), ragged)
    assert refusal(ragged) == (f"embeddings {ragged}: ragged vectors in embedding: row 1 has 2 components; "
                               "row 3 has 1")  # fmt: skip
    typed = tmp_path / "typed.parquet"
    pq.write_table(pa.table({"item_id": [1.0, 2.0], "e0": [0.1, 0.2]}), typed)
    assert refusal(typed) == f"embeddings {typed}: column item_id has type double, expected integers"
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    assert "empty file" in refusal(empty)
    header_only = tmp_path / "header.csv"
    header_only.write_text("item_id,e0,e1\n")
    assert refusal(header_only) == f"embeddings {header_only}: no items (empty file)"
    short = tmp_path / "short.csv"
    short.write_text("item_id,e0,e1\n1,0.5,0.5\n2,0.5\n")
    assert refusal(short) == f"embeddings {short}: line 3: expected 3 fields, got 2"
    gap = tmp_path / "gap.csv"
    gap.write_text("item_id,e0,e2\n1,0.5,0.5\n")
    assert refusal(gap) == f"embeddings {gap}: vector columns e0..e2 lack e1"
    negative = tmp_path / "negative.npz"
    np.savez(negative, embeddings=data, item_ids=np.array([1, 2, -3, 4, 5, 6]))
    assert refusal(negative) == (f"embeddings {negative}: 1 negative item_id(s) (catalog ids are >= 0): "
                                 "row 3 (-3)")  # fmt: skip
    inf = tmp_path / "inf.npy"
    np.save(inf, np.where(np.arange(12).reshape(6, 2) == 5, 1e300, 1.0))
    assert "row 3 component 1 (inf)" in refusal(inf)
