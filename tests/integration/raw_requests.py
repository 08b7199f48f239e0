"""Requests as a careless or hostile client sends them (re-exported from `ugt_ensemble_dev.reliability.raw`, and
`step_tensors` for tensors sent straight to a composing model)."""

from ugt_ensemble_dev.reliability.raw import POISON, RawGrpc, bytes_element, bytes_tensor, http_binary
from ugt_ensemble_dev.reliability.step_tensors import infer_tensors, malformed_rule_tensors, odd_rule_tensors

__all__ = [
    "POISON",
    "RawGrpc",
    "bytes_element",
    "bytes_tensor",
    "http_binary",
    "infer_tensors",
    "malformed_rule_tensors",
    "odd_rule_tensors",
]
