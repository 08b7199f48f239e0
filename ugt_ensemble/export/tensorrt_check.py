"""Static check that TensorRT 10's ONNX parser (onnx-tensorrt) can take a graph, without TensorRT.

Facts from onnx-tensorrt's operator matrix for TensorRT 10.x: opsets 9-20; per operator the data
types it accepts; `sorted` = 1 and a constant K < 3840 for TopK; constant `axes` for Slice,
Squeeze, Unsqueeze, Reduce* and Pad. Loop and Scan are refused here outright: the decoder must be
unrolled into static steps (a dynamic scan output cannot be parsed).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import onnx
from onnx import TensorProto, numpy_helper

from ugt_ensemble.errors import ExportError

LOGGER = logging.getLogger(__name__)

OPSET_RANGE = (9, 20)
TOPK_MAX_K = 3840  # exclusive
_F = ("FLOAT", "FLOAT16", "BFLOAT16")
_I = ("INT32", "INT64")
_ALL = (*_F, *_I, "BOOL")
#: operator -> element types of its data input (subset of the matrix: the operators exporters emit).
SUPPORTED: dict[str, tuple[str, ...]] = {
    **{
        op: (*_F, *_I)
        for op in (
            "Abs",
            "Add",
            "Div",
            "Equal",
            "Greater",
            "GreaterOrEqual",
            "Less",
            "LessOrEqual",
            "Max",
            "Min",
            "Mod",
            "Mul",
            "Neg",
            "Sign",
            "Sub",
            "Range",
            "TopK",
            "ArgMax",
            "ArgMin",
            "Relu",
            "ReduceMax",
            "ReduceMin",
            "ReduceMean",
            "ReduceSum",
            "Pad",
        )
    },
    **{
        op: _F
        for op in (
            "Ceil",
            "Clip",
            "CumSum",
            "Einsum",
            "Erf",
            "Exp",
            "Floor",
            "Gemm",
            "LayerNormalization",
            "Log",
            "LogSoftmax",
            "MatMul",
            "Pow",
            "Reciprocal",
            "Sigmoid",
            "Softmax",
            "Sqrt",
            "Tanh",
            "ReduceLogSumExp",
            "ReduceProd",
            "ReduceL2",
        )
    },
    **{
        op: _ALL
        for op in (
            "Concat",
            "Constant",
            "ConstantOfShape",
            "Expand",
            "Gather",
            "GatherElements",
            "GatherND",
            "Identity",
            "Reshape",
            "Shape",
            "Size",
            "Slice",
            "Split",
            "Squeeze",
            "Tile",
            "Transpose",
            "Trilu",
            "Unsqueeze",
            "Where",
            "Flatten",
        )
    },
    "Gelu": (*_F, "INT8", *_I),
    "ScatterElements": (*_F, *_I),  # reduction "none" only (the rules' masks of the beam search)
    "Cast": (*_F, *_I, "UINT8", "BOOL"),
    "And": ("BOOL",),
    "Or": ("BOOL",),
    "Not": ("BOOL",),
    "Xor": ("BOOL",),
}
#: operator -> index of the input that must be a constant (initializer or Constant output).
CONSTANT_INPUTS: dict[str, int] = {
    "TopK": 1,
    "Slice": 3,
    "Squeeze": 1,
    "Unsqueeze": 1,
    "ReduceMax": 1,
    "ReduceMin": 1,
    "ReduceMean": 1,
    "ReduceSum": 1,
    "Pad": 3,
    "CumSum": 1,
}
REFUSED: dict[str, str] = {
    "Loop": "unroll it into static steps (a Loop with a dynamic scan output is not parsable)",
    "Scan": "unroll it into static steps",
}
_DATA_INPUT = {"Where": 1}


@dataclass
class TensorRTReport:
    """Problems found (empty: TensorRT 10's parser should accept the graph) and an op census."""

    problems: list[str] = field(default_factory=list)
    op_counts: dict[str, int] = field(default_factory=dict)
    opset: int | None = None

    @property
    def ok(self) -> bool:
        return not self.problems


def check_tensorrt_compatibility(model: str | Path | onnx.ModelProto) -> TensorRTReport:
    """Check every node of `model` (a path or a loaded ModelProto) against the facts above."""
    proto = onnx.load(str(model)) if not isinstance(model, onnx.ModelProto) else model
    try:
        proto = onnx.shape_inference.infer_shapes(proto)
    except Exception:  # noqa: BLE001 - e.g. an unknown domain; check with the types already known
        pass
    report = TensorRTReport()
    report.opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), None)
    if report.opset is None or not OPSET_RANGE[0] <= report.opset <= OPSET_RANGE[1]:
        report.problems.append(f"opset {report.opset} is outside TensorRT 10's range {OPSET_RANGE}")
    if proto.functions:
        report.problems.append(f"{len(proto.functions)} local ONNX function(s) left; inline them before TensorRT")
    graph = proto.graph
    types = _element_types(graph)
    constants = _constant_values(graph)
    for node in graph.node:
        report.op_counts[node.op_type] = report.op_counts.get(node.op_type, 0) + 1
        report.problems.extend(_check_node(node, types, constants))
    return report


