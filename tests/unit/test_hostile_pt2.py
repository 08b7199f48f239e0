"""Hostile `.pt2` archives: refused in one line before torch reads them, and nothing they ask for happens.

A graph node calling `aten.from_file(path, shared=True, size=N)` used to create or grow any file at the
build's contract check; symbolic sizes and guards ran as Python; a small archive inflating to gigabytes
was read whole. Each case below is an archive made by editing a real export, as an attacker would.
"""

import json
import pickle
import resource
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
import torch
from step_models import RepeatingCodes
from torch.export.pt2_archive._package import load_pt2

from ugt_ensemble.catalog import save_catalog_csv
from ugt_ensemble.errors import ConfigError, InputFileError
from ugt_ensemble.model.pt2_reading import loading_without_unpickling
from ugt_ensemble.model.pt2_safety import MAX_ARCHIVE_ENV
from ugt_ensemble.model.sources import load_step_archive, save_step_model


class Branching(RepeatingCodes):
    """RepeatingCodes with a `torch.cond`: a graph with subgraphs."""

    def forward(self, l1, l2, l3, positions, token_types, mask):  # noqa: ANN001, ANN201 - the step contract
        codes, scores = super().forward(l1, l2, l3, positions, token_types, mask)
        return codes, torch.cond(mask.sum() > 0, lambda s: s + 1.0, lambda s: s - 1.0, (scores,))


@pytest.fixture(scope="module")
def good(tmp_path_factory, index) -> Path:
    return save_step_model(RepeatingCodes(index.codes), tmp_path_factory.mktemp("good") / "good.pt2", index, 16, 64)


def edited(good: Path, out: Path, edit) -> Path:  # noqa: ANN001 - edit(program JSON) changes it in place
    """A copy of the archive `good` whose graph JSON `edit` changed."""
    with zipfile.ZipFile(good) as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    name = next(n for n in files if n.endswith("models/model.json"))
    program = json.loads(files[name])
    edit(program)
    files[name] = json.dumps(program).encode()
    with zipfile.ZipFile(out, "w") as archive:
        for member, data in files.items():
            archive.writestr(member, data)
    return out


def calling_from_file(good: Path, out: Path, target: Path, size: int) -> Path:
    """`good` with a first node `aten.from_file(target, shared=True, size=size)` (float32: 4 * size bytes)."""

    def edit(program: dict) -> None:
        graph = program["graph_module"]["graph"]
        arguments = (("filename", {"as_string": str(target)}), ("shared", {"as_bool": True}),
                     ("size", {"as_int": size}))  # fmt: skip
        graph["nodes"].insert(0, {
            "target": "torch.ops.aten.from_file.default", "name": "grown", "metadata": {},
            "inputs": [{"name": name, "arg": arg, "kind": 1} for name, arg in arguments],
            "outputs": [{"as_tensor": {"name": "grown"}}],
        })  # fmt: skip
        graph["tensor_values"]["grown"] = {
            "dtype": 7, "sizes": [{"as_int": size}], "strides": [{"as_int": 1}], "storage_offset": {"as_int": 0},
            "requires_grad": False, "device": {"type": "cpu", "index": None}, "layout": 7,
        }  # fmt: skip

    return edited(good, out, edit)


def test_a_graph_that_calls_from_file_is_refused_and_grows_no_file(tmp_path, good):
    victim = tmp_path / "victim.bin"
    victim.write_bytes(b"ninebytes")
    for target in (victim, tmp_path / "created.bin"):
        archive = calling_from_file(good, tmp_path / "evil.pt2", target, 1 << 18)
        with pytest.raises(InputFileError) as refused:
            load_step_archive(archive)
        assert str(refused.value) == f"model {archive}: operators not allowed in a served model: aten.from_file.default"
    assert victim.read_bytes() == b"ninebytes" and not (tmp_path / "created.bin").exists()


def test_build_refuses_it_in_one_line_before_the_contract_check(tmp_path, good, catalog):
    target = tmp_path / "outside" / "created.bin"
    target.parent.mkdir()
    calling_from_file(good, tmp_path / "evil.pt2", target, 1 << 18)
    save_catalog_csv(catalog, tmp_path / "items.csv")
    command = [sys.executable, "-m", "ugt_ensemble", "build", "--model", "evil.pt2", "--catalog", "items.csv",
               "--output-dir", "repo", "--target-server", "cpu-wheel"]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, timeout=300)
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert result.returncode != 0 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert errors == ["error: model evil.pt2: operators not allowed in a served model: aten.from_file.default"]
    assert not target.exists() and not (tmp_path / "repo").exists()


