"""What the naive peer reads from its config.pbtxt `parameters`, typed (rendered by its build hook)."""

from __future__ import annotations

from dataclasses import dataclass

from ugt_ensemble.runtime.parameters import StepParameters


@dataclass(frozen=True)
class NaivePeerParameters(StepParameters):
    """The benchmark's naive baseline (one Python model, PyTorch eager)."""

    catalog_file: str
    checkpoint_file: str
    max_seq_length: int
    torch_threads: int
