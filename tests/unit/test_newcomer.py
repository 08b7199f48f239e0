"""A newcomer's own model: contract mismatches caught before export with the flag or field to change,
CandidateHead initialised and composable with PerLevelScorer, the catalog-restricted training loss, and
the model-step warm-up that follows the loaded max_batch_size."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from step_models import RepeatingCodes

from ugt_ensemble.build import build_repository
from ugt_ensemble.catalog import synthetic_catalog
from ugt_ensemble.config import BuildConfig, ExportConfig, TritonConfig
from ugt_ensemble.errors import ConfigError, StepContractError
from ugt_ensemble.histories import random_encoder_batch
from ugt_ensemble.model.constrained import CandidateHead, ConstrainedRecommender, PerLevelScorer
from ugt_ensemble.model.sources import save_step_model
from ugt_ensemble.model.training import CatalogCandidates, catalog_loss, level_log_probs
from ugt_ensemble.repository.render import render_configs
from ugt_ensemble.repository.rules import parse_config
from ugt_ensemble.runtime.contract import ENCODER_INPUTS, PAD_ITEM_ID
from ugt_ensemble.runtime.parameters import ModelStepParameters

sys.path.insert(0, str(Path(__file__).parents[2] / "examples" / "train_your_own"))
from model import make_recommender  # noqa: E402 - the example's model, a module the package has never seen

FAST = dict(precision="fp32", validation_shapes=((1, 1),))


def _build(tmp_path, model, catalog, **export) -> None:
    config = BuildConfig(
        output_dir=tmp_path / "ensemble", export=ExportConfig(**{**FAST, **export}), triton=TritonConfig.cpu()
    )
    build_repository(config, model=model, catalog=catalog)


class MeanEncoder(torch.nn.Module):
    """The mean of the events' level-1 embeddings (a deliberately small encoder)."""

    def __init__(self, d_model: int = 16) -> None:
        super().__init__()
        self.embed = torch.nn.Embedding(1024, d_model)

    def forward(self, l1, l2, l3, positions, token_types, mask):  # noqa: ANN001, ANN201 - the step contract
        return (self.embed(l1) * mask.unsqueeze(-1)).sum(1) / mask.sum(1, keepdim=True).clamp(min=1)


class SmallVocabulary(MeanEncoder):
    """Reads level-3 codes through a table of 8192 rows while the codebook has 16384."""

    def __init__(self) -> None:
        super().__init__()
        self.l3 = torch.nn.Embedding(8192, 16)

    def forward(self, l1, l2, l3, positions, token_types, mask):  # noqa: ANN001, ANN201
        return super().forward(l1, l2, l3, positions, token_types, mask) + self.l3(l3).mean(1)


def heads_only(catalog, encoder: torch.nn.Module, d_model: int = 16) -> ConstrainedRecommender:
    tables = catalog.prefix_tables()
    scorer = PerLevelScorer(
        CandidateHead(1024, d_model, 1024),
        CandidateHead(4096, d_model, tables.max_l2_children),
        CandidateHead(16384, d_model, tables.max_l3_children),
    )
    return ConstrainedRecommender(encoder, scorer, tables).eval()


@pytest.fixture(scope="module")
def small_catalog():
    return synthetic_catalog(300, seed=4)


def test_a_position_table_shorter_than_the_max_length_names_the_flag_before_export(tmp_path, small_catalog):
    model = make_recommender(small_catalog, d_model=16, max_length=32)
    with pytest.raises(StepContractError) as caught:
        _build(tmp_path, model, small_catalog, max_seq_length=64)  # was a raw IndexError: index out of range
    message = str(caught.value)
    assert "--max-seq-length" in message and "ExportConfig.max_seq_length" in message
    assert "`encoder.position` is Embedding(32, 16)" in message and "64 events" in message
    assert not (tmp_path / "ensemble").exists()


def test_a_pt2_with_a_shorter_sequence_axis_names_the_flag(tmp_path, small_catalog):
    model = make_recommender(small_catalog, d_model=16, max_length=32)
    path = save_step_model(model, tmp_path / "model.pt2", small_catalog.index(), max_batch_size=8, max_seq_length=32)
    config = BuildConfig(
        output_dir=tmp_path / "ensemble",
        model_file=path,
        export=ExportConfig(**FAST, catalog_path=None, max_batch_size=8, max_seq_length=64),
        triton=TritonConfig.cpu(),
    )
    with pytest.raises(StepContractError, match=r"--max-seq-length 32, ExportConfig.max_seq_length"):
        build_repository(config, catalog=small_catalog)


