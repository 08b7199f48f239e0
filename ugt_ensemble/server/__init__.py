"""Run a real tritonserver on a model repository."""

from ugt_ensemble.server.locate import TritonInstall, locate_tritonserver
from ugt_ensemble.server.process import Ports, TritonServer

__all__ = ["Ports", "TritonInstall", "TritonServer", "locate_tritonserver"]
