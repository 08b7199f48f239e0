"""Clients of the ensemble: gRPC (`RecommendClient`) and in-process (`LocalPipeline`)."""

from ugt_ensemble.client.grpc_client import RecommendClient
from ugt_ensemble.client.local import LocalPipeline
from ugt_ensemble.client.results import Failure, Recommendation, Result

__all__ = ["Failure", "LocalPipeline", "Recommendation", "RecommendClient", "Result"]
