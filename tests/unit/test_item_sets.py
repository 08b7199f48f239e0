"""Item sets (allow-lists) from catalog columns and files; their ExportConfig fields and build/deploy flags."""

import builtins
import dataclasses
import json
import logging
from pathlib import Path

import numpy as np
import pytest

from ugt_ensemble.catalog import files as catalog_files
from ugt_ensemble.catalog.item_sets import MAX_COLUMN_VALUES, column_sets, file_set, item_sets_for, read_item_ids
from ugt_ensemble.cli import build_parser, main
from ugt_ensemble.cli.build import config_from_args
from ugt_ensemble.config import ExportConfig
from ugt_ensemble.errors import ConfigError, InputFileError, MissingFileError
from ugt_ensemble.runtime.catalog_index import CatalogIndex

#: Items 10, 20, ..., 60 (the index sorts them; the CSV lists them out of order).
CSV = """\ufeffitem_id, l1,l2,l3, in_stock ,genre,region
30,0,0,2, TRUE , music ,eu
10,0,0,0,1,books,eu

20,0,0,1,0,,us
   
60,0,1,0,,books,eu
40,0,0,3,false,"books",us
50,0,0,4,True,film,eu
"""  # noqa: W291, W293 - a line of spaces is a blank line


def index_of(item_ids) -> CatalogIndex:
    ids = np.asarray(item_ids, dtype=np.int64)
    codes = np.stack([np.zeros_like(ids), ids // 256, ids % 256], axis=1)
    return CatalogIndex(ids, codes)


INDEX = index_of([10, 20, 30, 40, 50, 60])


def members(mask: np.ndarray, index: CatalogIndex = INDEX) -> list[int]:
    assert mask.dtype == bool and mask.shape == (len(index),)
    return index.item_ids[mask].tolist()


@pytest.fixture
def catalog_csv(tmp_path) -> Path:
    path = tmp_path / "catalog.csv"
    path.write_text(CSV, encoding="utf-8")
    return path


@pytest.fixture(params=["pyarrow", "csv module"])
def reader(request, monkeypatch):
    """Read CSV catalogs with pyarrow and with the csv module alone (pyarrow is optional)."""
    if request.param == "csv module":
        real_import = builtins.__import__

        def no_pyarrow(name, *args, **kwargs):
            if name.startswith("pyarrow"):
                raise ImportError(name)
            return real_import(name, *args, **kwargs)

        monkeypatch.setattr(builtins, "__import__", no_pyarrow)
    return request.param


def test_a_boolean_column_is_one_set_and_a_categorical_column_one_set_per_value(reader, catalog_csv):
    sets = column_sets(catalog_csv, ("in_stock", "genre", "region"), INDEX)
    assert sorted(sets) == ["genre=books", "genre=film", "genre=music", "in_stock", "region=eu", "region=us"]
    assert members(sets["in_stock"]) == [10, 30, 50]  # 1 / TRUE / True; empty and 0/false are out
    assert members(sets["genre=books"]) == [10, 40, 60] and members(sets["genre=music"]) == [30]
    assert members(sets["genre=film"]) == [50]  # item 20's empty genre is in no genre set
    assert members(sets["region=eu"]) == [10, 30, 50, 60] and members(sets["region=us"]) == [20, 40]


def test_parquet_columns_keep_their_types(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    path = tmp_path / "catalog.parquet"
    table = pa.table({
        "item_id": [10, 20, 30, 40, 50, 60], "l1": [0] * 6, "l2": [0] * 6, "l3": list(range(6)),
        "in_stock": [True, False, None, True, False, False], "tier": [1, 2, 2, None, 1, 3],
        "genre": ["a", None, " b ", "a", "", "b"],
    })  # fmt: skip
    pq.write_table(table, path)
    sets = column_sets(path, ("in_stock", "tier", "genre"), INDEX)
    assert members(sets["in_stock"]) == [10, 40]
    assert members(sets["tier=1"]) == [10, 50] and members(sets["tier=3"]) == [60] and "tier=None" not in sets
    assert members(sets["genre=a"]) == [10, 40] and members(sets["genre=b"]) == [30, 60]
    assert sorted(sets) == ["genre=a", "genre=b", "in_stock", "tier=1", "tier=2", "tier=3"]


def test_a_column_of_0_and_1_only_is_boolean_and_an_empty_column_defines_nothing(reader, tmp_path, caplog):
    path = tmp_path / "c.csv"
    path.write_text("item_id,l1,l2,l3,flag,note\n10,0,0,0,0,\n20,0,0,1,0,\n")
    with caplog.at_level(logging.WARNING):
        sets = column_sets(path, ("flag", "note"), index_of([10, 20]))
    assert list(sets) == ["flag"] and not sets["flag"].any()
    assert "flag has no catalog item" in caplog.text and "'note' is empty on every row" in caplog.text


def test_too_many_values_are_refused_naming_the_column_and_the_count(reader, tmp_path):
    n = MAX_COLUMN_VALUES + 1
    path = tmp_path / "c.csv"
    path.write_text("item_id,l1,l2,l3,title\n" + "".join(f"{i},0,{i // 256},{i % 256},t{i}\n" for i in range(n)))
    with pytest.raises(InputFileError, match=f"column 'title' has {n} distinct values; .* at most 256"):
        column_sets(path, ("title",), index_of(range(n)))


def test_a_value_that_cannot_name_a_set_is_refused(reader, tmp_path):
    path = tmp_path / "c.csv"
    path.write_text("item_id,l1,l2,l3,genre\n10,0,0,0,science\x1bfiction\n")
    with pytest.raises(
        InputFileError,
        match=r"column 'genre', value 'science\\x1bfiction': item set name 'genre=science\\x1bfiction' holds the "
        "control character U\\+001B at position 13",
    ):
        column_sets(path, ("genre",), index_of([10]))


def test_real_values_name_sets_as_written(reader, tmp_path):
    """Spaces, '&', apostrophes, '/', non-ASCII letters: each value is a set named exactly as the catalog has it;
    a value in decomposed Unicode (NFD) is the same set as its composed form (names are stored in NFC)."""
    path = tmp_path / "c.csv"
    decomposed = "Cafe\u0301/Ba\u0308ckerei"
    path.write_text(
        "item_id,l1,l2,l3,Product Category\n10,0,0,0,men's clothing\n20,0,0,1, Home & Garden \n"
        f"30,0,0,2,Café/Bäckerei\n40,0,0,3,{decomposed}\n50,0,0,4,家居 用品\n",
        encoding="utf-8",
    )
    sets = column_sets(path, ("Product Category",), index_of([10, 20, 30, 40, 50]))
    assert {name: members(mask, index_of([10, 20, 30, 40, 50])) for name, mask in sets.items()} == {
        "Product Category=men's clothing": [10],
        "Product Category=Home & Garden": [20],
        "Product Category=Café/Bäckerei": [30, 40],
        "Product Category=家居 用品": [50],
    }


def test_a_missing_column_is_named(reader, catalog_csv):
    with pytest.raises(InputFileError, match=r"no column\(s\) \['stock'\]"):
        column_sets(catalog_csv, ("stock",), INDEX)


def test_catalog_rows_outside_the_index_are_in_no_set(reader, catalog_csv, caplog):
    with caplog.at_level(logging.WARNING):
        sets = column_sets(catalog_csv, ("in_stock",), index_of([10, 30, 70]))
    assert members(sets["in_stock"], index_of([10, 30, 70])) == [10, 30]
    assert "4 row(s) name items outside the served catalog" in caplog.text


def test_a_large_categorical_column_is_read_vectorised(tmp_path):
    """200k items, 50 values: every item lands in the set of its value (a smoke test, not a benchmark)."""
    pytest.importorskip("pyarrow")
    n = 200_000
    ids = np.arange(n, dtype=np.int64) * 3
    values = (ids * 7) % 50
    path = tmp_path / "big.csv"
    rows = np.column_stack([ids, ids // 65536, (ids // 256) % 256, ids % 256, values])
    np.savetxt(path, rows, fmt="%d", delimiter=",", header="item_id,l1,l2,l3,shelf", comments="")
    index = CatalogIndex(ids, rows[:, 1:4])
    sets = column_sets(path, ("shelf",), index)
    assert len(sets) == 50 and sum(int(m.sum()) for m in sets.values()) == n
    assert np.array_equal(sets["shelf=7"], values[np.argsort(ids)] == 7)


@pytest.mark.parametrize(
    "text",
    [
        "10\n30\n\n60\n",
        "item_id\n10\n30\n60\n",
        "id\n 10 \n30\n60",
        "name,item_id\nx,10\n\n y ,30\nz,60\n",
        "+10\n30\n60\n",
    ],
)
def test_set_files_list_one_id_per_line_or_a_csv_item_id_column(tmp_path, text):
    path = tmp_path / "fresh.txt"
    path.write_text(text)
    assert members(file_set("fresh", path, INDEX)) == [10, 30, 60]


def test_ids_outside_the_catalog_are_counted_and_logged(tmp_path, caplog):
    path = tmp_path / "s.txt"
    path.write_text("10\n11\n12\n20\n")
    with caplog.at_level(logging.WARNING):
        assert members(file_set("s", path, INDEX)) == [10, 20]
    assert "item set s" in caplog.text and "2 of its 4 item ids are not in the catalog" in caplog.text


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("10\n20\nabc\n", "line 3: 'abc' is not an int64 item id"),
        ("item_id\n10\n\n1.5\nx\n", r"line 4: '1.5' is not an int64 item id \(and 1 more bad line\(s\)\)"),
        (f"10\n{2**63}\n", "line 2: '9223372036854775808' is not an int64 item id"),
        ("12a\n10\n", "line 1: '12a' is not an int64 item id"),
        ("10\n20,30\n", "line 2: expected 1 field"),
        ("name,id\nx,10\n", "line 1: header 'name,id' has no item_id column"),
        ("item_id,name\n10,x\n20\n", "line 3: expected 2 field"),
    ],
)
def test_malformed_set_files_name_the_file_and_the_line(tmp_path, text, message):
    path = tmp_path / "bad.txt"
    path.write_text(text)
    with pytest.raises(InputFileError, match=f"item set file {path} {message}"):
        read_item_ids(path)


def test_an_empty_set_file_is_an_empty_set_and_a_missing_one_an_error(tmp_path, caplog):
    path = tmp_path / "empty.txt"
    path.write_text("item_id\n\n")
    with caplog.at_level(logging.WARNING):
        assert not file_set("none", path, INDEX).any()
    assert "item set none has no catalog item" in caplog.text
    with pytest.raises(MissingFileError, match="nothing.txt: no such file"):
        read_item_ids(tmp_path / "nothing.txt")


def test_item_sets_for_joins_columns_and_files(catalog_csv, tmp_path):
    (tmp_path / "fresh.txt").write_text("20\n40\n")
    config = ExportConfig(set_columns=("in_stock",), item_sets=(("fresh", tmp_path / "fresh.txt"),))
    sets = item_sets_for(config, catalog_csv, INDEX)
    assert list(sets) == ["in_stock", "fresh"] and members(sets["fresh"]) == [20, 40]
    assert item_sets_for(ExportConfig(), None, INDEX) == {}
    with pytest.raises(ConfigError, match="--set-column .* needs a catalog file"):
        item_sets_for(config, None, INDEX)
    clash = ExportConfig(set_columns=("genre",), item_sets=(("genre=books", tmp_path / "fresh.txt"),))
    with pytest.raises(ConfigError, match="'genre=books' is defined twice"):
        item_sets_for(clash, catalog_csv, INDEX)


# --- ExportConfig fields and the flags ---------------------------------------------------------------------
def test_export_config_reads_the_forms_a_manifest_and_the_api_give():
    config = ExportConfig(set_columns=["in_stock", "genre"], item_sets=[["fresh", "f.txt"], "eu=lists/eu.csv"])
    assert config.set_columns == ("in_stock", "genre")
    assert config.item_sets == (("fresh", Path("f.txt")), ("eu", Path("lists/eu.csv")))
    assert ExportConfig(item_sets={"fresh": "f.txt"}).item_sets == (("fresh", Path("f.txt")),)
    assert ExportConfig(set_columns="in_stock").set_columns == ("in_stock",)
    recorded = json.loads(json.dumps(dataclasses.asdict(config), default=str))  # as ugt_build.json holds it
    recorded["validation_shapes"] = tuple(tuple(s) for s in recorded["validation_shapes"])
    assert ExportConfig(**recorded) == config


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"set_columns": ("in\nstock",)}, "`set_columns` .*: item set name 'in\\\\nstock' holds the control character"),
        ({"set_columns": ("",)}, "item set name '' is empty; a set name is 1-200 characters"),
        ({"item_sets": ((" fresh", "x"),)}, "item set name ' fresh' has leading or trailing white space"),
        ({"item_sets": (("x" * 201, "x"),)}, "is 201 characters long"),
        ({"item_sets": (("a\u202eb", "x"),)}, "control character U\\+202E"),
        ({"set_columns": ("a", "a")}, r"item set name\(s\) \['a'\] given twice"),
        ({"set_columns": ("a",), "item_sets": ("a=x.txt",)}, r"\['a'\] given twice"),
        ({"item_sets": ("fresh",)}, "`item_sets` entry 'fresh' must be NAME=FILE"),
        ({"item_sets": ("fresh=",)}, "must be NAME=FILE"),
        ({"item_sets": (("a", "x", "y"),)}, "entries are \\(name, file\\) pairs"),
        ({"item_sets": ((3, "x"),)}, r"item set name 3 is not text \(int\)"),
    ],
)
def test_export_config_refuses_bad_item_set_fields(fields, message):
    with pytest.raises(ConfigError, match=message):
        ExportConfig(**fields)


