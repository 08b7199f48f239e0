"""Data-only versions on a real server, for the reference UGT (it honours the rules in its search): a new catalog
(items added and removed) and new item sets are deployed in seconds with no export (the new version's model.onnx
holds the served one's bytes, in a file of its own: the served version's files and stubs are left as they are),
served right after the switch, removed items never after it; a version records its item sets, and a later catalog
deploy keeps the served version's sets, not the build's.

The tests share one server and repository and run in file order: version 2 is catalog B, version 3 changes the
set "fresh" and drops "new" (CLI, no catalog: refused, then --allow-set-changes), version 4 is catalog C with
version 3's sets.
"""

import filecmp
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import tritonclient.grpc as grpcclient

from ugt_ensemble.build import build_repository
from ugt_ensemble.catalog import Catalog, synthetic_catalog
from ugt_ensemble.client import RecommendClient, with_rules
from ugt_ensemble.client.grpc_client import history_tensor
from ugt_ensemble.config import BuildConfig, ExportConfig, TritonConfig
from ugt_ensemble.histories import history_json, random_history
from ugt_ensemble.server import TritonServer
from ugt_ensemble.server.context import EXPLICIT_ARGS
from ugt_ensemble.server.stubs import stubs_of
from ugt_ensemble.serving.rollout import Rollout
from ugt_ensemble.serving.version_sets import RECORD_KEY
from ugt_ensemble.serving.versions import VersionedRepository
from ugt_ensemble_dev.bench.rules_catalogs import write_catalog_csv
from ugt_ensemble_dev.traffic import Traffic

ITEMS, REMOVED, ADDED = 3_000, 300, 200
SEED = 8
ROOT = Path(__file__).parents[2]
MODEL = "ugt_trt/{}/model.onnx"


def _write(path: Path, item_ids: np.ndarray, codes: np.ndarray, new: np.ndarray) -> None:
    write_catalog_csv(path, item_ids, codes, new, "new")


def _write_ids(path: Path, item_ids) -> set[int]:
    path.write_text("\n".join(map(str, item_ids)) + "\n")
    return {int(i) for i in item_ids}


