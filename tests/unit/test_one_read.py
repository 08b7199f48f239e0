"""`catalog.one_read`: a data-only deploy reads a catalog, its index and its set columns in one pass; the result
equals `load_catalog` + `Catalog.index` + `read_catalog_columns`, and every file those readers would word a problem
in (or read in their own way) gives None, so that they read it."""

from __future__ import annotations

import numpy as np
import pytest

from ugt_ensemble.catalog import load_catalog
from ugt_ensemble.catalog.files import read_catalog_columns
from ugt_ensemble.catalog.item_sets import column_sets
from ugt_ensemble.catalog.one_read import read_catalog_indexed

SIZES = (8, 16, 32)
GOOD = """item_id,l1,l2,l3,in_stock,genre
30,0,0,2, TRUE , music
10,0,0,0,1,books

20,0,0,1,0,
60,0,1,0,,books
40,0,0,3,false,"books"
"""


def _write(tmp_path, text: str, name: str = "catalog.csv"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_one_read_equals_the_two_readers(tmp_path):
    path, names = _write(tmp_path, GOOD), ("in_stock", "genre")
    catalog, index, (item_ids, columns) = read_catalog_indexed(path, SIZES, names)
    expected = load_catalog(path, SIZES)
    np.testing.assert_array_equal(catalog.item_ids, expected.item_ids)
    np.testing.assert_array_equal(catalog.codes, expected.codes)
    assert catalog.source == expected.source and index.fingerprint() == expected.fingerprint()
    for name in ("item_ids", "codes", "code_keys", "items_by_code", "code_order"):
        np.testing.assert_array_equal(getattr(index, name), getattr(expected.index(), name))
    assert read_catalog_indexed(path, SIZES)[2] is None  # no set columns asked: the catalog and its index
    ids, read = read_catalog_columns(path, names)
    np.testing.assert_array_equal(item_ids, ids)
    assert [(c.name, c.values, c.codes.tolist()) for c in columns] == [(c.name, c.values, c.codes.tolist())
                                                                          for c in read]  # fmt: skip
    one, two = column_sets(path, names, index, (item_ids, columns)), column_sets(path, names, index)
    assert one.keys() == two.keys() and all((one[k] == two[k]).all() for k in one)


@pytest.mark.parametrize(
    "text",
    [
        GOOD.replace("40,0,0,3", "40,0,0.5,3"),  # not an integer: load_catalog names the line
        GOOD.replace("40,0,0,3", "30,0,0,3"),  # a duplicate id: named with its line
        GOOD.replace("60,0,1,0", "60,0,99,0"),  # outside the codebook
        GOOD.replace("60,0,1,0", "-1,0,1,0"),  # a negative id
        GOOD.replace("60,0,1,0", "60,0,0,2"),  # the code triple of item 30
        GOOD.replace("in_stock,genre", " in_stock,genre"),  # a header read_catalog_columns trims
        GOOD + ",,,,,\n",  # a blank row of commas, which the column reader skips
    ],
)
def test_files_the_strict_readers_word_or_read_their_own_way_give_none(tmp_path, text):
    assert read_catalog_indexed(_write(tmp_path, text), SIZES, ("in_stock", "genre")) is None


def test_parquet_or_column_names_of_codes_give_none(tmp_path):
    path = _write(tmp_path, GOOD)
    assert read_catalog_indexed(path, SIZES, ("l1",)) is None
    assert read_catalog_indexed(path, SIZES, ("genre", "genre")) is None
    assert read_catalog_indexed(_write(tmp_path, GOOD, "catalog.parquet"), SIZES, ("genre",)) is None
