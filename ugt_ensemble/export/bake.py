"""Bake a rules-aware model step's constraint tables into its ONNX graph, for the native model steps.

Triton's onnxruntime backend and a TensorRT engine are fed only the tensors their config names, and a model
step's config names the batched inputs (the six encoder and four rule tensors): the eight table inputs
(`contract.TABLE_INPUTS`, one catalog's data, not batched) cannot be fed. `bake_tables` turns those inputs into
initializers holding one catalog's padded tables (`ConstraintData.tables()`): the baked file takes exactly the
encoder and rule inputs and answers as the unbaked file fed the same tables. A new catalog of the same codebooks
is a new bake of the unbaked file (`UNBAKED_ONNX_FILE`, kept beside the served `model.onnx`): no torch, seconds;
a TensorRT engine must still be built from the new bake.

Graph surgery only (the `onnx` package, no torch): the table inputs leave `graph.input`, initializers of the
same names come in, and the symbolic table axes ("pairs", "items", "sets", and products such as "sets*items")
become fixed sizes in `value_info` and the outputs. Opset, IR version and metadata are kept; the metadata gains
`ugt.tables` (the tables' fingerprint). The tables go to one external data file beside the model
(`<name>.tables.bin`, offsets aligned to 4 KiB) when the file would pass `EXTERNAL_DATA_BYTES`; weights the
source keeps as external data stay where they are (linked or copied beside the output when it is elsewhere).
"""

from __future__ import annotations

import ast
import hashlib
import operator
import os
import shutil
from pathlib import Path
from typing import Mapping

import numpy as np
import onnx
from onnx import TensorProto, numpy_helper

from ugt_ensemble.errors import ExportError, StepContractError
from ugt_ensemble.export.onnx_file import external_files, read_onnx
from ugt_ensemble.runtime.constraint_data import ConstraintData
from ugt_ensemble.runtime.contract import ONNX_FILE, TABLE_INPUTS, TABLE_NAMES

#: The unbaked export (table inputs) kept beside a native step's baked `model.onnx`, for later data-only bakes.
UNBAKED_ONNX_FILE = "model.tables.onnx"
#: Metadata key of a baked file: the fingerprint of the tables it holds.
TABLES_KEY = "ugt.tables"
#: Above this size (the graph and the tables together) the tables go to an external data file (protobuf's
#: limit is 2 GiB).
EXTERNAL_DATA_BYTES = 3 << 29  # 1.5 GiB
_ALIGN = 4096
_ELEMENT = {"int64": TensorProto.INT64, "bool": TensorProto.BOOL}
_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.FloorDiv: operator.floordiv}


def bake_tables(
    onnx_path: str | Path,
    out_path: str | Path,
    tables: Mapping[str, np.ndarray],
    fingerprint: str | None = None,
    external_threshold: int = EXTERNAL_DATA_BYTES,
) -> Path:
    """Write `out_path`: the model at `onnx_path` with its eight table inputs replaced by `tables` (name ->
    array, as `ConstraintData.tables()` gives them). `StepContractError` when the model takes no tables,
    `ExportError` naming the table whose dtype or shape the model refuses. Returns `out_path`."""
    onnx_path, out_path = Path(onnx_path), Path(out_path)
    model = read_onnx(onnx_path, check_opset=False)  # without its external data: those files are reused
    inputs = {i.name: i for i in model.graph.input}
    missing = [name for name in TABLE_NAMES if name not in inputs]
    if missing:
        raise StepContractError(f"ONNX model {onnx_path} has no table inputs {missing}: there is nothing to bake")
    arrays = _checked_tables(onnx_path, inputs, tables)
    _drop_table_inputs(model.graph, set(arrays), _symbol_sizes(onnx_path, inputs, arrays))
    out_path.parent.mkdir(parents=True, exist_ok=True)
    _bring_external_files(onnx_path, out_path, model)
    external = model.ByteSize() + sum(a.nbytes for a in arrays.values()) > external_threshold
    model.graph.initializer.extend(_initializers(arrays, out_path if external else None))
    if not external:
        tables_file(out_path).unlink(missing_ok=True)  # a previous bake's, now stale
    props = [p for p in model.metadata_props if p.key != TABLES_KEY]
    del model.metadata_props[:]
    model.metadata_props.extend(props)
    model.metadata_props.add(key=TABLES_KEY, value=fingerprint or _digest(arrays))
    tmp = out_path.with_name(f".{out_path.name}.tmp")
    tmp.write_bytes(model.SerializeToString())
    os.replace(tmp, out_path)
    return out_path


