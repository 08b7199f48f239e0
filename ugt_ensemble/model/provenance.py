"""`ModelSource`: where a build's model step came from, a typed field (`model`) of `ugt_build.json`.

A new version that names no model keeps the one the served version runs, and how it is rebuilt depends
on its kind: the reference UGT is exported again (seeded, or from its checkpoint) on the new catalog, an
ONNX file with no PyTorch model is taken again as it is, and a .pt2 or a module given to the Python API
cannot be rebuilt from the manifest alone. Manifests written before the field existed are read from
their display label (`model_source`), `model_file` and `weights`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

#: reference: the seeded UGT; checkpoint: UGT weights at `path`; pt2: a torch.export archive at `path`;
#: onnx: an ONNX file at `path` served with no PyTorch model; module: a torch.nn.Module from the Python API.
KINDS = ("reference", "checkpoint", "pt2", "onnx", "module")
#: The endings and beginnings of the display labels `model.step` writes (older manifests hold only these).
ONNX_LABEL = " (ONNX, no PyTorch model)"
PT2_LABEL = " (torch.export archive)"
MODULE_LABEL = "the given "
WEIGHTS_LABEL = "weights from "


@dataclass(frozen=True)
class ModelSource:
    """The kind of model step a build served (one of `KINDS`) and the file it came from, if any."""

    kind: str
    path: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"model source kind {self.kind!r} is not one of {list(KINDS)}")

    @classmethod
    def of(cls, kind: str, path: str | Path | None = None) -> ModelSource:
        """A source whose file is recorded as an absolute path (a later deploy may run elsewhere)."""
        return cls(kind, str(Path(path).absolute()) if path is not None else None)

    def as_dict(self) -> dict[str, str | None]:
        """The manifest's `model` field."""
        return {"kind": self.kind, "path": self.path}

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> ModelSource:
        """The source a manifest record names (the build's, or one version's): its typed `model` field,
        else what an older manifest's label, `model_file` and `weights` say."""
        typed = record.get("model")
        if isinstance(typed, Mapping) and typed.get("kind") in KINDS:
            path = typed.get("path")
            return cls(typed["kind"], path if isinstance(path, str) else None)
        return cls.from_label(str(record.get("model_source") or ""), record.get("model_file"), record.get("weights"))

    @classmethod
    def from_label(cls, label: str, model_file: object = None, weights: object = None) -> ModelSource:
        """The source a display label names (with an older manifest's `model_file` and `weights`)."""
        if label.endswith(ONNX_LABEL):
            return cls("onnx", label[: -len(ONNX_LABEL)])
        if label.startswith("ONNX"):
            return cls("onnx")
        if label.startswith(MODULE_LABEL):
            return cls("module")
        if label.endswith(PT2_LABEL):
            return cls("pt2", label[: -len(PT2_LABEL)])
        if model_file:
            return cls("pt2", str(model_file))
        if WEIGHTS_LABEL in label:
            return cls("checkpoint", label.split(WEIGHTS_LABEL, 1)[1].removesuffix(")"))
        if weights:
            return cls("checkpoint", str(weights))
        return cls("reference")
