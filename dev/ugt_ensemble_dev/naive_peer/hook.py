"""The naive peer as a build hook: what `build --naive-peer` (`TritonConfig.naive_peer`) writes beside the ensemble.

The product finds `NAIVE_PEER` through the entry point group `ugt_ensemble.naive_peer` (dev/pyproject.toml) and
asks it for the peer's model.py, its config.pbtxt and its checkpoint; the catalog is written by the product, as
for every Python-backend model of the repository.
"""

from __future__ import annotations

import importlib.resources
from importlib.resources.abc import Traversable
from pathlib import Path

import torch

from ugt_ensemble.config import BuildConfig
from ugt_ensemble.errors import ConfigError
from ugt_ensemble.repository import specs
from ugt_ensemble.repository.render import render_template
from ugt_ensemble.runtime.contract import CATALOG_FILE, CHECKPOINT_FILE
from ugt_ensemble_dev.naive_peer.parameters import NaivePeerParameters

PACKAGE = "ugt_ensemble_dev.naive_peer"


class NaivePeerHook:
    """The naive peer: one Python model running the reference UGT eagerly, request by request."""

    def model_source(self) -> Traversable:
        """The peer's model.py (a Triton Python-backend model that imports the installed packages)."""
        return importlib.resources.files(PACKAGE) / "model.py"

    def render_config(self, config: BuildConfig) -> str:
        """The peer's config.pbtxt: HISTORY in, the ensemble's outputs out, no dynamic batching."""
        t, export = config.triton, config.export
        threads = t.model_step.intra_op_threads
        parameters = NaivePeerParameters(CATALOG_FILE, CHECKPOINT_FILE, export.max_seq_length, threads)
        return render_template(
            "naive_peer.pbtxt.j2",
            template_dirs=(str(importlib.resources.files(PACKAGE)),),
            name=t.naive_peer_name,
            max_batch_size=export.max_batch_size,
            inputs=(specs.HISTORY_INPUT,),
            outputs=specs.recommendation_outputs(export.num_recommendations),
            instances=1,
            parameters=parameters.to_config(),
        )

    def write_checkpoint(self, folder: Path, model: torch.nn.Module | None) -> None:
        """The reference UGT's checkpoint in the peer's version `folder`; ConfigError for any other model."""
        from ugt_ensemble.model.checkpoint import save_checkpoint
        from ugt_ensemble.model.ugt import UGT

        if not isinstance(model, UGT):
            raise ConfigError("the naive peer (--naive-peer) runs the reference UGT; leave it out for another model")
        save_checkpoint(model, folder / CHECKPOINT_FILE)


NAIVE_PEER = NaivePeerHook()