def bake_served_model(onnx_path: Path, data: ConstraintData) -> Path:
    """Move the unbaked export at `onnx_path` to `UNBAKED_ONNX_FILE` beside it (its external data files stay, still
    beside it) and write the baked model in its place with `data`'s tables. Returns the unbaked file's path."""
    unbaked = onnx_path.with_name(UNBAKED_ONNX_FILE)
    os.replace(onnx_path, unbaked)
    bake_tables(unbaked, onnx_path, data.tables(), data.fingerprint)
    return unbaked


def unbaked_model(folder: Path) -> Path:
    """The model file of a version folder that takes the tables as inputs: `UNBAKED_ONNX_FILE` where a native step
    keeps it beside its baked model.onnx, else model.onnx."""
    unbaked = folder / UNBAKED_ONNX_FILE
    return unbaked if unbaked.is_file() else folder / ONNX_FILE


def is_baked(model: onnx.ModelProto) -> bool:
    """Whether `model` holds baked tables (its metadata has `TABLES_KEY`)."""
    return any(p.key == TABLES_KEY for p in model.metadata_props)


def tables_file(out_path: Path) -> Path:
    """The external data file of the tables baked into `out_path` (when they were too big to embed)."""
    return out_path.with_name(out_path.name + ".tables.bin")


