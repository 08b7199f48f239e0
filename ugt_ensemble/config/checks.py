"""Value checks shared by the config classes; each raises ConfigError naming the field in backticks."""

from __future__ import annotations

import re
from typing import Iterable

from ugt_ensemble.errors import ConfigError
from ugt_ensemble.runtime.errors import clip

#: Model names: what Triton, file systems, URLs and Kubernetes labels all accept.
MODEL_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
MAX_MODEL_NAME = 64


def require_model_name(name: object) -> str:
    """`name` if it is a valid model name, else ConfigError saying what is allowed."""
    if not isinstance(name, str) or not MODEL_NAME.fullmatch(name) or len(name) > MAX_MODEL_NAME:
        raise ConfigError(
            f"model name {clip(repr(name), 80)} must be 1-{MAX_MODEL_NAME} ASCII characters from [A-Za-z0-9_.-], "
            "not starting with '.' or '-'"
        )
    return name


def require_positive_int(name: str, value: object) -> None:
    """ConfigError unless `value` is an int >= 1 (bools are not ints here)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"`{name}` must be a positive int, got {value!r}")


def require_non_negative_int(name: str, value: object) -> None:
    """ConfigError unless `value` is an int >= 0."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"`{name}` must be an int >= 0, got {value!r}")


def require_one_of(name: str, value: object, allowed: Iterable[str]) -> None:
    allowed = tuple(allowed)
    if value not in allowed:
        raise ConfigError(f"`{name}` must be one of {', '.join(allowed)}; got {value!r}")


def int_tuple(name: str, values: object, low: int = 1) -> tuple[int, ...]:
    """`values` as a tuple of ints >= `low` (a single int is a one-element tuple)."""
    items = (values,) if isinstance(values, int) and not isinstance(values, bool) else values
    try:
        result = tuple(items)  # type: ignore[arg-type]
    except TypeError:
        raise ConfigError(f"`{name}` must be ints, got {values!r}") from None
    if any(isinstance(v, bool) or not isinstance(v, int) or v < low for v in result):
        raise ConfigError(f"`{name}` must be ints >= {low}, got {values!r}")
    return result
