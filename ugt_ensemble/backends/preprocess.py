"""Triton Python backend `preprocess`: HISTORY (one JSON document per row) -> six encoder tensors.

A thin adapter: parsing and packing are `ugt_runtime.history` and `ugt_runtime.packing`.
"""

from __future__ import annotations

import numpy as np
from triton_io import input_array, model_parameters, to_responses, version_dir
from ugt_runtime.batching import answer_batch, row_bounds
from ugt_runtime.catalog_index import CatalogIndex
from ugt_runtime.contract import HISTORY
from ugt_runtime.history import History, HistoryError, HistoryLimits, parse_history
from ugt_runtime.packing import PackingConfig, pack_histories


class TritonPythonModel:
    def initialize(self, args: dict) -> None:
        params = model_parameters(args)
        self.index = CatalogIndex.load(version_dir(args) / params["catalog_file"])
        self.limits = HistoryLimits(int(params["max_request_bytes"]), int(params["max_events"]))
        buckets = tuple(int(b) for b in params["length_buckets"].split(","))
        self.packing = PackingConfig(int(params["max_seq_length"]), buckets)

    def execute(self, requests: list) -> list:
        return to_responses(answer_batch(requests, self._parse, self._pack))

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