@pytest.mark.parametrize(
    ("target", "named"),
    [
        ("torch.ops.profiler._record_function_enter_new.default", "profiler._record_function_enter_new.default"),
        ("torch.ops.aten._print.default", "aten._print.default"),
        ("torch.save", "torch.save"),
        ("builtins.print", "builtins.print"),
        ("torch.ops.mylib.custom.default", "mylib.custom.default"),
    ],
)
def test_any_operator_off_the_allow_list_is_refused_by_name(tmp_path, good, target, named):
    def edit(program: dict) -> None:
        node = next(n for n in program["graph_module"]["graph"]["nodes"] if n["target"] == "torch.ops.aten.mul.Tensor")
        node["target"] = target

    archive = edited(good, tmp_path / "evil.pt2", edit)
    with pytest.raises(InputFileError, match=f"operators not allowed in a served model: {named}$"):
        load_step_archive(archive)


def test_subgraphs_are_checked_and_control_flow_is_allowed(tmp_path, index):
    branching = save_step_model(Branching(index.codes), tmp_path / "cond.pt2", index, 16, 64)
    assert load_step_archive(branching).module() is not None

    def edit(program: dict) -> None:
        text = json.dumps(program).replace('"torch.ops.aten.add.Tensor"', '"torch.ops.aten.from_file.default"')
        program.update(json.loads(text))  # every add, the ones inside both branches included

    archive = edited(branching, tmp_path / "evil.pt2", edit)
    with pytest.raises(InputFileError, match="aten.from_file.default$"):
        load_step_archive(archive)


def test_symbolic_sizes_and_guards_that_would_run_as_python_are_refused(tmp_path, good):
    marker = tmp_path / "ran"
    payload = f"__import__('pathlib').Path({str(marker)!r}).touch()"

    def in_a_size(program: dict) -> None:
        text = json.dumps(program)
        symbol = text[text.index("Symbol('s") : text.index(")", text.index("Symbol('s")) + 1]
        program.update(json.loads(text.replace(json.dumps(symbol), json.dumps(f"({payload}, {symbol})[1]"), 1)))

    def in_a_guard(program: dict) -> None:
        program["guards_code"].append(f"{payload} is None")

    for edit, kind in ((in_a_size, "symbolic size"), (in_a_guard, "guard")):
        archive = edited(good, tmp_path / f"{kind}.pt2", edit)
        with pytest.raises(InputFileError, match=f"a {kind} that is not plain arithmetic of sizes"):
            load_step_archive(archive).module()
    assert not marker.exists()


