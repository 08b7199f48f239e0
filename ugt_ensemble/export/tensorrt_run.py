"""Run a built TensorRT engine on one batch (to validate it against PyTorch right after the build).

Needs TensorRT and a CUDA GPU (device buffers are torch CUDA tensors). NOT RUN IN THIS PROJECT'S
CI: no machine here has TensorRT. An engine that takes the rule inputs (built from a baked ONNX file) gets the
no-rule tensors of `data` when a feed holds encoder tensors only (`tensorrt_plan.engine_feed`); never run on a
GPU yet either.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ugt_ensemble.errors import ExportError
from ugt_ensemble.export.tensorrt_build import require_tensorrt
from ugt_ensemble.export.tensorrt_plan import engine_feed
from ugt_ensemble.runtime.constraint_data import ConstraintData
from ugt_ensemble.runtime.contract import MODEL_OUTPUTS


class TensorRTRunner:
    """Deserialises `engine_path` once; `__call__(feed)` returns (recommendations, scores) as numpy. `data`: the
    constraint data whose no-rule tensors complete a feed without rule tensors (engines with rule inputs)."""

    def __init__(self, engine_path: str | Path, data: ConstraintData | None = None) -> None:
        trt = require_tensorrt()
        import torch

        self._torch = torch
        self.engine_path = Path(engine_path)
        runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        self.engine = runtime.deserialize_cuda_engine(Path(engine_path).read_bytes())
        self.context = self.engine.create_execution_context()
        self.data = data
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        self.inputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        self._dtypes = {
            trt.int64: torch.int64,
            trt.int32: torch.int32,
            trt.float32: torch.float32,
            trt.float16: torch.float16,
            trt.bool: torch.bool,
        }

    def __call__(self, feed: dict[str, np.ndarray]) -> list[np.ndarray]:
        torch = self._torch
        stream = torch.cuda.Stream()
        keep = {}
        for name, array in engine_feed(feed, self.inputs, self.data, str(self.engine_path)).items():
            keep[name] = torch.from_numpy(np.ascontiguousarray(array)).cuda()
            self.context.set_input_shape(name, tuple(array.shape))
            self.context.set_tensor_address(name, keep[name].data_ptr())
        outputs = {}
        for name in MODEL_OUTPUTS:
            shape = tuple(self.context.get_tensor_shape(name))
            dtype = self._dtypes[self.engine.get_tensor_dtype(name)]
            outputs[name] = torch.empty(shape, dtype=dtype, device="cuda")
            self.context.set_tensor_address(name, outputs[name].data_ptr())
        if not self.context.execute_async_v3(stream.cuda_stream):
            raise ExportError(f"TensorRT execution of {self.engine_path} failed")
        stream.synchronize()
        return [outputs[name].cpu().numpy() for name in MODEL_OUTPUTS]
