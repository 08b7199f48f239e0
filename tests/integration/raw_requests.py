"""Requests as a careless or hostile client sends them (re-exported from `ugt_ensemble_dev.reliability.raw`)."""

from ugt_ensemble_dev.reliability.raw import POISON, RawGrpc, bytes_element, bytes_tensor, http_binary

__all__ = ["POISON", "RawGrpc", "bytes_element", "bytes_tensor", "http_binary"]