def _new_items(catalog: Catalog, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """ADDED items with ids above the catalog's and code triples no item has, one below each of ADDED (l1, l2)
    pairs that hold one item (so that the fan-outs stay within the model's caps)."""
    pairs, counts = np.unique(catalog.codes[:, :2], axis=0, return_counts=True)
    chosen = pairs[rng.choice(np.flatnonzero(counts == 1), ADDED, replace=False)]
    codes = np.column_stack([chosen, rng.integers(0, catalog.codebook_sizes[2], ADDED)])
    known = {tuple(c) for c in catalog.codes.tolist()}
    assert not known & {tuple(c) for c in codes.tolist()}
    return np.arange(ADDED, dtype=np.int64) + int(catalog.item_ids.max()) + 1, codes


@pytest.fixture(scope="module")
def served(tmp_path_factory, tiny_config):
    folder = tmp_path_factory.mktemp("data_versions")
    catalog = synthetic_catalog(ITEMS, seed=SEED)
    _write(folder / "a.csv", catalog.item_ids, catalog.codes, np.zeros(ITEMS, dtype=bool))
    rng = np.random.default_rng(SEED)
    fresh = _write_ids(folder / "fresh1.txt", rng.choice(catalog.item_ids, 80, replace=False))
    export = ExportConfig(
        precision="fp32", max_seq_length=64, validation_shapes=((1, 1), (2, 16)), catalog_path=folder / "a.csv",
        set_columns=("new",), item_sets=(("fresh", folder / "fresh1.txt"),),
    )  # fmt: skip
    config = BuildConfig(output_dir=folder / "repo", model_config=tiny_config, seed=SEED, export=export,
                         triton=TritonConfig.cpu())  # fmt: skip
    build_repository(config)
    histories = [history_json(random_history(catalog.item_ids, int(n), rng)) for n in rng.integers(0, 40, 32)]
    log, repo = folder / "tritonserver.log", folder / "repo"
    with TritonServer(repo, ready_models=["ugt_recommend"], extra_args=EXPLICIT_ARGS, log_path=log) as server:
        yield {"server": server, "folder": folder, "catalog": catalog, "fresh": fresh, "histories": histories}


def _ask(server, documents: list) -> list:
    with RecommendClient(server.grpc_url) as client:
        return client.recommend_results([d if isinstance(d, str) else json.dumps(d) for d in documents])


def _items(answers: list) -> set[int]:
    for answer in answers:
        assert answer.ok, answer.error
    return {item for answer in answers for item, _ in answer.items()}


def _same_model_file(root: Path, old: int, new: int) -> bool:
    """Version `new` serves version `old`'s model (no export): the same bytes, in a file of its own (a hard link
    would change the served file's inode, and Triton would reload the served version)."""
    old_file, new_file = root / MODEL.format(old), root / MODEL.format(new)
    return filecmp.cmp(old_file, new_file, shallow=False) and os.stat(old_file).st_ino != os.stat(new_file).st_ino


def _served_stubs(server, version: int) -> dict[str, int]:
    """The pid of each step's stub serving `version`."""
    return {s.model: s.pid for s in stubs_of(server.process.pid) if s.version == str(version)}


def _record(root: Path, version: int) -> dict:
    return VersionedRepository(root).manifest["versions"][str(version)]


def test_a_new_catalog_is_data_only_and_switches_live(served):
    server, folder, catalog = served["server"], served["folder"], served["catalog"]
    root, histories = server.model_repository, served["histories"]
    favourites = [item for item, _ in _ask(server, ["[]"])[0].items()]
    rng = np.random.default_rng(1)
    others = np.setdiff1d(catalog.item_ids, favourites)
    removed = set(favourites[:25]) | set(rng.choice(others, REMOVED - 25, replace=False).tolist())
    kept = ~np.isin(catalog.item_ids, list(removed))
    new_ids, new_codes = _new_items(catalog, rng)
    _write(folder / "b.csv", np.r_[catalog.item_ids[kept], new_ids], np.r_[catalog.codes[kept], new_codes],
           np.r_[np.zeros(kept.sum(), dtype=bool), np.ones(ADDED, dtype=bool)])  # fmt: skip
    added = set(new_ids.tolist())
    stubs, model_stat = _served_stubs(server, 1), os.stat(root / MODEL.format(1))
    with Traffic(server.grpc_url, "ugt_recommend", histories + ["[]"], concurrency=4) as traffic:
        time.sleep(1)
        start = time.perf_counter()
        assert Rollout(root, server.grpc_url, server.operator_key).deploy({}, folder / "b.csv") == 2
        seconds, switched = time.perf_counter() - start, time.monotonic()
        time.sleep(2)
    answers = traffic.stop()
    print(f"\ndata-only deploy of a {int(kept.sum()) + ADDED}-item catalog (+{ADDED} -{REMOVED}): "
          f"{seconds:.1f} s, {len(answers)} requests, {len(traffic.failures)} failed")  # fmt: skip
    assert traffic.failures == [], traffic.failures[:3]
    after = [a for a in answers if a.sent > switched]
    assert after and not removed & {int(i) for a in after for i in a.item_ids}
    assert _same_model_file(root, 1, 2)  # no export: the served ONNX file's bytes
    assert os.stat(root / MODEL.format(1)) == model_stat  # the served version's file untouched ...
    assert _served_stubs(server, 1) == stubs and len(stubs) == 3  # ... and not reloaded (the same stubs)
    assert seconds < 60, seconds
    new = _ask(server, [with_rules(json.loads(h), sets=["new"]) for h in histories[:8]])
    assert all(len(a.items()) == 50 for a in new) and _items(new) <= added
    assert not removed & _items(_ask(server, histories + ["[]"]))
    assert _items(_ask(server, [with_rules([], sets=["fresh"])])) <= served["fresh"]
    record = _record(root, 2)
    assert record["catalog"]["data_only"] and record["catalog"]["items"] == int(kept.sum()) + ADDED
    assert record[RECORD_KEY]["set_columns"] == ["new"] and sorted(record[RECORD_KEY]["names"]) == ["fresh", "new"]
    assert record[RECORD_KEY]["catalog_path"] == str((folder / "b.csv").resolve())


def test_a_set_only_deploy_changes_what_a_set_returns(served):
    server, folder, root = served["server"], served["folder"], served["server"].model_repository
    before = VersionedRepository(root)
    served_before = before.pinned()  # `pinned` reads the files again: after the deploy, the new version
    catalog_items = before.manifest["versions"][str(served_before)]["catalog"]
    current = np.loadtxt(folder / "b.csv", delimiter=",", skiprows=1, dtype=np.int64)[:, 0]
    fresh2 = _write_ids(folder / "fresh2.txt", np.random.default_rng(2).choice(current, 60, replace=False))
    command = [sys.executable, "-m", "ugt_ensemble", "deploy", "--model-repository", str(root), "--url",
               server.grpc_url, "--item-set", f"fresh={folder / 'fresh2.txt'}", "-q"]  # fmt: skip
    env = {**os.environ, "UGT_OPERATOR_KEY": server.operator_key.value}
    refused = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert refused.returncode == 2 and VersionedRepository(root).numbers() == before.numbers(), refused.stderr
    assert "leave out --set-column new: the served set 'new' would disappear" in refused.stderr
    command.append("--allow-set-changes")  # dropping "new" is meant here
    start = time.perf_counter()
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    seconds = time.perf_counter() - start
    print(f"\nset-only deploy through the CLI (process start included): {seconds:.1f} s")
    assert result.returncode == 0, result.stderr[-3000:]
    number = max(VersionedRepository(root).numbers())
    assert "Deployed version" in result.stdout and VersionedRepository(root).pinned() == number
    assert _same_model_file(root, served_before, number)
    record = _record(root, number)
    assert record["catalog"]["fingerprint"] == catalog_items["fingerprint"] and record["catalog"]["data_only"]
    assert record[RECORD_KEY]["set_columns"] == [] and record[RECORD_KEY]["names"] == ["fresh"]
    answers = _ask(server, [with_rules(json.loads(h), sets=["fresh"]) for h in served["histories"][:8]])
    assert all(len(a.items()) == 50 for a in answers) and _items(answers) <= fresh2
    with grpcclient.InferenceServerClient(server.grpc_url) as client:  # the flags replaced every set
        with pytest.raises(grpcclient.InferenceServerException) as info:
            client.infer("ugt_recommend", [history_tensor([json.dumps({"events": [], "sets": ["new"]})])])
    assert info.value.status() == "StatusCode.INVALID_ARGUMENT" and 'unknown item set "new"' in info.value.message()


def test_a_later_catalog_deploy_keeps_the_served_versions_sets(served):
    server, folder, root = served["server"], served["folder"], served["server"].model_repository
    served_version = VersionedRepository(root).pinned()
    fresh2 = {int(i) for i in (folder / "fresh2.txt").read_text().split()}
    table = np.loadtxt(folder / "b.csv", delimiter=",", skiprows=1, dtype=np.int64)
    dropped = sorted(fresh2)[:10]
    table = table[~np.isin(table[:, 0], dropped)]
    np.savetxt(folder / "c.csv", table, fmt="%d", delimiter=",", header="item_id,l1,l2,l3,new", comments="")
    number = Rollout(root, server.grpc_url, server.operator_key).deploy({}, folder / "c.csv")
    assert _same_model_file(root, served_version, number)
    sources = _record(root, number)[RECORD_KEY]
    assert sources["item_sets"] == [["fresh", str((folder / "fresh2.txt").resolve())]]
    assert sources["set_columns"] == [] and sources["catalog_path"] == str((folder / "c.csv").resolve())
    answers = _ask(server, [with_rules(json.loads(h), sets=["fresh"]) for h in served["histories"][:8]])
    assert _items(answers) <= fresh2 - set(dropped)  # version 3's "fresh", not the build's
    assert all(len(a.items()) == 50 for a in answers)
