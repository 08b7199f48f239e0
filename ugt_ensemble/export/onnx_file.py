"""An ONNX file the user brings (`build --onnx`, `deploy --onnx`), checked before ONNX Runtime opens it.

`read_onnx` parses the file without its external data and refuses, in one line naming the file:
- a file that is not an ONNX model, or one above protobuf's 2 GiB limit;
- a default-domain opset outside SUPPORTED_OPSETS (13-21: 21 is the newest the ONNX Runtime of
  Triton 2.51's onnxruntime backend runs, 13 the oldest the project's exports and checks are written
  for), when asked to check it;
- external data that is not a plain file inside the model's folder: an absolute path, a `..` part, a
  symbolic link (in any part of its path), a hidden, Python, shared-library or model-config name, or a
  declared offset and length past the end of the file or different from the tensor's size.
`copy_onnx` copies a checked model and its external files into a version folder; a file the user brings
may not have more than one hard link either (a hard link to a file outside the folder, say the operator
key, would be copied into the repository), while the repository's own versions share files by hard links.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import stat
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


def read_onnx(path: str | Path, check_opset: bool = True, hard_links: bool = True) -> onnx.ModelProto:
    """The model in `path`, without its external data, checked as the module docstring says (external files
    with more than one hard link refused unless `hard_links`)."""
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
    external_files(path, model, hard_links)
    return model


def copy_onnx(source: str | Path, destination: Path, hard_links: bool = False) -> Path:
    """Copy the checked model `source` to `destination` and its external files beside it (external files with
    more than one hard link refused unless `hard_links`: the repository's own versions share files so)."""
    source = Path(source)
    model = read_onnx(source, hard_links=hard_links)
    destination.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, destination)
    for relative in sorted(external_files(source, model, hard_links)):
        target = destination.parent / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        _copy_plain_file(source, relative, target, hard_links)
    return destination


def default_opset(model: onnx.ModelProto) -> int | None:
    """The opset of the default (ai.onnx) domain, None when the model imports none."""
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)


def external_files(path: Path, model: onnx.ModelProto, hard_links: bool = True) -> set[str]:
    """The relative locations of `model`'s external data (InputFileError unless each is safe to read; one
    with more than one hard link is refused unless `hard_links`)."""
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
        _check_plain(path, tensor.name, folder, location, hard_links)
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


def _check_plain(path: Path, tensor: str, folder: Path, location: str, hard_links: bool) -> None:
    """InputFileError unless `location` below `folder` is reached through no symbolic link and is a regular file
    with one hard link (or any number, if `hard_links`)."""
    parts = PurePosixPath(location.replace("\\", "/")).parts
    if any((folder.joinpath(*parts[: i + 1])).is_symlink() for i in range(len(parts))):
        raise InputFileError(
            f"ONNX model {path}: tensor {tensor} keeps its data in {location!r}, which goes through a symbolic "
            "link; external data must be a plain file in the model's folder; refused"
        )
    _refuse_links(path, location, folder.joinpath(*parts).lstat(), hard_links)


def _refuse_links(path: Path, location: str, info: os.stat_result, hard_links: bool) -> None:
    """InputFileError unless `info` is a regular file with one hard link (or any number, if `hard_links`)."""
    if not stat.S_ISREG(info.st_mode):
        raise InputFileError(f"ONNX model {path}: its external data {location!r} is not a regular file; refused")
    if info.st_nlink > 1 and not hard_links:
        raise InputFileError(
            f"ONNX model {path}: its external data {location!r} is a file with {info.st_nlink} hard links (it may be "
            "a file from elsewhere); external data must be a plain file of its own: copy it, then build again"
        )


def _copy_plain_file(model: Path, location: str, target: Path, hard_links: bool) -> None:
    """Copy the external file `location` beside `model` to `target`, opened without following a link and checked
    again on the open file (a link swapped in after the check is refused too)."""
    try:
        handle = os.open(model.parent / location, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError as exc:
        raise InputFileError(
            f"ONNX model {model}: cannot open its external data {location!r} ({exc.strerror})"
        ) from None
    with os.fdopen(handle, "rb") as reader:
        _refuse_links(model, location, os.fstat(reader.fileno()), hard_links)
        with open(target, "wb") as writer:
            shutil.copyfileobj(reader, writer, 1 << 20)


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
