"""Triton Python backend `preprocess`: HISTORY (one JSON document per row) -> the six encoder tensors.

A thin adapter: parsing and packing are `ugt_runtime.history` and `ugt_runtime.packing`, copied beside
this file by `python -m ugt_ensemble build` with the catalog index it reads.
"""

from __future__ import annotations

import numpy as np

from ugt_runtime.batching import answer_batch, row_bounds
from ugt_runtime.catalog_index import CatalogIndex
from ugt_runtime.contract import HISTORY
from ugt_runtime.history import History, HistoryError, HistoryLimits, parse_history
from ugt_runtime.packing import PackingConfig, pack_histories
from ugt_runtime.parameters import PreprocessParameters
from ugt_runtime.triton_io import FailureCounter, input_array, model_config, to_responses, version_dir


class TritonPythonModel:
    def initialize(self, args: dict) -> None:
        params = PreprocessParameters.from_model_config(model_config(args), f"{version_dir(args)}/../config.pbtxt")
        self.index = CatalogIndex.load(version_dir(args) / params.catalog_file)
        self.limits = HistoryLimits(params.max_request_bytes, params.max_events)
        self.packing = PackingConfig(params.max_seq_length, params.length_buckets)
        self.failures = FailureCounter(args)  # Triton's own statistics count a refused request as a success

    def execute(self, requests: list) -> list:
        outcomes = answer_batch(requests, self._parse, self._pack)
        self.failures.count(outcomes)
        return to_responses(outcomes)

    def _parse(self, request) -> list[History]:  # noqa: ANN001
        documents = input_array(request, HISTORY).reshape(-1)
        histories = []
        for row, raw in enumerate(documents):
            try:
                histories.append(parse_history(raw, self.limits))
            except HistoryError as exc:
                raise HistoryError(f"row {row}: {exc}" if len(documents) > 1 else str(exc)) from None
        return histories

    def _pack(self, requests: list[list[History]]) -> list[dict[str, np.ndarray]]:
        packed = pack_histories([h for rows in requests for h in rows], self.index, self.packing)
        return [packed.rows(start, stop) for start, stop in row_bounds([len(rows) for rows in requests])]
