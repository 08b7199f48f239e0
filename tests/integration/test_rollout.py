"""Versions in production: a rollout and a rollback under concurrent load, with two catalogs that differ;
no request fails and no answer mixes versions; an A/B variant serves the other version beside it."""

import time

import numpy as np
import pytest
import tritonclient.grpc as grpcclient

from ugt_ensemble.build import build_repository
from ugt_ensemble.catalog import Catalog, save_catalog_csv, synthetic_catalog
from ugt_ensemble.client import LocalPipeline, RecommendClient
from ugt_ensemble.config import BuildConfig, ExportConfig, TritonConfig
from ugt_ensemble.export.compare import ranked_mismatches
from ugt_ensemble.histories import history_json, random_history
from ugt_ensemble.model.ugt import build_model
from ugt_ensemble.server import TritonServer
from ugt_ensemble.server.context import EXPLICIT_ARGS
from ugt_ensemble.serving.metrics import model_stats, scrape
from ugt_ensemble.serving.rollout import ModelVersionManager, Rollout
from ugt_ensemble.serving.variants import ABTestingRouter, add_variant
from ugt_ensemble_dev.traffic import Traffic, switches

EXPLICIT = EXPLICIT_ARGS  # explicit model control, as serve runs it
SEED = 4


@pytest.fixture(scope="module")
def catalogs():
    a = synthetic_catalog(1500, seed=SEED)
    permuted = np.random.default_rng(1).permutation(len(a))  # same item ids, other codes
    return a, Catalog.from_arrays(a.item_ids, a.codes[permuted], a.codebook_sizes, "catalog B")


@pytest.fixture(scope="module")
def repository(tmp_path_factory, catalogs, tiny_config):
    a, _ = catalogs
    root = tmp_path_factory.mktemp("versions")
    config = BuildConfig(
        output_dir=root / "repo",
        model_config=tiny_config,
        seed=SEED,
        export=ExportConfig(precision="fp32", max_seq_length=128, validation_shapes=((1, 1), (4, 64))),
        triton=TritonConfig.cpu(),
    )
    build_repository(config, catalog=a)
    return config


def _same(want, item_ids, scores) -> bool:
    return not ranked_mismatches(want.item_ids[None], want.scores[None], item_ids[None], scores[None], 1e-4)


def _label(answer, references) -> str:
    """Which version's in-process reference the answer equals ("mixed" for none)."""
    matches = [
        name for name, expected in references.items() if _same(expected[answer.history], answer.item_ids, answer.scores)
    ]
    return matches[0] if matches else "mixed"


def test_rollout_and_rollback_under_load_fail_nothing_and_never_mix(tmp_path, repository, catalogs, tiny_config):
    a, b = catalogs
    save_catalog_csv(b, tmp_path / "b.csv")
    rng = np.random.default_rng(5)
    histories = [history_json(random_history(a.item_ids, int(n), rng)) for n in rng.integers(0, 100, 40)]
    references = {}
    for name, catalog in (("A", a), ("B", b)):
        model = build_model(tiny_config, catalog.prefix_tables(), SEED)
        references[name] = LocalPipeline(model, catalog.index(), repository.packing).recommend(histories)
    root = repository.output_dir
    with TritonServer(root, ready_models=["ugt_recommend"], extra_args=EXPLICIT, log_path=tmp_path / "log") as server:
        with Traffic(server.grpc_url, "ugt_recommend", histories, concurrency=8) as traffic:
            time.sleep(2)
            rollout = Rollout(root, server.grpc_url, server.operator_key)
            assert rollout.deploy({}, tmp_path / "b.csv") == 2
            time.sleep(3)
            assert rollout.rollback() == 1
            time.sleep(3)
        answers = traffic.stop()
        assert len(answers) > 200 and traffic.failures == [], traffic.failures[:3]
        labels = [_label(answer, references) for answer in answers]
        assert "mixed" not in labels
        assert switches(labels) == ["A", "B", "A"]  # by send time: one switch each way, no back and forth

        add_variant(root, "ugt_recommend_b", 2)
        Rollout(root, server.grpc_url, server.operator_key).load("ugt_recommend_b")
        router = ABTestingRouter("ugt_recommend", "ugt_recommend_b", traffic_split=0.5)
        with RecommendClient(server.grpc_url, router=router) as client:
            for user in range(6):
                got = client.recommend_one(histories[1], user_id=user)
                variant = "B" if router.route(user) == "ugt_recommend_b" else "A"
                assert got.ok and _same(references[variant][1], got.item_ids, got.scores), (user, variant)
            users = list(range(6, 14))
            for user, got in zip(users, client.recommend([histories[1]] * len(users), user_ids=users)):
                variant = "B" if router.route(user) == "ugt_recommend_b" else "A"
                assert got.ok and _same(references[variant][1], got.item_ids, got.scores), (user, variant)
        with grpcclient.InferenceServerClient(server.grpc_url) as raw:
            assert raw.is_model_ready("ugt_recommend_b")
        sent_b = sum(router.route(u) == "ugt_recommend_b" for u in range(14))
        stats = {s.model: s for s in model_stats(scrape(server.metrics_url), ["ugt_recommend", "ugt_recommend_b"])}
        assert stats["ugt_recommend_b"].success == sent_b and stats["ugt_recommend_b"].failure == 0, stats
        assert stats["ugt_recommend"].success >= 14 - sent_b, stats  # at least variant A's, since its last reload


def test_cleanup_keeps_the_served_version_and_the_seeds_manager_drives_the_same(tmp_path, repository):
    root = repository.output_dir
    manager = ModelVersionManager(root)
    with pytest.raises(Exception, match="serves the ensemble 'ugt_recommend'"):
        manager.rollback("other", 1)
    rollout = Rollout(root)
    assert rollout.repo.pinned() == 1 and rollout.repo.numbers() == [1, 2]
    manager.cleanup_old_versions("ugt_recommend", keep=1)  # keeps 2 (newest) and 1 (served)
    assert Rollout(root).repo.numbers() == [1, 2]
    manager.rollback("ugt_recommend", 2)
    assert Rollout(root).cleanup(keep=1) == [1] and Rollout(root).repo.numbers() == [2]
