"""What the benchmark can send: the ensemble, the model step alone, the seed's client-side design,
and the naive peer. Each target turns workload item i into one gRPC request (plus any client work)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import tritonclient.grpc as grpcclient
import tritonclient.grpc.aio as aioclient

from ugt_ensemble.client.grpc_client import history_tensor
from ugt_ensemble.config import BENCH_TARGETS
from ugt_ensemble.errors import ConfigError
from ugt_ensemble.repository.inspect import RepositoryInfo
from ugt_ensemble.runtime.contract import (
    ENCODER_INPUTS,
    ITEM_IDS,
    MODEL_OUTPUTS,
    MODEL_SCORES,
    RECOMMENDATIONS,
    SCORES,
    SEMANTIC_IDS,
)
from ugt_ensemble.runtime.decoding import decode_recommendations
from ugt_ensemble_dev.bench.workload import Workload, pack_one

_TRITON_DTYPE = {np.dtype(np.int64): "INT64", np.dtype(np.float32): "FP32"}
TARGETS: dict[str, str] = {
    "ensemble": "ensemble, raw histories",
    "model_step": "model step alone, pre-packed tensors",
    "client_packing": "seed design: client-side packing + model step + client-side decoding",
    "naive": "naive peer: one Python model, PyTorch eager, per request",
}
assert tuple(TARGETS) == BENCH_TARGETS, "describe every target of ugt_ensemble.config.BENCH_TARGETS, in order"


def tensor_inputs(tensors: dict[str, np.ndarray]) -> list[grpcclient.InferInput]:
    """InferInputs of a (1, T) packed request."""
    inputs = []
    for name in ENCODER_INPUTS:
        array = np.ascontiguousarray(tensors[name])
        tensor = grpcclient.InferInput(name, list(array.shape), _TRITON_DTYPE[array.dtype])
        tensor.set_data_from_numpy(array)
        inputs.append(tensor)
    return inputs


@dataclass
class Target:
    """A benchmark target: `request(client, i)` sends workload item i and raises if it fails."""

    name: str
    model: str
    workload: Workload
    info: RepositoryInfo
    _prepared: list = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        if self.name == "model_step":  # packing happens here, outside the timed region
            self._prepared = [
                tensor_inputs(p) if p is not None else [history_tensor([h])]
                for p, h in zip(self.workload.packed, self.workload.histories)
            ]
        elif self.name in ("ensemble", "naive"):
            self._prepared = [[history_tensor([h])] for h in self.workload.histories]
        self._outputs = [
            grpcclient.InferRequestedOutput(n)
            for n in (MODEL_OUTPUTS if self.model == self.info.model_step else (ITEM_IDS, SCORES, SEMANTIC_IDS))
        ]

    async def request(self, client: aioclient.InferenceServerClient, i: int) -> None:
        if self.name != "client_packing":
            await client.infer(self.model, self._prepared[i], outputs=self._outputs)
            return
        packed = pack_one(self.workload.histories[i], self.info)  # timed: the client does the work
        result = await client.infer(self.model, tensor_inputs(packed), outputs=self._outputs)
        decode_recommendations(result.as_numpy(RECOMMENDATIONS), result.as_numpy(MODEL_SCORES), self.info.index)


def target_model(name: str, info: RepositoryInfo) -> str | None:
    """The model of `info` that target `name` loads (None: the naive peer of a repository without one)."""
    if name not in TARGETS:
        raise ConfigError(f"unknown target {name!r}; choose from {', '.join(TARGETS)}")
    return {"ensemble": info.ensemble, "naive": info.naive_peer}.get(name, info.model_step)


def make_target(name: str, info: RepositoryInfo, workload: Workload) -> Target:
    """The target `name` (see `TARGETS`) against the models of `info`."""
    model = target_model(name, info)
    if model is None:
        raise ConfigError(f"{info.path} has no naive peer; build it with `python -m ugt_ensemble build --naive-peer`")
    return Target(name, model, workload, info)