def _check_node(node: onnx.NodeProto, types: dict[str, str], constants: dict[str, object]) -> list[str]:
    where = f"{node.op_type} node {node.name or node.output[0]!r}"
    if node.domain not in ("", "ai.onnx"):
        return [f"{where}: custom domain {node.domain!r} needs a TensorRT plugin"]
    if node.op_type in REFUSED:
        return [f"{where}: {REFUSED[node.op_type]}"]
    if node.op_type not in SUPPORTED:
        return [f"{where}: not in onnx-tensorrt's operator matrix for TensorRT 10"]
    problems = []
    index = _DATA_INPUT.get(node.op_type, 0)
    data_type = types.get(node.input[index]) if len(node.input) > index and node.input[index] else None
    if data_type and data_type not in SUPPORTED[node.op_type]:
        problems.append(f"{where}: input type {data_type} unsupported (allowed: {', '.join(SUPPORTED[node.op_type])})")
    const_index = CONSTANT_INPUTS.get(node.op_type)
    if const_index is not None and len(node.input) > const_index and node.input[const_index]:
        if node.input[const_index] not in constants:
            problems.append(f"{where}: input {const_index} must be a constant (initializer)")
    if node.op_type == "TopK":
        problems.extend(_check_topk(where, node, constants))
    if node.op_type == "LayerNormalization" and len([o for o in node.output if o]) > 1:
        problems.append(f"{where}: only the first output (Y) is supported")
    return problems


def _check_topk(where: str, node: onnx.NodeProto, constants: dict[str, object]) -> list[str]:
    problems = []
    attributes = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    if attributes.get("sorted", 1) != 1:
        problems.append(f"{where}: `sorted` must be 1")
    k = constants.get(node.input[1]) if len(node.input) > 1 else None
    if k is not None and not int(k.reshape(-1)[0]) < TOPK_MAX_K:  # type: ignore[union-attr]
        problems.append(f"{where}: K = {int(k.reshape(-1)[0])} must be < {TOPK_MAX_K}")  # type: ignore[union-attr]
    return problems


def _element_types(graph: onnx.GraphProto) -> dict[str, str]:
    typed = [*graph.input, *graph.output, *graph.value_info]
    types = {
        v.name: TensorProto.DataType.Name(v.type.tensor_type.elem_type) for v in typed if v.type.HasField("tensor_type")
    }
    types.update({t.name: TensorProto.DataType.Name(t.data_type) for t in graph.initializer})
    return types


def _constant_values(graph: onnx.GraphProto) -> dict[str, object]:
    values: dict[str, object] = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            values[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    return values


def require_tensorrt_parsable(onnx_path: str | Path, fatal: bool) -> TensorRTReport:
    """Run the static check on an export: problems raise ExportError when `fatal`, else are logged."""
    report = check_tensorrt_compatibility(onnx_path)
    if report.problems and fatal:
        raise ExportError("TensorRT cannot parse the exported graph:\n  " + "\n  ".join(report.problems))
    for problem in report.problems:
        LOGGER.warning("TensorRT would refuse the graph: %s", problem)
    return report
