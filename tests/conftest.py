"""Shared fixtures. Unit tests need no server; tests/integration starts a real tritonserver."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from ugt_ensemble.catalog import Catalog, synthetic_catalog
from ugt_ensemble.config import UGTConfig
from ugt_ensemble.model.ugt import build_model

#: The worked example's recommender (a model the package has never seen) is importable as `recommender`.
sys.path.insert(0, str(Path(__file__).parents[1] / "examples" / "bring_your_own_model"))

#: A model small enough that export and validation take seconds.
TINY_MODEL = UGTConfig(d_model=32, num_heads=2, num_layers=1, ffn_dim=64, max_seq_length=128)


@pytest.fixture(scope="session")
def catalog() -> Catalog:
    return synthetic_catalog(2_000, seed=3)


@pytest.fixture(scope="session")
def index(catalog: Catalog):
    return catalog.index()


@pytest.fixture(scope="session")
def tiny_config() -> UGTConfig:
    return TINY_MODEL


@pytest.fixture(scope="session")
def tiny_model(catalog: Catalog):
    return build_model(TINY_MODEL, catalog.prefix_tables(), seed=1)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)
