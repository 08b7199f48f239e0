import numpy as np
import pytest

from ugt_ensemble.catalog import Catalog, load_catalog, save_catalog_csv, synthetic_catalog
from ugt_ensemble.errors import InputFileError


def _write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def test_csv_round_trip_with_any_column_order(tmp_path, catalog):
    path = tmp_path / "catalog.csv"
    save_catalog_csv(catalog, path)
    loaded = load_catalog(path)
    assert loaded.item_ids.tolist() == catalog.item_ids.tolist()
    reordered = _write(tmp_path / "r.csv", "l3,note,item_id,l1,l2\n3,x,10,1,2\n4,y,11,1,2\n")
    assert load_catalog(reordered).codes.tolist() == [[1, 2, 3], [1, 2, 4]]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty file"),
        ("item_id,l1,l2\n1,2,3\n", r"lacks column\(s\) \['l3'\]"),
        ("item_id,l1,l2,l3\n", "no items"),
        ("item_id,l1,l2,l3\n1,2,3,4\n2,x,3,4\n", "line 3: l1 is 'x', not an integer"),
        ("item_id,l1,l2,l3\n1,2,3,4\n2,3,4\n", "line 3: expected 4 fields, got 3"),
        ("item_id,l1,l2,l3\n1,1024,0,0\n", r"l1 outside \[0, 1024\): line 2 \(1024\)"),
        ("item_id,l1,l2,l3\n1,0,0,16384\n", r"l3 outside \[0, 16384\)"),
        ("item_id,l1,l2,l3\n-1,0,0,0\n", "negative item_id"),
        ("item_id,l1,l2,l3\n7,0,0,0\n7,0,0,1\n", "duplicate item_id.*7 at line 2 and line 3"),
        ("item_id,l1,l2,l3\n7,0,0,0\n8,0,0,0\n", r"duplicate \(l1, l2, l3\) triple.*\(0, 0, 0\) at line 2 and line 3"),
        ("item_id,l1,l2,l3\n1,5.7,0,0\n", "line 2: l1 is '5.7', not an integer"),
        ("item_id,l1,l2,l3\n1e3,5,0,0\n", "line 2: item_id is '1e3', not an integer"),
        ("item_id,l1,l2,l3\nNaN,5,0,0\n", "line 2: item_id is 'NaN', not an integer"),
        ("item_id,l1,l2,l3\n1_000,5,0,0\n", "line 2: item_id is '1_000', not an integer"),
        ("item_id,l1,l2,l3\n9223372036854775808,5,0,0\n", "line 2: item_id is 9223372036854775808, outside the int64"),
        ("item_id,l1,l2,l3\n\n\n1,2,3,4\n\n2,x,3,4\n", "line 6: l1 is 'x', not an integer"),
        ("item_id,l1,l2,l3\n\n1,2,3,4\n\n1,2,3,5\n", "duplicate item_id.*1 at line 3 and line 5"),
        ("item_id,l1,l2,l3\n1," + "9" * 5000 + ",0,0\n", r"l1 is 9999.*\(5000 characters\), outside the int64"),
    ],
)
def test_bad_csv_catalogs_name_file_and_rows(tmp_path, text, message):
    path = _write(tmp_path / "bad.csv", text)
    with pytest.raises(InputFileError, match=message) as info:
        load_catalog(path)
    assert str(path) in str(info.value)


def test_a_utf8_byte_order_mark_is_accepted(tmp_path):
    path = tmp_path / "bom.csv"
    path.write_bytes(b"\xef\xbb\xbfitem_id,l1,l2,l3\r\n1,2,3,4\r\n")
    assert load_catalog(path).codes.tolist() == [[2, 3, 4]]


def test_missing_file(tmp_path):
    with pytest.raises(InputFileError, match="no such file"):
        load_catalog(tmp_path / "nope.csv")


def test_parquet_catalog(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    good = tmp_path / "good.parquet"
    pq.write_table(pa.table({"item_id": [5, 6], "l1": [1, 1], "l2": [2, 2], "l3": [3, 4]}), good)
    assert load_catalog(good).item_ids.tolist() == [5, 6]
    nulls = tmp_path / "nulls.parquet"
    pq.write_table(pa.table({"item_id": [5, None], "l1": [1, 1], "l2": [2, 2], "l3": [3, 4]}), nulls)
    with pytest.raises(InputFileError, match="item_id has 1 null.*row 2"):
        load_catalog(nulls)
    floats = tmp_path / "floats.parquet"
    pq.write_table(pa.table({"item_id": [5.0], "l1": [1], "l2": [2], "l3": [3]}), floats)
    with pytest.raises(InputFileError, match="item_id has type double"):
        load_catalog(floats)


def test_synthetic_catalog_is_valid_and_deterministic():
    a, b = synthetic_catalog(3_000, seed=9), synthetic_catalog(3_000, seed=9)
    assert np.array_equal(a.codes, b.codes)
    Catalog.from_arrays(a.item_ids, a.codes)  # passes validation
    assert len(np.unique(a.codes, axis=0)) == 3_000
    assert a.prefix_tables().max_l2_children > 1  # clustered: siblings share prefixes