def test_a_vocabulary_smaller_than_the_codebook_names_the_flag(tmp_path, small_catalog):
    with pytest.raises(StepContractError, match=r"code 16383, the last of level 3.*--codebook-sizes \(ExportConfig"):
        _build(tmp_path, heads_only(small_catalog, SmallVocabulary()), small_catalog, max_seq_length=16)


def test_a_different_k_names_the_flag(tmp_path, small_catalog):
    class TwentyItems(RepeatingCodes):
        def forward(self, *inputs):  # noqa: ANN002, ANN201
            codes, scores = super().forward(*inputs)
            return codes[:, :20], scores[:, :20]

    with pytest.raises(StepContractError, match=r"--num-recommendations 20 \(ExportConfig.num_recommendations\)"):
        _build(tmp_path, TwentyItems(small_catalog.codes), small_catalog, max_seq_length=16)


def test_candidate_head_is_initialised_not_uninitialised_memory():
    torch.manual_seed(0)
    weight = CandidateHead(4096, 64, 100).weight.detach()
    assert torch.isfinite(weight).all()
    assert 0.8 < float(weight.std()) * 64**0.5 < 1.2  # N(0, 1/d): unit-scale logits for unit-scale states


def test_candidate_heads_compose_with_per_level_scorer(small_catalog):
    model = heads_only(small_catalog, MeanEncoder())  # was TypeError: forward() takes 3 positional arguments
    feed = random_encoder_batch(small_catalog.index(), 3, 12, np.random.default_rng(0))
    with torch.no_grad():
        codes, scores = model(*(torch.from_numpy(feed[name]) for name in ENCODER_INPUTS))
    items = small_catalog.index().items_of(codes.numpy())
    assert codes.shape == (3, 50, 3) and (items != PAD_ITEM_ID).all()
    assert all(len(set(row)) == 50 for row in items.tolist())


def test_the_training_loss_is_the_served_distribution(small_catalog):
    model = make_recommender(small_catalog, d_model=16, max_length=16).eval()
    candidates = CatalogCandidates(small_catalog.prefix_tables())
    batch = random_encoder_batch(small_catalog.index(), 4, 8, np.random.default_rng(1))
    feed = {name: torch.from_numpy(tensor) for name, tensor in batch.items()}
    with torch.no_grad():
        user = model.encoder(*(feed[name] for name in ENCODER_INPUTS))
        codes, scores = model.decode(user)
        logp = level_log_probs(model.scorer, user, codes[:, 0], candidates)
    assert torch.allclose(logp.sum(dim=1), scores[:, 0], atol=1e-5)  # the best item's score, level by level
    with pytest.raises(ConfigError, match="not a catalog item"):
        level_log_probs(model.scorer, user, torch.full((4, 3), 1023), candidates)


def test_the_training_loss_goes_down(small_catalog):
    model = make_recommender(small_catalog, d_model=16, max_length=16)
    candidates = CatalogCandidates(small_catalog.prefix_tables())
    feed = random_encoder_batch(small_catalog.index(), 32, 8, np.random.default_rng(2))
    inputs = [torch.from_numpy(feed[name]) for name in ENCODER_INPUTS]
    targets = torch.from_numpy(small_catalog.codes[np.arange(32) % 5])
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(15):
        loss = catalog_loss(model, candidates, *inputs, targets)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.5 * losses[0]


def test_the_python_model_step_warms_itself_up_and_native_steps_keep_triton_samples():
    config = BuildConfig(export=ExportConfig(precision="fp32"), triton=TritonConfig.cpu())
    step = parse_config(render_configs(config)["ugt_trt"], "ugt_trt")
    assert len(step.model_warmup) == 0  # a Triton sample of batch 64 failed any config with max_batch_size < 64
    params = ModelStepParameters.from_config({k: v.string_value for k, v in step.parameters.items()})
    assert params.warmup_length == 128
    quiet = BuildConfig(export=ExportConfig(precision="fp32"), triton=TritonConfig.cpu(warmup=False))
    assert "warmup_length" in render_configs(quiet)["ugt_trt"] and '"0"' in render_configs(quiet)["ugt_trt"]


def test_the_warm_up_follows_the_loaded_max_batch_size():
    from ugt_ensemble.runtime.model_step import warm_up

    seen = []

    def record(requests):  # noqa: ANN001, ANN202
        seen.append([r["encoder_l1_ids"].shape for r in requests])
        return []

    warm_up(record, {"max_batch_size": 1}, 128)  # Model Analyzer's candidate with max_batch_size 1
    warm_up(record, {"max_batch_size": 64}, 128)
    warm_up(record, {"max_batch_size": 64}, 0)  # --no-warmup
    assert seen == [[(1, 128)], [(1, 128)], [(64, 128)]]
