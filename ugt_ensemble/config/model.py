"""`UGTConfig`: the architecture of the reference UGT recommender, validated on construction."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ugt_ensemble.config.checks import require_positive_int
from ugt_ensemble.errors import ConfigError, InputFileError
from ugt_ensemble.runtime.contract import CODEBOOK_SIZES, EVENT_TYPES, NUM_RECOMMENDATIONS, NUM_TOKEN_TYPES


@dataclass(frozen=True)
class UGTConfig:
    """Sizes of the UGT model. The defaults serve quickly on 2 CPU cores.

    Attributes:
        codebook_sizes: vocabulary of each semantic-ID level.
        d_model: width of embeddings and hidden states.
        num_heads: attention heads; must divide `d_model`.
        num_layers: transformer encoder layers.
        ffn_dim: hidden width of the feed-forward blocks.
        max_seq_length: longest history (events) the encoder reads.
        num_token_types: token-type vocabulary (padding + event types).
        beam_size: beams kept per decoding step (>= `num_recommendations`).
        num_recommendations: items returned per request.
    """

    codebook_sizes: tuple[int, int, int] = CODEBOOK_SIZES
    d_model: int = 64
    num_heads: int = 4
    num_layers: int = 2
    ffn_dim: int = 256
    max_seq_length: int = 1024
    num_token_types: int = NUM_TOKEN_TYPES
    beam_size: int = 50
    num_recommendations: int = NUM_RECOMMENDATIONS

    def __post_init__(self) -> None:
        object.__setattr__(self, "codebook_sizes", tuple(int(v) for v in self.codebook_sizes))
        for name in ("d_model", "num_heads", "num_layers", "ffn_dim", "max_seq_length", "beam_size"):
            require_positive_int(name, getattr(self, name))
        if len(self.codebook_sizes) != 3 or min(self.codebook_sizes) < 1:
            raise ConfigError(f"`codebook_sizes` must be three positive ints, got {self.codebook_sizes}")
        if self.d_model % self.num_heads:
            raise ConfigError(f"`num_heads` ({self.num_heads}) must divide `d_model` ({self.d_model})")
        if self.num_token_types != NUM_TOKEN_TYPES:
            raise ConfigError(f"`num_token_types` must be {NUM_TOKEN_TYPES} (padding + {', '.join(EVENT_TYPES)})")
        require_positive_int("num_recommendations", self.num_recommendations)
        if self.beam_size < self.num_recommendations:
            raise ConfigError(
                f"`beam_size` ({self.beam_size}) must be >= `num_recommendations` ({self.num_recommendations})"
            )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (what `from_dict` and checkpoints read back)."""
        data = dataclasses.asdict(self)
        data["codebook_sizes"] = list(self.codebook_sizes)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "model config") -> UGTConfig:
        """Build from a dict; unknown keys and bad values raise `ConfigError` naming `source`."""
        if not isinstance(data, dict):
            raise ConfigError(f"{source}: expected a JSON object, got {type(data).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"{source}: unknown field(s) {unknown}; allowed: {sorted(known)}")
        try:
            return cls(**data)
        except (ConfigError, TypeError, ValueError) as exc:
            raise ConfigError(f"{source}: {exc}") from None

    @classmethod
    def from_json_file(cls, path: str | Path) -> UGTConfig:
        """Read a JSON model config; errors name the file."""
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise InputFileError(f"model config {path}: cannot read ({exc.strerror})") from None
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InputFileError(f"model config {path}: not valid JSON ({exc})") from None
        try:
            return cls.from_dict(data, source=f"model config {path}")
        except ConfigError as exc:
            raise InputFileError(str(exc)) from None
