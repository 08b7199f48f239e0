"""Check a native model step's config against its ONNX file offline: the inputs and outputs that Triton's
onnxruntime backend compares when it loads the model, and that a TensorRT engine built from the file (the
`model.onnx` beside `model.plan`) takes.

The rules are the backend's (`CompareDimsSupported`): every model input is listed in the config and every
config input and output is in the model; element types are equal; with `max_batch_size` > 0 the model's
first axis is dynamic and the config's dims are the rest; a fixed model axis needs the same fixed size in
the config, a dynamic one takes any. A rules-aware model whose tables were not baked (18 inputs against a
config of 10) fails here, naming the inputs.
"""

from __future__ import annotations

from pathlib import Path

import onnx
from onnx import TensorProto
from tritonclient.grpc import model_config_pb2 as mc

from ugt_ensemble.runtime.contract import ONNX_FILE

#: ONNX element type -> Triton data type (those a model step uses, and their near kin).
TRITON_TYPES: dict[int, int] = {
    TensorProto.BOOL: mc.TYPE_BOOL,
    TensorProto.INT32: mc.TYPE_INT32,
    TensorProto.INT64: mc.TYPE_INT64,
    TensorProto.FLOAT16: mc.TYPE_FP16,
    TensorProto.FLOAT: mc.TYPE_FP32,
    TensorProto.DOUBLE: mc.TYPE_FP64,
}
#: Platforms whose version folders hold an ONNX file to compare (TensorRT's: the engine's source, when kept).
ONNX_PLATFORMS = ("onnxruntime_onnx", "tensorrt_plan")


def native_model_errors(root: Path, configs: dict[str, mc.ModelConfig]) -> list[str]:
    """One line per mismatch between a native model step's config and the ONNX file of each of its versions."""
    errors = []
    for name, config in sorted(configs.items()):
        if config.platform not in ONNX_PLATFORMS:
            continue
        wanted = config.default_model_filename if config.platform == "onnxruntime_onnx" else ""
        model_dir = Path(root) / name
        for folder in sorted((p for p in model_dir.iterdir() if p.is_dir() and p.name.isdigit()), key=_number):
            path = folder / (wanted or ONNX_FILE)
            if path.is_file():  # a missing file is the repository rules' to report
                errors += config_io_errors(config, path, f"{name}/{folder.name}/{path.name}")
    return errors


def config_io_errors(config: mc.ModelConfig, onnx_path: Path, where: str) -> list[str]:
    """How `config`'s inputs and outputs differ from the ONNX model at `onnx_path` (empty: they agree)."""
    try:
        graph = onnx.load(str(onnx_path), load_external_data=False).graph
    except Exception as exc:  # noqa: BLE001 - protobuf and onnx raise several types for a bad file
        return [f"{where}: not an ONNX model ({type(exc).__name__})"]
    constants = {t.name for t in graph.initializer}
    inputs = {v.name: v for v in graph.input if v.name not in constants}
    outputs = {v.name: v for v in graph.output}
    listed = {t.name: t for t in config.input}
    errors = []
    unlisted = sorted(set(inputs) - set(listed))
    if unlisted:
        errors.append(f"{where}: takes input(s) {unlisted} that config.pbtxt does not list (Triton refuses to load it)")
    for kind, tensors, model in (("input", config.input, inputs), ("output", config.output, outputs)):
        for tensor in tensors:
            if tensor.name not in model:
                errors.append(f"{where}: config.pbtxt lists {kind} {tensor.name!r}, which the model does not have")
                continue
            problem = _tensor_problem(tensor, model[tensor.name], config.max_batch_size > 0)
            if problem:
                errors.append(f"{where}: {kind} {tensor.name!r}: {problem}")
    return errors


def _tensor_problem(tensor: mc.ModelInput | mc.ModelOutput, value: onnx.ValueInfoProto, batched: bool) -> str | None:
    kind = value.type.tensor_type.elem_type
    model_dims = [d.dim_value if d.HasField("dim_value") else -1 for d in value.type.tensor_type.shape.dim]
    if TRITON_TYPES.get(kind) != tensor.data_type:
        model = mc.DataType.Name(TRITON_TYPES[kind]) if kind in TRITON_TYPES else TensorProto.DataType.Name(kind)
        return f"config.pbtxt says {mc.DataType.Name(tensor.data_type)}, the model {model}"
    full = ([-1] if batched else []) + list(tensor.dims)
    if batched and (not model_dims or model_dims[0] != -1):
        return f"the model's first axis is {model_dims[:1]}, not the dynamic batch axis max_batch_size needs"
    if len(model_dims) != len(full) or any(m != -1 and m != c for m, c in zip(model_dims, full)):
        after = " after the batch axis" if batched else ""
        return f"config.pbtxt dims {list(tensor.dims)}{after} do not fit the model's {model_dims} (-1: dynamic)"
    return None


def _number(folder: Path) -> int:
    return int(folder.name)
