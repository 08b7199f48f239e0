"""Checkpoints: `{"model_config": {...}, "state_dict": {...}}` or a bare state dict.

Always loaded with `torch.load(weights_only=True)`: a checkpoint can carry tensors and plain
containers, never code. Catalog tables are not part of a checkpoint; they come from the catalog.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ugt_ensemble.catalog.prefix_tables import PrefixTables
from ugt_ensemble.config.model import UGTConfig
from ugt_ensemble.errors import InputFileError
from ugt_ensemble.model.ugt import UGT

#: v2: the decoder's parameters live under `scorer.` (v1, under `decoder.`, predates the building block).
FORMAT = "ugt-ensemble/checkpoint-v2"
_MAX_LISTED = 5


def save_checkpoint(model: UGT, path: str | Path) -> None:
    """Write the model's weights and config so `load_checkpoint` can read them back."""
    torch.save(
        {"format": FORMAT, "model_config": model.config.to_dict(), "state_dict": model.state_dict()},
        path,
    )


def read_checkpoint(
    path: str | Path, model_config: UGTConfig | None = None
) -> tuple[UGTConfig, dict[str, torch.Tensor]]:
    """The config and weights of a checkpoint; `model_config` is needed for a bare state dict."""
    path = Path(path)
    payload = _torch_load(path)
    if isinstance(payload, dict) and "state_dict" in payload:
        state, embedded = payload["state_dict"], payload.get("model_config")
    else:
        state, embedded = payload, None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise InputFileError(f'checkpoint {path}: expected a state dict (name -> tensor) or a dict with "state_dict"')
    if isinstance(payload, dict) and payload.get("format") == "ugt-ensemble/checkpoint-v1":
        state = {("scorer." + k[len("decoder.") :] if k.startswith("decoder.") else k): v for k, v in state.items()}
    config = _resolve_config(path, embedded, model_config)
    return config, state


def load_checkpoint(path: str | Path, tables: PrefixTables, model_config: UGTConfig | None = None) -> UGT:
    """A UGT in eval mode with the checkpoint's weights and the catalog's constraint tables."""
    config, state = read_checkpoint(path, model_config)
    return model_from_state(config, tables, state, path)


def model_from_state(
    config: UGTConfig, tables: PrefixTables, state: dict[str, torch.Tensor], source: str | Path
) -> UGT:
    """A UGT in eval mode with weights `state` (read from `source`, named in errors)."""
    model = UGT(config, tables)
    _check_state(Path(source), model, state)
    model.load_state_dict(state, strict=True)
    return model.eval()


def _torch_load(path: Path) -> object:
    if not path.is_file():
        raise InputFileError(f"checkpoint {path}: no such file")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types for bad files
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputFileError(f"checkpoint {path}: not a weights-only PyTorch checkpoint ({first_line})") from None


def _resolve_config(path: Path, embedded: object, explicit: UGTConfig | None) -> UGTConfig:
    if embedded is None:
        if explicit is None:
            raise InputFileError(f"checkpoint {path}: holds no model config; pass one with --model-config FILE.json")
        return explicit
    try:
        config = UGTConfig.from_dict(embedded, source=f"checkpoint {path}: model_config")  # type: ignore[arg-type]
    except Exception as exc:  # noqa: BLE001 - ConfigError or a malformed dict
        raise InputFileError(str(exc)) from None
    if explicit is not None and explicit != config:
        raise InputFileError(
            f"checkpoint {path}: its model_config differs from the one given with --model-config; "
            "drop --model-config or make them agree"
        )
    return config


def _check_state(path: Path, model: UGT, state: dict[str, torch.Tensor]) -> None:
    expected = model.state_dict()
    problems = []
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing:
        problems.append(f"missing {len(missing)} tensor(s): {', '.join(missing[:_MAX_LISTED])}")
    if unexpected:
        problems.append(f"unexpected {len(unexpected)} tensor(s): {', '.join(unexpected[:_MAX_LISTED])}")
    wrong = [
        f"{name} {tuple(state[name].shape)} (model expects {tuple(t.shape)})"
        for name, t in expected.items()
        if name in state and state[name].shape != t.shape
    ]
    if wrong:
        problems.append(f"{len(wrong)} shape mismatch(es): {'; '.join(wrong[:_MAX_LISTED])}")
    if problems:
        raise InputFileError(f"checkpoint {path} does not fit the model config:\n  " + "\n  ".join(problems))
