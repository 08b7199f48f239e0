"""What each Triton model of the repository reads from its config.pbtxt `parameters`, typed.

One description per step, used both ways: `build` renders `to_config()` into the config, and the
Python-backend models, the benchmark and the deployment checks read it back with `from_config()`.
Values are strings in Triton's config; the field types say how to read them (int, float, bool, str,
tuple of ints). No field has a default here: the values come from the build configs, stated there once.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass, fields
from typing import Any, Mapping, TypeVar

from .errors import ConfigError, clip

P = TypeVar("P", bound="StepParameters")


@dataclass(frozen=True)
class StepParameters:
    """Base of the per-step parameter sets (see the module docstring)."""

    def to_config(self) -> dict[str, str]:
        """The `parameters` of the model's config.pbtxt (all string values)."""
        return {f.name: _render(getattr(self, f.name)) for f in fields(self)}

    @classmethod
    def from_config(cls: type[P], parameters: Mapping[str, str], source: str = "config.pbtxt") -> P:
        """Read them back; ConfigError naming `source` and the key if one is missing or malformed."""
        hints = typing.get_type_hints(cls)
        values: dict[str, Any] = {}
        for f in fields(cls):
            if f.name not in parameters:
                raise ConfigError(f"{source}: parameter {f.name!r} is missing (rebuild the repository)")
            try:
                values[f.name] = _parse(parameters[f.name], hints[f.name])
            except ValueError:
                shown = clip(repr(parameters[f.name]))
                raise ConfigError(f"{source}: parameter {f.name!r} is {shown}, not a {hints[f.name]}") from None
        return cls(**values)

    @classmethod
    def from_model_config(cls: type[P], model_config: Mapping[str, Any], source: str = "config.pbtxt") -> P:
        """From Triton's model config as JSON (`args["model_config"]` in a Python backend's initialize)."""
        raw = model_config.get("parameters", {})
        return cls.from_config({key: value["string_value"] for key, value in raw.items()}, source)


@dataclass(frozen=True)
class PreprocessParameters(StepParameters):
    catalog_file: str
    max_seq_length: int
    length_buckets: tuple[int, ...]
    max_request_bytes: int
    max_events: int
    #: The default of a request that does not say whether to drop the items of its history.
    exclude_history: bool
    #: Whether the model step honours the rules in its search (else a request using a rule is refused).
    rules_in_search: bool
    #: Most entries of one request's rule lists the model step takes (0: no bound; a TensorRT engine's profile
    #: has one, `ExportConfig.max_rule_list`): a request removing more items is refused.
    max_rule_list: int


@dataclass(frozen=True)
class ModelStepParameters(StepParameters):
    """The Python-backend model step (ONNX Runtime inside the Python backend)."""

    engine: str
    model_file: str
    #: The catalog folder whose constraint tables feed a model that honours the rules ("" when it does not).
    catalog_file: str
    intra_op_threads: int
    allow_spinning: bool
    memory_arena: bool
    max_batch_tokens: int
    #: Most catalog items one request's rules remove (`BuildConfig.rule_list_bound`): with the catalog's size,
    #: the bound on one row of the rule lists (`rule_lists.RuleListLimits`).
    max_rule_list: int
    #: Most rule-list entries (rows x widest list) per engine call, which bounds the engine's peak memory.
    max_rule_entries: int
    max_seq_length: int
    codebook_sizes: tuple[int, ...]
    num_token_types: int
    num_recommendations: int
    #: History length of the warm-up run inside `initialize` (0: none); see `model_step.warm_up`.
    warmup_length: int


@dataclass(frozen=True)
class PostprocessParameters(StepParameters):
    catalog_file: str
    num_recommendations: int
    #: As `ModelStepParameters.max_rule_list`: bounds one row of the rule lists postprocess is sent.
    max_rule_list: int


def _render(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return ",".join(map(str, value))
    return str(value)


def _parse(text: str, kind: Any) -> Any:
    if kind is bool:
        if text not in ("true", "false"):
            raise ValueError(text)
        return text == "true"
    if kind in (int, float, str):
        return kind(text)
    if typing.get_origin(kind) is tuple:
        return tuple(int(v) for v in text.split(",") if v.strip())
    raise TypeError(f"unsupported parameter type {kind}")
