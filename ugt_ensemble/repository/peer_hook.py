"""The benchmark's naive peer, when a build asks for it (`TritonConfig.naive_peer`, `build --naive-peer`).

The peer is development tooling: the development package (dev/, distribution ugt-ensemble-dev) provides it
through the entry point group `ugt_ensemble.naive_peer`, with its model.py, config.pbtxt and checkpoint. A
build looks it up only when its config asks for the peer, so the product builds and serves without that package.
"""

from __future__ import annotations

import importlib.metadata
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from ugt_ensemble.errors import MissingDependencyError

if TYPE_CHECKING:
    import torch

    from ugt_ensemble.config import BuildConfig

#: The entry point group that provides the naive peer.
GROUP = "ugt_ensemble.naive_peer"
INSTALL = "pip install -e dev/ (or bash scripts/setup.sh)"


class NaivePeer(Protocol):
    """What a build needs of the naive peer (the catalog it writes itself, as for every Python model)."""

    def model_source(self) -> Traversable: ...

    def render_config(self, config: BuildConfig) -> str: ...

    def write_checkpoint(self, folder: Path, model: torch.nn.Module | None) -> None: ...


def naive_peer() -> NaivePeer:
    """The installed naive peer; MissingDependencyError naming the install when the development package is absent."""
    missing = MissingDependencyError(
        f"the naive peer (build --naive-peer) comes with the development package ugt-ensemble-dev: {INSTALL}"
    )
    found = list(importlib.metadata.entry_points(group=GROUP))
    if not found:
        raise missing
    try:
        return found[0].load()
    except ModuleNotFoundError:
        raise missing from None
