import numpy as np
import pytest
import torch

from ugt_ensemble.catalog import synthetic_catalog
from ugt_ensemble.config import UGTConfig
from ugt_ensemble.errors import ConfigError, InputFileError
from ugt_ensemble.histories import random_encoder_batch
from ugt_ensemble.model.checkpoint import load_checkpoint, save_checkpoint
from ugt_ensemble.model.ugt import build_model
from ugt_ensemble.runtime.contract import ENCODER_INPUTS


def _run(model, feed):
    with torch.no_grad():
        codes, scores = model(*(torch.from_numpy(feed[n]) for n in ENCODER_INPUTS))
    return codes.numpy(), scores.numpy()


def test_every_recommendation_is_a_distinct_catalog_item(catalog, index, tiny_model, rng):
    codes, scores = _run(tiny_model, random_encoder_batch(index, 6, 40, rng))
    known = set(map(tuple, catalog.codes.tolist()))
    assert codes.shape == (6, 50, 3) and scores.shape == (6, 50)
    for row_codes, row_scores in zip(codes, scores):
        triples = list(map(tuple, row_codes.tolist()))
        assert set(triples) <= known and len(set(triples)) == 50
        assert np.all(np.diff(row_scores) <= 0) and np.all(row_scores < 0)


def test_tiny_catalog_pads_with_minus_one_and_minus_inf(rng, tiny_config):
    small = synthetic_catalog(7, seed=2)
    model = build_model(tiny_config, small.prefix_tables(), seed=0)
    codes, scores = _run(model, random_encoder_batch(small.index(), 2, 5, rng))
    assert np.isfinite(scores[:, :7]).all() and np.isneginf(scores[:, 7:]).all()
    assert (codes[:, 7:] == -1).all()
    assert {tuple(c) for c in codes[0, :7].tolist()} == set(map(tuple, small.codes.tolist()))


def test_prefix_tables_list_exactly_the_catalog_children(catalog):
    tables = catalog.prefix_tables()
    l1, l2, _ = catalog.codes[0]
    expected_l2 = sorted(set(catalog.codes[catalog.codes[:, 0] == l1, 1].tolist()))
    assert tables.children_codes(l1).tolist() == expected_l2
    rows = (catalog.codes[:, 0] == l1) & (catalog.codes[:, 1] == l2)
    assert tables.children_codes(l1, l2).tolist() == sorted(catalog.codes[rows, 2].tolist())
    assert tables.l1_valid.sum() == len(np.unique(catalog.codes[:, 0]))


def test_seeded_initialisation_is_deterministic(catalog, tiny_config):
    a = build_model(tiny_config, catalog.prefix_tables(), seed=5).state_dict()
    b = build_model(tiny_config, catalog.prefix_tables(), seed=5).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_checkpoint_round_trip(tmp_path, catalog, tiny_model, index, rng):
    path = tmp_path / "ugt.pt"
    save_checkpoint(tiny_model, path)
    loaded = load_checkpoint(path, catalog.prefix_tables())
    feed = random_encoder_batch(index, 2, 10, rng)
    assert np.array_equal(_run(loaded, feed)[0], _run(tiny_model, feed)[0])


def test_bare_state_dict_needs_a_model_config(tmp_path, catalog, tiny_model, tiny_config):
    path = tmp_path / "bare.pt"
    torch.save(tiny_model.state_dict(), path)
    with pytest.raises(InputFileError, match="holds no model config; pass one with --model-config"):
        load_checkpoint(path, catalog.prefix_tables())
    assert load_checkpoint(path, catalog.prefix_tables(), tiny_config).config == tiny_config


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"not a checkpoint", "not a weights-only PyTorch checkpoint"),
        ({"state_dict": {"x": torch.zeros(1)}, "model_config": "TINY"}, "missing .* tensor"),
        ({"state_dict": {}, "model_config": {"d_model": -1}}, "d_model"),
        ({"state_dict": {}, "model_config": {"colour": 1}}, "unknown field"),
        ([1, 2, 3], "expected a state dict"),
    ],
)
def test_bad_checkpoints_name_the_file(tmp_path, catalog, tiny_config, payload, message):
    path = tmp_path / "bad.pt"
    if isinstance(payload, dict) and payload.get("model_config") == "TINY":
        payload = {**payload, "model_config": tiny_config.to_dict()}
    if isinstance(payload, bytes):
        path.write_bytes(payload)
    else:
        torch.save(payload, path)
    with pytest.raises(InputFileError, match=message) as info:
        load_checkpoint(path, catalog.prefix_tables())
    assert str(path) in str(info.value)


def test_checkpoint_with_code_is_refused(tmp_path, catalog, tiny_config):
    path = tmp_path / "evil.pt"
    torch.save({"state_dict": {}, "model_config": tiny_config.to_dict(), "hook": np.random.default_rng}, path)
    with pytest.raises(InputFileError, match="not a weights-only"):
        load_checkpoint(path, catalog.prefix_tables())


def test_shape_mismatch_is_reported(tmp_path, catalog, tiny_model, tiny_config):
    state = dict(tiny_model.state_dict())
    state["scorer.head1.bias"] = torch.zeros(3)
    path = tmp_path / "shape.pt"
    torch.save({"state_dict": state, "model_config": tiny_config.to_dict()}, path)
    with pytest.raises(InputFileError, match=r"scorer.head1.bias \(3,\) \(model expects \(1024,\)\)"):
        load_checkpoint(path, catalog.prefix_tables())


@pytest.mark.parametrize(
    ("fields", "message"),
    [({"num_heads": 3}, "must divide"), ({"beam_size": 10}, "beam_size"), ({"num_recommendations": 0}, "positive")],
)
def test_model_config_validation(fields, message):
    with pytest.raises(ConfigError, match=message):
        UGTConfig(**fields)


def test_model_config_file_errors_name_the_file(tmp_path):
    path = tmp_path / "model.json"
    path.write_text("{not json")
    with pytest.raises(InputFileError, match=f"model config {path}: not valid JSON"):
        UGTConfig.from_json_file(path)
    path.write_text('{"d_model": 48, "num_heads": 5}')
    with pytest.raises(InputFileError, match="num_heads"):
        UGTConfig.from_json_file(path)
