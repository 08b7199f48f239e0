"""Check an ONNX model step against the step contract (`runtime.contract.STEP_INPUTS` / `STEP_OUTPUTS`) without
running it: input and output names, element types, ranks, fixed sizes, and dynamic batch and sequence axes. The
file is read by `onnx_file.read_onnx`, which checks its external data before anything opens it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import onnx
from onnx import TensorProto

from ugt_ensemble.errors import StepContractError
from ugt_ensemble.export.onnx_file import default_opset, read_onnx
from ugt_ensemble.runtime.contract import (
    ENCODER_INPUTS,
    FANOUT_CAPS_KEY,
    MODEL_OUTPUTS,
    RULE_INPUTS,
    RULE_NAMES,
    STEP_TENSORS,
    TABLE_INPUTS,
    TABLE_NAMES,
    StepTensor,
)

#: ONNX element type of each numpy dtype the contract uses.
_ELEMENT = {"int64": TensorProto.INT64, "float32": TensorProto.FLOAT, "bool": TensorProto.BOOL}
_RULE_SPECS = {t.name: t for t in (*RULE_INPUTS, *TABLE_INPUTS)}
#: Axes that must stay symbolic in the file.
_DYNAMIC = ("batch", "sequence")


@dataclass(frozen=True)
class OnnxSignature:
    """What the file declares: opset of the default domain, K (None where the file leaves it symbolic), and
    whether it honours the business rules in its search (it takes the rule and table inputs) with which
    fan-out caps."""

    opset: int
    num_recommendations: int | None
    rules_in_search: bool = False
    fanout_caps: tuple[int, int] | None = None


def check_onnx_signature(path: str | Path, num_recommendations: int) -> OnnxSignature:
    """StepContractError naming the tensor unless `path` declares the step contract's inputs and outputs."""
    path = Path(path)
    model = read_onnx(path, check_opset=False)  # external data checked; the opset of our own exports is ours
    source = f"ONNX model {path}"
    inputs = {i.name: i for i in model.graph.input if i.name not in {t.name for t in model.graph.initializer}}
    rules = set(inputs) == {*ENCODER_INPUTS, *RULE_NAMES, *TABLE_NAMES}
    if set(inputs) != set(ENCODER_INPUTS) and not rules:
        raise StepContractError(
            f"{source} has inputs {sorted(inputs)}; the step contract wants exactly {list(ENCODER_INPUTS)}, "
            f"optionally with all of {list(RULE_NAMES + TABLE_NAMES)} (a model that honours the rules)"
        )
    for name in ENCODER_INPUTS:
        _check_input(source, inputs[name], STEP_TENSORS[name])
    for name in (RULE_NAMES + TABLE_NAMES) if rules else ():
        _check_input(source, inputs[name], _RULE_SPECS[name])
    outputs = {o.name: o for o in model.graph.output}
    if set(outputs) != set(MODEL_OUTPUTS):
        raise StepContractError(
            f"{source} has outputs {sorted(outputs)}; the step contract wants {list(MODEL_OUTPUTS)}"
        )
    k = {_check_output(source, outputs[name], STEP_TENSORS[name], num_recommendations) for name in MODEL_OUTPUTS}
    k -= {None}
    caps = _fanout_caps(source, model) if rules else None
    return OnnxSignature(default_opset(model) or 0, k.pop() if k else None, rules, caps)


def read_fanout_caps(path: str | Path) -> tuple[int, int] | None:
    """The fan-out caps in the metadata of the model at `path` (None when it has none: it takes no tables)."""
    model = read_onnx(Path(path), check_opset=False)
    keys = {p.key for p in model.metadata_props}
    return _fanout_caps(f"ONNX model {path}", model) if FANOUT_CAPS_KEY in keys else None


def _fanout_caps(source: str, model: onnx.ModelProto) -> tuple[int, int]:
    """The fan-out caps a rules-aware model was exported with (its metadata)."""
    text = {p.key: p.value for p in model.metadata_props}.get(FANOUT_CAPS_KEY, "")
    try:
        c2, c3 = (int(v) for v in text.split(","))
    except ValueError:
        raise StepContractError(
            f"{source} takes the rule inputs but its metadata {FANOUT_CAPS_KEY!r} is {text!r}, not 'C2,C3' "
            "(the widest level-2 and level-3 fan-outs its search covers)"
        ) from None
    return c2, c3


def _check_input(source: str, tensor: onnx.ValueInfoProto, spec: StepTensor) -> None:
    want = _ELEMENT[spec.dtype]
    kind, dims = tensor.type.tensor_type.elem_type, tensor.type.tensor_type.shape.dim
    if kind != want or len(dims) != len(spec.shape):
        raise StepContractError(
            f"{source}: input {tensor.name} is {TensorProto.DataType.Name(kind)} of rank {len(dims)}; "
            f"the contract wants {TensorProto.DataType.Name(want)} [{', '.join(map(str, spec.shape))}]"
        )
    for axis, label in enumerate(spec.shape):
        if label in _DYNAMIC and dims[axis].HasField("dim_value"):
            raise StepContractError(
                f"{source}: input {tensor.name} has a fixed {label} axis of {dims[axis].dim_value}; export it with "
                f"dynamic batch and sequence axes (dynamic_shapes or dynamic_axes)"
            )


def _check_output(source: str, tensor: onnx.ValueInfoProto, spec: StepTensor, k_wanted: int) -> int | None:
    want, rank = _ELEMENT[spec.dtype], len(spec.shape)
    fixed = {axis: size for axis, size in enumerate(spec.shape) if isinstance(size, int)}
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
    k_axis = spec.shape.index("K")
    k = dims[k_axis].dim_value if dims[k_axis].HasField("dim_value") else None
    if k is not None and k != k_wanted:
        raise StepContractError(
            f"{source}: output {tensor.name} holds {k} recommendations per row; the build asks for "
            f"num_recommendations {k_wanted} (ExportConfig / --num-recommendations)"
        )
    return k