def inflating(good: Path, out: Path, inflated: int) -> Path:
    """`good` whose first weight entry declares and inflates to `inflated` zero bytes (deflated)."""
    chunk = bytes(1 << 24)
    with zipfile.ZipFile(good) as source, zipfile.ZipFile(out, "w") as archive:
        victim = next(n for n in source.namelist() if "/data/weights/weight_" in n or "/data/constants/tensor_" in n)
        for info in source.infolist():
            if info.filename != victim:
                archive.writestr(info, source.read(info))
        info = zipfile.ZipInfo(victim)
        info.compress_type = zipfile.ZIP_DEFLATED
        with archive.open(info, "w", force_zip64=True) as entry:
            for _ in range(inflated // len(chunk)):
                entry.write(chunk)
    return out


def test_an_archive_inflating_past_the_limit_is_refused_before_reading(tmp_path, good):
    bomb = inflating(good, tmp_path / "bomb.pt2", 304 << 20)
    assert bomb.stat().st_size < 1 << 20
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    with pytest.raises(InputFileError, match=r"inflate to 304\.\d MiB, above the limit of 100\.0 MiB; .*UGT_MAX_ARC"):
        load_step_archive(bomb, max_bytes=100 << 20)
    assert time.perf_counter() - start < 1.0
    with pytest.raises(InputFileError, match=r"inflates from .* to 304\.0 MiB, over 100 times"):
        load_step_archive(bomb)  # within the default 2 GiB, but a zip bomb
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak
    assert grown_kib < 32 << 10, f"peak memory grew {grown_kib} KiB"


def test_the_limit_comes_from_the_environment(tmp_path, good, monkeypatch):
    monkeypatch.setenv(MAX_ARCHIVE_ENV, "1000")
    with pytest.raises(InputFileError, match=f"above the limit of 1000 bytes; .* set {MAX_ARCHIVE_ENV}"):
        load_step_archive(good)
    monkeypatch.setenv(MAX_ARCHIVE_ENV, "2GiB")
    with pytest.raises(ConfigError, match=f"{MAX_ARCHIVE_ENV}='2GiB': give the largest .pt2 size in bytes"):
        load_step_archive(good)
    monkeypatch.setenv(MAX_ARCHIVE_ENV, str(1 << 30))
    assert load_step_archive(good) is not None


def test_an_archive_naming_an_entry_twice_is_refused(tmp_path, good):
    with zipfile.ZipFile(good) as source:
        files = [(info, source.read(info)) for info in source.infolist()]
    twice = tmp_path / "twice.pt2"
    with zipfile.ZipFile(twice, "w") as archive, pytest.warns(UserWarning, match="Duplicate name"):
        for info, data in [*files, files[-1]]:
            archive.writestr(info, data)
    with pytest.raises(InputFileError, match="names .* twice; refused"):
        load_step_archive(twice)


def test_the_reference_ugt_exports_only_allowed_operators(tmp_path, tiny_model, index):
    path = save_step_model(tiny_model, tmp_path / "ugt.pt2", index, 16, 64)
    assert load_step_archive(path).module() is not None


class Payload:
    """Unpickled, it creates the file `marker` (as any code would run)."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):  # noqa: ANN204 - pickle's protocol
        return open, (self.marker, "w")


def second_program(good: Path, out: Path, program: str, marker: Path) -> Path:
    """`good` plus a program `program` ("weight_x" or "tensor_x") whose every entry name matched the old
    allow-list, with a pickle where torch reads legacy weights (data/weights/<program>.pt) or constants."""
    with zipfile.ZipFile(good) as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    root = next(iter(files)).split("/")[0]
    legacy, other = ("weights", "constants") if program.startswith("weight_") else ("constants", "weights")
    files[f"{root}/models/{program}.json"] = files[f"{root}/models/model.json"]
    files[f"{root}/data/sample_inputs/{program}.pt"] = files[f"{root}/data/sample_inputs/model.pt"]
    files[f"{root}/data/{other}/{program}_{other}_config.json"] = b'{"config":{}}'
    files[f"{root}/data/{legacy}/{program}.pt"] = pickle.dumps(Payload(marker))
    with zipfile.ZipFile(out, "w") as archive:
        for member, data in files.items():
            archive.writestr(member, data)
    return out


@pytest.mark.parametrize(("program", "legacy"), [("weight_x", "weights"), ("tensor_x", "constants")])
def test_a_second_program_reading_a_legacy_pickle_is_refused_and_never_unpickled(tmp_path, good, program, legacy):
    marker = tmp_path / "unpickled"
    archive = second_program(good, tmp_path / "evil.pt2", program, marker)
    with pytest.raises(InputFileError, match=f"holds good/models/{program}.json, .*good/data/{legacy}/{program}.pt"):
        load_step_archive(archive)
    names = [name.split("/", 1)[1] for name in zipfile.ZipFile(archive).namelist()]
    with pytest.raises(InputFileError, match=f"torch would unpickle data/{legacy}/{program}.pt; refused"):
        with loading_without_unpickling(archive, names):  # had a name slipped past the layout check
            load_pt2(str(archive))
    assert not marker.exists()


@pytest.mark.parametrize("program", ["weight_x", "tensor_x"])
def test_build_refuses_a_second_program_and_runs_no_pickle(tmp_path, good, catalog, program):
    marker = tmp_path / "unpickled"
    second_program(good, tmp_path / "evil.pt2", program, marker)
    save_catalog_csv(catalog, tmp_path / "items.csv")
    command = [sys.executable, "-m", "ugt_ensemble", "build", "--model", "evil.pt2", "--catalog", "items.csv",
               "--output-dir", "repo", "--target-server", "cpu-wheel"]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, timeout=300)
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert result.returncode != 0 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert len(errors) == 1 and errors[0].startswith(f"error: model evil.pt2: holds good/models/{program}.json"), errors
    assert not marker.exists() and not (tmp_path / "repo").exists()


@pytest.mark.parametrize(
    ("entry", "refusal"),
    [
        ({"path_name": "weight_0", "use_pickle": True}, "is pickled or not raw tensor bytes"),
        ({"path_name": "model.pt", "use_pickle": False, "tensor_meta": {}}, "names 'model.pt'; torch writes weight_"),
        ({"path_name": "weight_9", "use_pickle": False, "tensor_meta": {}}, "names data/weights/weight_9, which"),
    ],
)
def test_a_payload_config_naming_anything_but_a_held_raw_tensor_is_refused(tmp_path, good, entry, refusal):
    with zipfile.ZipFile(good) as source, zipfile.ZipFile(tmp_path / "evil.pt2", "w") as archive:
        for info in source.infolist():
            data = source.read(info)
            if info.filename.endswith("model_weights_config.json"):
                config = json.loads(data)
                config["config"]["real"] = entry
                data = json.dumps(config).encode()
            archive.writestr(info, data)
    with pytest.raises(InputFileError, match=f"weights_config.json entry 'real' {refusal}"):
        load_step_archive(tmp_path / "evil.pt2")
