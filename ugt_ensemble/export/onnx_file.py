"""An ONNX file the user brings (`build --onnx`, `deploy --onnx`), checked before ONNX Runtime opens it.

`read_onnx` parses the file without its external data and refuses, in one line naming the file:
- a file that is not an ONNX model, or one above protobuf's 2 GiB limit;
- a default-domain opset outside SUPPORTED_OPSETS (13-21: 21 is the newest the ONNX Runtime of
  Triton 2.51's onnxruntime backend runs, 13 the oldest the project's exports and checks are written
  for), when asked to check it;
- external data that is not a plain file inside the model's folder: an absolute path, a `..` part, a
  link leading out of the folder, a hidden, Python, shared-library or model-config name, or a declared
  offset and length past the end of the file or different from the tensor's size.
`copy_onnx` copies a checked model and its external files into a version folder.
"""

from __future__ import annotations

import math
import re
import shutil
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Iterator

import onnx
from onnx import TensorProto

from ugt_ensemble.errors import InputFileError

SUPPORTED_OPSETS = (13, 21)
MAX_ONNX_BYTES = 2 << 30
_PART = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+-]*\Z")
#: Names an external-data file may not have: they would replace or shadow what a model folder runs.
_REFUSED_SUFFIXES = frozenset({".py", ".pyc", ".so", ".pbtxt", ".onnx", ".plan", ".pt", ".pth", ".json", ".sh"})
#: Element types whose bytes a shape does not give simply (strings, and the packed sub-byte types).
_UNSIZED = frozenset(
    getattr(TensorProto, name, TensorProto.UNDEFINED)
    for name in ("UNDEFINED", "STRING", "INT4", "UINT4", "FLOAT4E2M1", "INT2", "UINT2")
)


def read_onnx(path: str | Path, check_opset: bool = True) -> onnx.ModelProto:
    """The model in `path`, without its external data, checked as the module docstring says."""
    path = Path(path)
    if not path.is_file():
        raise InputFileError(f"ONNX model {path}: no such file")
    size = path.stat().st_size
    if size > MAX_ONNX_BYTES:
        raise InputFileError(
            f"ONNX model {path}: {size / (1 << 30):.1f} GiB, above protobuf's 2 GiB limit; save the weights as "
            "external data beside it (onnx.save(model, path, save_as_external_data=True))"
        )
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # noqa: BLE001 - protobuf and onnx raise several types for a bad file
        raise InputFileError(f"ONNX model {path}: not an ONNX model ({_first_line(exc)})") from None
    opset = default_opset(model)
    if not model.graph.node or opset is None:
        raise InputFileError(f"ONNX model {path}: not an ONNX model (no graph, or no ai.onnx opset)")
    low, high = SUPPORTED_OPSETS
    if check_opset and not low <= opset <= high:
        raise InputFileError(
            f"ONNX model {path}: opset {opset}; the model step is served with ONNX opsets {low}-{high} "
            f"(ONNX Runtime in Triton 2.51 runs up to {high}): export it again with an opset in that range"
        )
    external_files(path, model)
    return model


def copy_onnx(source: str | Path, destination: Path) -> Path:
    """Copy the checked model `source` to `destination` and its external files beside it."""
    source = Path(source)
    model = read_onnx(source)
    destination.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, destination)
    for relative in sorted(external_files(source, model)):
        target = destination.parent / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source.parent / relative, target)
    return destination


def default_opset(model: onnx.ModelProto) -> int | None:
    """The opset of the default (ai.onnx) domain, None when the model imports none."""
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)


def external_files(path: Path, model: onnx.ModelProto) -> set[str]:
    """The relative locations of `model`'s external data (InputFileError unless each is safe to read)."""
    folder = path.parent.resolve()
    sizes: dict[str, int] = {}
    for tensor in _tensors(model):
        if tensor.data_location != TensorProto.EXTERNAL:
            continue
        entries = {entry.key: entry.value for entry in tensor.external_data}
        location = entries.get("location", "")
        _check_location(path, tensor.name, location)
        file = (folder / location).resolve()
        if not file.is_relative_to(folder) or not file.is_file():
            raise InputFileError(
                f"ONNX model {path}: tensor {tensor.name} keeps its data in {location!r}, which is not a file in "
                f"the model's folder {folder}"
            )
        sizes.setdefault(location, file.stat().st_size)
        _check_extent(path, tensor, location, entries, sizes[location])
    return set(sizes)


def _check_location(path: Path, tensor: str, location: str) -> None:
    parts = PurePosixPath(location.replace("\\", "/")).parts
    absolute = PurePosixPath(location).is_absolute() or PureWindowsPath(location).is_absolute() or ":" in location
    if not location or absolute or not parts or not all(_PART.match(part) for part in parts):
        raise InputFileError(
            f"ONNX model {path}: tensor {tensor} keeps its data at {location!r}; external data must be a file "
            "beside the model, named by a relative path without '..', hidden or absolute parts; refused"
        )
    if PurePosixPath(parts[-1]).suffix.lower() in _REFUSED_SUFFIXES or parts[0] == "__pycache__":
        raise InputFileError(
            f"ONNX model {path}: tensor {tensor} keeps its data in {location!r}, a name a model folder runs or "
            "configures with; rename the external data file (e.g. weights.bin)"
        )


def _check_extent(path: Path, tensor: TensorProto, location: str, entries: dict[str, str], size: int) -> None:
    try:
        offset = int(entries.get("offset", "0"))
        length = int(entries["length"]) if "length" in entries else size - offset
    except ValueError:
        raise InputFileError(
            f"ONNX model {path}: tensor {tensor.name} has a non-numeric external data offset or length"
        ) from None
    if offset < 0 or length < 0 or offset + length > size:
        raise InputFileError(
            f"ONNX model {path}: tensor {tensor.name} declares {length} bytes at offset {offset} of {location}, "
            f"which holds {size} bytes; refused"
        )
    if tensor.data_type not in _UNSIZED:
        itemsize = onnx.helper.tensor_dtype_to_np_dtype(tensor.data_type).itemsize
        expected = math.prod(tensor.dims) * itemsize
        if length != expected:
            raise InputFileError(
                f"ONNX model {path}: tensor {tensor.name} declares {length} bytes of external data; its shape "
                f"{list(tensor.dims)} needs {expected}; refused"
            )


def _tensors(model: onnx.ModelProto) -> Iterator[TensorProto]:
    """Every tensor of the model: initializers and attribute tensors of every graph and function."""
    graphs = [model.graph]
    nodes = [node for function in model.functions for node in function.node]
    while graphs or nodes:
        if graphs:
            graph = graphs.pop()
            yield from graph.initializer
            for sparse in graph.sparse_initializer:
                yield from (sparse.values, sparse.indices)
            nodes.extend(graph.node)
            continue
        for attribute in nodes.pop().attribute:
            if attribute.HasField("t"):
                yield attribute.t
            yield from attribute.tensors
            graphs.extend([attribute.g] if attribute.HasField("g") else [])
            graphs.extend(attribute.graphs)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0][:200]}" if text else type(exc).__name__
