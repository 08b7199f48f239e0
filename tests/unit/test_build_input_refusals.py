"""Build inputs refused early and without echoing a file: item-set files, catalogs, set columns.

`--item-set x=/etc/shadow` used to quote the file's first line in its error, and `--catalog` a file's
header; `--set-column` names and values were checked after the ONNX export (11-14 s in). Each case runs the
real CLI.
"""

import subprocess
import sys
from pathlib import Path

import pytest

from ugt_ensemble.catalog import save_catalog_csv
from ugt_ensemble.catalog.item_sets import read_item_ids
from ugt_ensemble.errors import InputFileError

SECRET = "Zq8SECRETx"
SHADOW = f"root:$y$j9T${SECRET}$hash:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\n"


@pytest.fixture(scope="module")
def items_csv(tmp_path_factory, catalog) -> Path:
    path = tmp_path_factory.mktemp("catalog") / "items.csv"
    save_catalog_csv(catalog, path)
    return path


def build(cwd: Path, *flags: str) -> tuple[list[str], str]:
    """The `error:` lines and the whole output of a failing `build` (small settings, no traceback)."""
    command = [sys.executable, "-m", "ugt_ensemble", "build", "--output-dir", "repo", "--target-server", "cpu-wheel",
               "--max-batch-size", "8", "--max-seq-length", "64", *flags]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, cwd=cwd, timeout=300)
    output = result.stdout + result.stderr
    assert result.returncode != 0 and "Traceback" not in output, output[-3000:]
    assert not (cwd / "repo").exists()
    return [line for line in result.stderr.splitlines() if line.startswith("error:")], output


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (SHADOW, "line 1: not an int64 item id, and no line of the file is one: an item set file lists one integer"),
        (f"user:{SECRET},token=${SECRET}\n", "line 1: 2 fields that are not column names; an item set file lists"),
        (f"10\n20\nsk_{SECRET}_{SECRET}_{SECRET}\n", "line 3: a value of 35 character\\(s\\) is not an int64 item id"),
        (
            b"\xff\xfe" + SECRET.encode() + b"\n",
            "cannot read \\(not UTF-8 text \\(an undecodable byte at offset 0\\)\\)",
        ),
    ],
    ids=["shadow", "two_fields", "long_token", "binary"],
)
def test_an_item_set_file_that_is_none_is_refused_without_quoting_it(tmp_path, items_csv, text, message):
    path = tmp_path / "secret"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(InputFileError, match=f"^item set file {path}:? {message}") as refused:
        read_item_ids(path)
    assert SECRET not in str(refused.value) and "$y$" not in str(refused.value)
    errors, output = build(tmp_path, "--catalog", str(items_csv), "--item-set", f"x={path}")
    assert len(errors) == 1 and errors[0].startswith(f"error: item set file {path}"), errors
    assert SECRET not in output and "Exporting ONNX" not in output  # refused with the catalog, before the export


def test_a_catalog_that_is_no_csv_of_column_names_is_refused_without_quoting_it(tmp_path):
    (tmp_path / "shadow").write_text(SHADOW)
    errors, output = build(tmp_path, "--catalog", "shadow")
    assert errors == ["error: catalog shadow: line 1 is not a CSV header of column names; expected item_id,l1,l2,l3"]
    assert SECRET not in output


@pytest.mark.parametrize(
    ("column", "message"),
    [
        ("nosuch", "catalog items.csv: no column(s) ['nosuch'] (its columns: ['item_id', 'l1', 'l2', 'l3', 'genre'])"),
        ("genre", "catalog items.csv, column 'genre', value 'science\\x07fiction': item set name "
         "'genre=science\\x07fiction' holds the control character U+0007"),
    ],
)
def test_set_columns_are_refused_while_the_catalog_is_read_before_the_export(tmp_path, catalog, column, message):
    bell = "science\x07fiction"  # a control character: no set name
    rows = [f"{i},{a},{b},{c},{bell if i % 2 else 'film'}" for i, (a, b, c) in
            zip(catalog.item_ids.tolist(), catalog.codes.tolist())]  # fmt: skip
    (tmp_path / "items.csv").write_text("item_id,l1,l2,l3,genre\n" + "\n".join(rows) + "\n")
    errors, output = build(tmp_path, "--catalog", "items.csv", "--set-column", column)
    assert len(errors) == 1 and errors[0].startswith(f"error: {message}"), errors
    steps = [line for line in output.splitlines() if line.startswith("[")]
    assert all(line.startswith("[1/") for line in steps), steps  # nothing after "Reading the catalog"
