"""Exception hierarchy: every error this package raises on purpose derives from `UgtEnsembleError`.

The CLI prints these as one line (no traceback) and exits non-zero; anything else is a bug.
"""

from __future__ import annotations


class UgtEnsembleError(Exception):
    """Root of all ugt-ensemble errors."""


class ConfigError(UgtEnsembleError):
    """A configuration value is invalid (names the field and the allowed values)."""


class InputFileError(UgtEnsembleError):
    """A user-supplied file (catalog, checkpoint, model config, histories) is unreadable or invalid."""


class ExportError(UgtEnsembleError):
    """Exporting or validating the exported model failed."""


class RepositoryError(UgtEnsembleError):
    """An emitted Triton model repository breaks a config or ensemble rule."""


class ServerError(UgtEnsembleError):
    """tritonserver could not be found, started, or reached."""


class MissingDependencyError(UgtEnsembleError):
    """An optional dependency (TensorRT, pyarrow, perf_analyzer, a GPU, ...) is not available."""