def _checked_tables(
    path: Path, inputs: dict[str, onnx.ValueInfoProto], tables: Mapping[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """`tables` as contiguous arrays, each of the dtype and rank (and fixed sizes) the model's input declares."""
    unknown = sorted(set(tables) - set(TABLE_NAMES))
    absent = [name for name in TABLE_NAMES if name not in tables]
    if unknown or absent:
        raise ExportError(f"baking {path}: tables {unknown} are unknown and {absent} are missing")
    arrays = {}
    for spec in TABLE_INPUTS:
        array = np.ascontiguousarray(tables[spec.name])
        declared = inputs[spec.name].type.tensor_type
        fixed = [(axis, d.dim_value) for axis, d in enumerate(declared.shape.dim) if d.HasField("dim_value")]
        wrong_size = any(axis < array.ndim and array.shape[axis] != size for axis, size in fixed)
        if array.dtype != np.dtype(spec.dtype) or array.ndim != len(declared.shape.dim) or wrong_size:
            raise ExportError(
                f"baking {path}: table {spec.name} is {array.dtype} {list(array.shape)}; the model takes "
                f"{TensorProto.DataType.Name(declared.elem_type)} {_dims(declared)}"
            )
        if declared.elem_type != _ELEMENT[spec.dtype]:
            raise ExportError(f"baking {path}: input {spec.name} is not {spec.dtype} as the contract says")
        arrays[spec.name] = array
    return arrays


def _symbol_sizes(path: Path, inputs: dict[str, onnx.ValueInfoProto], arrays: dict[str, np.ndarray]) -> dict[str, int]:
    """Symbolic axis name -> size, read from the tables; `ExportError` when two tables disagree on one."""
    sizes: dict[str, int] = {}
    for name, array in arrays.items():
        for axis, dim in enumerate(inputs[name].type.tensor_type.shape.dim):
            if dim.dim_param:
                if sizes.setdefault(dim.dim_param, array.shape[axis]) != array.shape[axis]:
                    raise ExportError(
                        f"baking {path}: axis {dim.dim_param!r} is {sizes[dim.dim_param]} in one table and "
                        f"{array.shape[axis]} in {name} (tables of one catalog, padded by the same fan-out caps)"
                    )
    return sizes


def _drop_table_inputs(graph: onnx.GraphProto, names: set[str], sizes: dict[str, int]) -> None:
    """Remove the inputs (and value_info) `names` from `graph`; fix the symbolic dims the tables decide."""
    kept = [i for i in graph.input if i.name not in names]
    del graph.input[:]
    graph.input.extend(kept)
    kept_info = [v for v in graph.value_info if v.name not in names]
    del graph.value_info[:]
    graph.value_info.extend(kept_info)
    for value in (*graph.value_info, *graph.output):
        _fix_dims(value, sizes)


def _fix_dims(value: onnx.ValueInfoProto, sizes: dict[str, int]) -> None:
    """Replace each symbolic dim of `value` that the tables decide by its size (an expression that names a
    baked symbol but cannot be evaluated becomes an unknown dim)."""
    if not value.type.HasField("tensor_type"):
        return
    for dim in value.type.tensor_type.shape.dim:
        if not dim.dim_param:
            continue
        names = _names(dim.dim_param)
        if names is None or not names & set(sizes):
            continue
        size = _evaluate(dim.dim_param, sizes)
        dim.Clear()
        if size is not None:
            dim.dim_value = size


def _names(expression: str) -> set[str] | None:
    try:
        tree = ast.parse(expression, mode="eval")
    except SyntaxError:
        return None
    return {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}


def _evaluate(expression: str, sizes: dict[str, int]) -> int | None:
    """An integer expression of symbols ("sets*items", "pairs + 1"), or None when it is not one of known ones."""

    def value(node: ast.AST) -> int:
        if isinstance(node, ast.Expression):
            return value(node.body)
        if isinstance(node, ast.Name):
            return sizes[node.id]
        if isinstance(node, ast.Constant) and isinstance(node.value, int):
            return node.value
        if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
            return _OPS[type(node.op)](value(node.left), value(node.right))
        raise KeyError(type(node).__name__)

    try:
        result = value(ast.parse(expression, mode="eval"))
    except (KeyError, SyntaxError, ZeroDivisionError):
        return None
    return result if result >= 0 else None


def _initializers(arrays: dict[str, np.ndarray], external_for: Path | None) -> list[TensorProto]:
    """One initializer per table: embedded, or kept in `tables_file(external_for)` (4 KiB-aligned offsets)."""
    if external_for is None:
        return [numpy_helper.from_array(array, name) for name, array in arrays.items()]
    location = tables_file(external_for)
    tensors, offset = [], 0
    with open(location, "wb") as handle:
        for name, array in arrays.items():
            offset = -(-offset // _ALIGN) * _ALIGN
            handle.seek(offset)
            handle.write(array.tobytes())
            tensor = TensorProto(name=name, data_type=_ELEMENT[array.dtype.name], dims=array.shape)
            tensor.data_location = TensorProto.EXTERNAL
            for key, text in (("location", location.name), ("offset", offset), ("length", array.nbytes)):
                tensor.external_data.add(key=key, value=str(text))
            tensors.append(tensor)
            offset += array.nbytes
    return tensors


def _bring_external_files(source: Path, out_path: Path, model: onnx.ModelProto) -> None:
    """The source's external data files beside `out_path` (hard-linked, else copied) when it is elsewhere."""
    if source.parent.resolve() == out_path.parent.resolve():
        return
    for relative in sorted(external_files(source, model)):
        target = out_path.parent / relative
        if target.exists():
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(source.parent / relative, target)
        except OSError:
            shutil.copyfile(source.parent / relative, target)


def _digest(arrays: dict[str, np.ndarray]) -> str:
    digest = hashlib.sha256()
    for name, array in arrays.items():
        digest.update(f"{name}:{array.dtype}:{array.shape}".encode())
        digest.update(memoryview(array).cast("B"))
    return digest.hexdigest()[:16]


def _dims(tensor_type: onnx.TypeProto.Tensor) -> str:
    return "[" + ", ".join(d.dim_param or str(d.dim_value) for d in tensor_type.shape.dim) + "]"
