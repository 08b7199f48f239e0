"""Check an ONNX model step against the step contract (`ugt_ensemble.model.contract`) without running it:
input and output names, element types, ranks, and dynamic batch and sequence axes. The file is read by
`onnx_file.read_onnx`, which checks its external data before anything opens it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import onnx
from onnx import TensorProto

from ugt_ensemble.errors import StepContractError
from ugt_ensemble.export.onnx_file import default_opset, read_onnx
from ugt_ensemble.runtime.contract import ENCODER_DTYPES, ENCODER_INPUTS, MODEL_SCORES, RECOMMENDATIONS

_ELEMENT = {"int64": TensorProto.INT64, "float32": TensorProto.FLOAT}
#: output -> (element type, rank, trailing dims that must be fixed)
_OUTPUTS = {RECOMMENDATIONS: (TensorProto.INT64, 3, {2: 3}), MODEL_SCORES: (TensorProto.FLOAT, 2, {})}


@dataclass(frozen=True)
class OnnxSignature:
    """What the file declares: opset of the default domain and K (None where the file leaves it symbolic)."""

    opset: int
    num_recommendations: int | None


def check_onnx_signature(path: str | Path, num_recommendations: int) -> OnnxSignature:
    """StepContractError naming the tensor unless `path` declares the step contract's inputs and outputs."""
    path = Path(path)
    model = read_onnx(path, check_opset=False)  # external data checked; the opset of our own exports is ours
    source = f"ONNX model {path}"
    inputs = {i.name: i for i in model.graph.input if i.name not in {t.name for t in model.graph.initializer}}
    if set(inputs) != set(ENCODER_INPUTS):
        raise StepContractError(
            f"{source} has inputs {sorted(inputs)}; the step contract wants exactly {list(ENCODER_INPUTS)}"
        )
    for name in ENCODER_INPUTS:
        _check_input(source, inputs[name])
    outputs = {o.name: o for o in model.graph.output}
    if set(outputs) != set(_OUTPUTS):
        raise StepContractError(f"{source} has outputs {sorted(outputs)}; the step contract wants {list(_OUTPUTS)}")
    k = {_check_output(source, outputs[name], num_recommendations) for name in _OUTPUTS} - {None}
    return OnnxSignature(default_opset(model) or 0, k.pop() if k else None)


def _check_input(source: str, tensor: onnx.ValueInfoProto) -> None:
    want = _ELEMENT[ENCODER_DTYPES[tensor.name].__name__]
    kind, dims = tensor.type.tensor_type.elem_type, tensor.type.tensor_type.shape.dim
    if kind != want or len(dims) != 2:
        raise StepContractError(
            f"{source}: input {tensor.name} is {TensorProto.DataType.Name(kind)} of rank {len(dims)}; "
            f"the contract wants {TensorProto.DataType.Name(want)} [batch, sequence]"
        )
    for axis, label in enumerate(("batch", "sequence")):
        if dims[axis].HasField("dim_value"):
            raise StepContractError(
                f"{source}: input {tensor.name} has a fixed {label} axis of {dims[axis].dim_value}; export it with "
                f"dynamic batch and sequence axes (dynamic_shapes or dynamic_axes)"
            )


def _check_output(source: str, tensor: onnx.ValueInfoProto, num_recommendations: int) -> int | None:
    want, rank, fixed = _OUTPUTS[tensor.name]
    kind, dims = tensor.type.tensor_type.elem_type, tensor.type.tensor_type.shape.dim
    if kind != want or len(dims) != rank:
        raise StepContractError(
            f"{source}: output {tensor.name} is {TensorProto.DataType.Name(kind)} of rank {len(dims)}; "
            f"the contract wants {TensorProto.DataType.Name(want)} of rank {rank}"
        )
    for axis, size in fixed.items():
        if dims[axis].HasField("dim_value") and dims[axis].dim_value != size:
            raise StepContractError(
                f"{source}: output {tensor.name} has {dims[axis].dim_value} levels; the contract wants {size}"
            )
    k = dims[1].dim_value if dims[1].HasField("dim_value") else None
    if k is not None and k != num_recommendations:
        raise StepContractError(
            f"{source}: output {tensor.name} holds {k} recommendations per row; the build asks for "
            f"num_recommendations {num_recommendations} (ExportConfig / --num-recommendations)"
        )
    return k
