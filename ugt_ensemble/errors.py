"""Exception hierarchy: every error this package raises on purpose derives from `UgtEnsembleError`.

The root is defined in the runtime (`ugt_ensemble.runtime.errors`) so that the errors of the code
copied into the Triton models share it. The CLI prints these as one line (no traceback) and exits
non-zero; anything else is a bug.
"""

from __future__ import annotations

from ugt_ensemble.runtime.errors import ConfigError, RequestError, UgtEnsembleError

__all__ = [
    "ConfigError",
    "ExportError",
    "InputFileError",
    "MissingDependencyError",
    "MissingFileError",
    "RepositoryError",
    "RequestError",
    "ServerError",
    "StepContractError",
    "UgtEnsembleError",
]


class InputFileError(UgtEnsembleError):
    """A user-supplied file (catalog, checkpoint, model config, histories) is unreadable or invalid."""


class MissingFileError(InputFileError, FileNotFoundError):
    """A file the user named does not exist (also a FileNotFoundError, which catches it)."""


class ExportError(UgtEnsembleError, RuntimeError):
    """Exporting, building or validating the model step failed (also a RuntimeError, which catches it)."""


class StepContractError(ExportError):
    """A model does not follow the model-step contract (names the tensor, dtype or shape)."""


class RepositoryError(UgtEnsembleError):
    """An emitted Triton model repository breaks a config or ensemble rule."""


class ServerError(UgtEnsembleError):
    """tritonserver could not be found, started, or reached."""


class MissingDependencyError(UgtEnsembleError):
    """An optional dependency (TensorRT, pyarrow, perf_analyzer, a GPU, ...) is not available."""
