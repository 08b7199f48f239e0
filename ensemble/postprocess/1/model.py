"""Triton Python backend `postprocess`: (K, 3) codes and scores -> ITEM_IDS, SCORES, SEMANTIC_IDS.

A thin adapter over `ugt_runtime.decoding` (copied beside this file by `python -m ugt_ensemble build`
with the catalog index it reads): unknown codes become padding and repeated items are dropped, so every
answer is distinct catalog items. With `exclude_history`, the packed history (the encoder tensors)
comes in too and items the user already has are dropped.
"""

from __future__ import annotations

import numpy as np

from ugt_runtime.batching import answer_batch, row_bounds
from ugt_runtime.catalog_index import CatalogIndex
from ugt_runtime.contract import HISTORY_CODE_INPUTS, MODEL_SCORES, NUM_LEVELS, RECOMMENDATIONS
from ugt_runtime.decoding import decode_recommendations, packed_history
from ugt_runtime.errors import RequestError
from ugt_runtime.parameters import PostprocessParameters
from ugt_runtime.triton_io import input_array, model_config, to_responses, version_dir


class TritonPythonModel:
    def initialize(self, args: dict) -> None:
        params = PostprocessParameters.from_model_config(model_config(args), f"{version_dir(args)}/../config.pbtxt")
        self.index = CatalogIndex.load(version_dir(args) / params.catalog_file)
        self.exclude_history = params.exclude_history
        self.k = params.num_recommendations

    def execute(self, requests: list) -> list:
        return to_responses(answer_batch(requests, self._parse, self._decode))

    def _parse(self, request) -> dict[str, np.ndarray]:  # noqa: ANN001
        codes, scores = input_array(request, RECOMMENDATIONS), input_array(request, MODEL_SCORES)
        if codes.shape[1:] != (self.k, NUM_LEVELS) or scores.shape != codes.shape[:2]:
            raise RequestError(
                f"expected recommendations [rows, {self.k}, {NUM_LEVELS}] and scores [rows, {self.k}], "
                f"got {list(codes.shape)} and {list(scores.shape)}"
            )
        parsed = {"codes": codes, "scores": scores}
        if self.exclude_history:
            encoder = {name: input_array(request, name) for name in HISTORY_CODE_INPUTS}
            parsed["history"], parsed["mask"] = packed_history(encoder)
        return parsed

    def _decode(self, requests: list[dict[str, np.ndarray]]) -> list[dict[str, np.ndarray]]:
        codes = np.concatenate([r["codes"] for r in requests])
        scores = np.concatenate([r["scores"] for r in requests])
        history = mask = None
        if self.exclude_history:
            history, mask = _pad_concat([r["history"] for r in requests]), _pad_concat([r["mask"] for r in requests])
        decoded = decode_recommendations(codes, scores, self.index, history, mask)
        return [decoded.rows(start, stop) for start, stop in row_bounds([len(r["codes"]) for r in requests])]


def _pad_concat(parts: list[np.ndarray]) -> np.ndarray:
    """Concatenate (rows, T_i, ...) arrays along rows, zero-padding T to the longest."""
    width = max(p.shape[1] for p in parts)
    padded = [np.pad(p, [(0, 0), (0, width - p.shape[1])] + [(0, 0)] * (p.ndim - 2)) for p in parts]
    return np.concatenate(padded)