def test_build_flags_fill_the_config_fields():
    args = build_parser().parse_args(
        ["build", "--set-column", "in_stock", "--set-column", "genre", "--item-set", "fresh=lists/fresh.txt",
         "--item-set", "eu = eu.csv"]
    )  # fmt: skip
    export = config_from_args(args).export
    assert export.set_columns == ("in_stock", "genre")
    assert export.item_sets == (("fresh", Path("lists/fresh.txt")), ("eu", Path("eu.csv")))
    assert config_from_args(build_parser().parse_args(["build"])).export.item_sets == ()


@pytest.mark.parametrize("command", [["build"], ["deploy", "--catalog", "c.csv"]])
@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--item-set", "fresh"], "argument --item-set: `item_sets` entry 'fresh' must be NAME=FILE"),
        (["--set-column", "a\x07b"], "argument --set-column: --set-column: item set name 'a\\x07b' holds the control"),
    ],
)
def test_malformed_flags_are_usage_errors(capsys, command, flags, message):
    with pytest.raises(SystemExit) as info:
        main([*command, *flags])
    assert info.value.code == 2 and message in capsys.readouterr().err


def test_a_repeated_set_name_is_a_one_line_error(capsys, tmp_path):
    code = main(["build", "--output-dir", str(tmp_path / "o"), "--set-column", "a", "--item-set", "a=x.txt"])
    assert code == 2 and capsys.readouterr().err.startswith("error: item set name(s) ['a'] given twice")


def test_deploy_parses_the_flags_and_refuses_a_set_column_without_a_catalog(capsys, tmp_path):
    args = build_parser().parse_args(["deploy", "--set-column", "in_stock", "--item-set", "f=f.txt"])
    assert args.set_columns == ["in_stock"] and args.item_sets == [("f", Path("f.txt"))]
    code = main(["deploy", "--model-repository", str(tmp_path), "--set-column", "in_stock"])
    assert code == 2 and "--set-column reads the column from a catalog file: pass --catalog" in capsys.readouterr().err


def test_pyarrow_and_the_csv_module_read_the_same_columns(catalog_csv, monkeypatch):
    pytest.importorskip("pyarrow")
    ids, columns = catalog_files.read_catalog_columns(catalog_csv, ("in_stock", "genre"))
    plain_ids, plain = catalog_files._csv_columns_plain(catalog_csv, ("in_stock", "genre"))
    assert ids.tolist() == plain_ids.tolist() == [30, 10, 20, 60, 40, 50]
    for a, b in zip(columns, plain):
        assert a.name == b.name and a.values == b.values and a.codes.tolist() == b.codes.tolist()
