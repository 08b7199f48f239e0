"""A 1M-item catalog switched live under concurrency-8 traffic, data only: items added and removed, no torch
export and no engine build (the new version serves a copy of the same ONNX file), 0 failed requests, new
items served right after the switch, removed items never after it."""

import filecmp
import json
import os
import time

import numpy as np
import pytest

from ugt_ensemble.build import build_repository
from ugt_ensemble.catalog import synthetic_catalog
from ugt_ensemble.client import RecommendClient, with_rules
from ugt_ensemble.config import BuildConfig, ExportConfig, TritonConfig
from ugt_ensemble.histories import history_json, random_history
from ugt_ensemble.server import TritonServer
from ugt_ensemble.server.context import EXPLICIT_ARGS
from ugt_ensemble.serving.rollout import Rollout
from ugt_ensemble_dev.bench.rules_catalogs import new_items, write_catalog_csv
from ugt_ensemble_dev.traffic import Traffic

ITEMS = 1_000_000
REMOVED, ADDED = 50_000, 20_000
SEED = 6


@pytest.fixture(scope="module")
def switch(tmp_path_factory, tiny_config):
    folder = tmp_path_factory.mktemp("switch")
    catalog = synthetic_catalog(ITEMS, seed=SEED)
    write_catalog_csv(folder / "a.csv", catalog.item_ids, catalog.codes, np.zeros(ITEMS, dtype=bool), "new")
    rng = np.random.default_rng(SEED)
    removed = rng.choice(catalog.item_ids, REMOVED, replace=False)
    kept = ~np.isin(catalog.item_ids, removed)
    new_ids, new_codes = new_items(catalog, ADDED, rng)  # in existing clusters: within the caps
    write_catalog_csv(
        folder / "b.csv",
        np.concatenate([catalog.item_ids[kept], new_ids]),
        np.concatenate([catalog.codes[kept], new_codes]),
        np.r_[np.zeros(kept.sum(), dtype=bool), np.ones(ADDED, dtype=bool)],
        "new",
    )
    export = ExportConfig(precision="fp32", max_seq_length=64, validation_shapes=((1, 1), (2, 16)),
                          catalog_path=folder / "a.csv", set_columns=("new",))  # fmt: skip
    config = BuildConfig(output_dir=folder / "repo", model_config=tiny_config, seed=SEED, export=export,
                         triton=TritonConfig.cpu())  # fmt: skip
    build_repository(config)
    return folder, catalog, set(removed.tolist()), set(new_ids.tolist())


def test_a_1m_item_catalog_switches_live_data_only_with_no_failed_request(switch):
    folder, catalog, removed, added = switch
    rng = np.random.default_rng(1)
    histories = [history_json(random_history(catalog.item_ids, int(n), rng)) for n in rng.integers(0, 60, 64)]
    root = folder / "repo"
    serving = TritonServer(root, ready_models=["ugt_recommend"], extra_args=EXPLICIT_ARGS, log_path=folder / "log")
    with serving as server:
        with Traffic(server.grpc_url, "ugt_recommend", histories, concurrency=8) as traffic:
            time.sleep(2)
            start = time.perf_counter()
            assert Rollout(root, server.grpc_url, server.operator_key).deploy({}, folder / "b.csv") == 2
            seconds, switched = time.perf_counter() - start, time.monotonic()
            time.sleep(3)
        answers = traffic.stop()
        print(f"data-only switch of a {ITEMS}-item catalog: {seconds:.1f} s")
        assert traffic.failures == [], traffic.failures[:3]
        assert len([a for a in answers if a.sent < switched - seconds]) > 20 and len(answers) > 100
        after = [a for a in answers if a.sent > switched]
        assert after and not removed & {int(i) for a in after for i in a.item_ids}
        with RecommendClient(server.grpc_url) as client:
            documents = [json.dumps(with_rules(json.loads(h), sets=["new"])) for h in histories[:16]]
            fresh = client.recommend_results(documents)
            plain = client.recommend_results(histories)
        for answer in fresh:
            assert answer.ok, answer.error
            assert len(answer.items()) == 50 and {i for i, _ in answer.items()} <= added
        assert not removed & {i for answer in plain for i, _ in answer.items()}
    model = root / "ugt_trt" / "{}" / "model.onnx"
    assert filecmp.cmp(str(model).format(1), str(model).format(2), shallow=False)  # no export: the same bytes
    assert os.stat(str(model).format(1)).st_ino != os.stat(str(model).format(2)).st_ino  # the served file untouched
