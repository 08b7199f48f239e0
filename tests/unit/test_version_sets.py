"""A new version's item-set definitions: the served version's record, else the build's settings; a deploy's set flags
replace them all (files resolved to absolute paths); a set column needs a catalog file."""

from pathlib import Path

import pytest

from ugt_ensemble.errors import ConfigError
from ugt_ensemble.serving.version_sets import RECORD_KEY, ItemSetSources, split_changes


class Manifest:
    """What `ItemSetSources` reads of a repository: its manifest and the version it serves."""

    def __init__(self, manifest: dict, served: int) -> None:
        self.manifest, self.served = manifest, served

    def pinned(self) -> int:
        return self.served


BUILD = {"export": {"set_columns": ["in_stock"], "item_sets": [["fresh", "lists/fresh.txt"]], "catalog_path": "a.csv"}}


def test_the_served_version_without_a_record_has_the_builds_sets():
    sources = ItemSetSources.served(Manifest(BUILD, 1))
    assert sources == ItemSetSources(("in_stock",), (("fresh", Path("lists/fresh.txt")),), Path("a.csv"))


def test_a_version_record_wins_over_the_builds_settings():
    record = {"set_columns": [], "item_sets": [["eu", "/data/eu.txt"]], "catalog_path": "/data/b.csv", "names": ["eu"]}
    repo = Manifest({**BUILD, "versions": {"2": {RECORD_KEY: record}, "3": {}}}, 2)
    assert ItemSetSources.served(repo) == ItemSetSources((), (("eu", Path("/data/eu.txt")),), Path("/data/b.csv"))
    assert ItemSetSources.served(Manifest(repo.manifest, 3)).set_columns == ("in_stock",)  # 3 records none


def test_without_flags_a_new_catalog_keeps_the_served_sets(tmp_path):
    sources = ItemSetSources.for_new_version(Manifest(BUILD, 1), {}, tmp_path / "b.csv")
    assert sources.set_columns == ("in_stock",) and sources.item_sets == (("fresh", Path("lists/fresh.txt")),)
    assert sources.catalog_path == (tmp_path / "b.csv").resolve()
    assert ItemSetSources.for_new_version(Manifest(BUILD, 1), {}, None).catalog_path == Path("a.csv")


def test_set_flags_replace_every_set_and_resolve_their_files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    model, sets = split_changes({"onnx_path": Path("m.onnx"), "item_sets": (("fresh", Path("f2.txt")),)})
    assert model == {"onnx_path": Path("m.onnx")} and list(sets) == ["item_sets"]
    sources = ItemSetSources.for_new_version(Manifest(BUILD, 1), sets, None)
    assert sources == ItemSetSources((), (("fresh", tmp_path / "f2.txt"),), Path("a.csv"))
    record = sources.as_record(["fresh"])
    assert record == {"set_columns": [], "item_sets": [["fresh", str(tmp_path / "f2.txt")]], "catalog_path": "a.csv",
                      "names": ["fresh"]}  # fmt: skip
    assert ItemSetSources.served(Manifest({**BUILD, "versions": {"2": {RECORD_KEY: record}}}, 2)) == sources


def test_a_set_column_without_a_catalog_is_refused():
    with pytest.raises(ConfigError, match="--set-column reads the column from a catalog file: pass --catalog FILE"):
        ItemSetSources.for_new_version(Manifest(BUILD, 1), {"set_columns": ("in_stock",)}, None)
