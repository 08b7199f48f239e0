"""A model the package has never seen, deployed with the seeds' §5.1 code and with `build --model x.pt2`, served
by the real tritonserver: every answer equals the module's own eager output; a model that returns unknown
codes and repeats is served as distinct catalog items; the seeds' §5.3 benchmark runs against it."""

import json
import subprocess
import sys

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
from recommender import make_recommender, train
from step_models import RepeatingCodes
from tritonclient.utils import InferenceServerException

from ugt_ensemble import BenchmarkConfig, ExportConfig, ServingExporter, TritonBenchmark, TritonConfig
from ugt_ensemble.build import build_repository
from ugt_ensemble.catalog import save_catalog_csv
from ugt_ensemble.client import LocalPipeline, RecommendClient
from ugt_ensemble.client.grpc_client import history_tensor
from ugt_ensemble.config import BuildConfig
from ugt_ensemble.errors import ConfigError
from ugt_ensemble.export.compare import ranked_mismatches
from ugt_ensemble.histories import history_json, random_history
from ugt_ensemble.model.sources import save_step_model
from ugt_ensemble.repository.manifest import read_manifest
from ugt_ensemble.runtime.packing import PackingConfig
from ugt_ensemble.server import TritonServer

MAX_LENGTH = 128
EXPORT = dict(model_name="byom", precision="fp32", max_batch_size=64, max_seq_length=MAX_LENGTH)


@pytest.fixture(scope="module")
def sasrec(catalog):
    model = make_recommender(catalog, max_length=MAX_LENGTH)
    train(model, catalog, steps=20)
    return model


@pytest.fixture(scope="module")
def histories(catalog):
    rng = np.random.default_rng(21)
    lengths = [0, 1, 2, 5, 300] + [int(n) for n in rng.integers(1, 200, 200)]
    docs = [history_json(random_history(catalog.item_ids, n, rng)) for n in lengths]
    return docs + [json.dumps([int(catalog.item_ids[0]), -7, 10**15])]  # unknown ids are skipped


def _served(repository, model_name, docs, tmp_path):
    with TritonServer(repository, ready_models=[model_name], log_path=tmp_path / f"{model_name}.log") as server:
        with RecommendClient(server.grpc_url, model_name) as client:
            return client.recommend_results(docs, concurrency=8)


def _assert_equal_to_eager(model, catalog, served, docs):
    expected = LocalPipeline(model, catalog.index(), PackingConfig(MAX_LENGTH)).recommend_results(docs)
    assert len(served) == len(expected) >= 200
    for want, got in zip(expected, served):
        assert got.ok, got.error
        problems = ranked_mismatches(want.item_ids[None], want.scores[None], got.item_ids[None], got.scores[None], 1e-4)
        assert not problems, problems


@pytest.fixture(scope="module")
def catalog_csv(tmp_path_factory, catalog):
    path = tmp_path_factory.mktemp("catalog") / "items.csv"
    save_catalog_csv(catalog, path)
    return path


def test_seed_5_1_deploys_an_unseen_module_served_equal_to_its_eager_output(
    tmp_path, sasrec, catalog, catalog_csv, histories
):
    config = ExportConfig(**EXPORT, catalog_path=catalog_csv)  # the catalog the model's codes refer to
    exporter = ServingExporter(config, TritonConfig.cpu(), show_progress=False)
    paths = exporter.deploy_full_pipeline(sasrec, tmp_path / "model_repository")
    assert paths["valid"], paths["errors"]
    assert {"onnx_path", "engine_path", "config_path", "model_repository"} <= set(paths)
    assert paths["catalog_validity"]["valid_share"] == 1.0
    served = _served(paths["model_repository"], "byom", histories, tmp_path)
    _assert_equal_to_eager(sasrec, catalog, served, histories)


def test_build_model_pt2_from_the_cli_serves_the_same_answers(tmp_path, sasrec, catalog, catalog_csv, histories):
    save_step_model(sasrec, tmp_path / "model.pt2", catalog.index(), max_batch_size=64, max_seq_length=MAX_LENGTH)
    command = [sys.executable, "-m", "ugt_ensemble", "build", "--model", "model.pt2", "--catalog", str(catalog_csv)]
    command += ["--max-seq-length", str(MAX_LENGTH), "--ensemble-name", "byom", "--output-dir", "repo", "-q"]
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "catalog validity: 100.0% of returned triples are catalog items" in result.stdout
    assert read_manifest(tmp_path / "repo")["model_source"].startswith("model.pt2")
    served = _served(tmp_path / "repo", "byom", histories, tmp_path)
    _assert_equal_to_eager(sasrec, catalog, served, histories)


def test_unknown_codes_and_repeats_reach_clients_as_distinct_catalog_items(tmp_path, catalog, histories):
    config = BuildConfig(output_dir=tmp_path / "repeating", export=ExportConfig(**EXPORT), triton=TritonConfig.cpu())
    build_repository(config, model=RepeatingCodes(catalog.codes), catalog=catalog)
    validity = read_manifest(tmp_path / "repeating")["catalog_validity"]
    assert validity["valid_share"] == 0.5 and validity["rows_with_duplicates"] == 1.0
    assert read_manifest(tmp_path / "repeating")["rules"]["honoured"] == "none"  # it declares no rule inputs
    ruled = [{"events": [1], "exclude": [2]}, {"events": [], "sets": ["s"]}, {"events": [], "exclude_history": True}]
    with TritonServer(tmp_path / "repeating", ready_models=["byom"], log_path=tmp_path / "repeating.log") as server:
        with RecommendClient(server.grpc_url, "byom") as client:
            served = client.recommend_results(histories[:20] + [json.dumps({"events": [1, 2]})], concurrency=8)
        with grpcclient.InferenceServerClient(server.grpc_url) as raw:  # a rule on it: refused, never a short answer
            refusals = []
            for document in ruled:
                with pytest.raises(InferenceServerException) as info:
                    raw.infer("byom", [history_tensor([json.dumps(document)])])
                refusals.append((info.value.status(), info.value.message()))
    for status, message in refusals:
        assert status == "StatusCode.INVALID_ARGUMENT" and "does not honour business rules" in message, message
    known = set(catalog.item_ids.tolist())
    for answer in served:
        assert answer.ok, answer.error
        items = [item for item, _ in answer.items()]
        assert len(items) == len(set(items)) == 13 and set(items) <= known
        assert np.all(answer.item_ids[13:] == -1) and np.isneginf(answer.scores[13:]).all()
    excluding = TritonConfig.cpu(exclude_history=True)
    config = BuildConfig(output_dir=tmp_path / "excluding", export=ExportConfig(**EXPORT), triton=excluding)
    with pytest.raises(ConfigError, match="--exclude-history needs a model that honours the rules in its search"):
        build_repository(config, model=RepeatingCodes(catalog.codes), catalog=catalog)


def test_seed_5_3_benchmark_runs_against_the_served_model(tmp_path, sasrec, catalog_csv):
    config = ExportConfig(**EXPORT, catalog_path=catalog_csv)
    exporter = ServingExporter(config, TritonConfig.cpu(), show_progress=False)
    repository = exporter.deploy_full_pipeline(sasrec, tmp_path / "model_repository")["model_repository"]
    with TritonServer(repository, ready_models=["byom"], log_path=tmp_path / "bench.log") as server:
        config = BenchmarkConfig(
            triton_url=server.grpc_url,
            num_warmup_requests=10,
            num_requests=60,
            concurrency=4,
            test_batch_sizes=(1, 8),
            test_seq_lengths=(32,),
            model_repository=repository,
        )
        benchmark = TritonBenchmark(config)
        result = benchmark.run(server.grpc_url, "byom", batch_size=16, seq_length=64)
        assert result.successful_requests == 60 and result.failed_requests == 0 and "req/s" in result.summary()
        results = benchmark.run_sweep(server.grpc_url, "byom")
        report = benchmark.generate_report(results, tmp_path / "benchmark_report.txt")
        assert set(results) == {"batch1_seq32", "batch8_seq32"} and "batch8_seq32" in report
        metrics = exporter.benchmark(server.grpc_url, "byom", num_requests=30)
        assert {"throughput", "latency_p50", "latency_p90", "latency_p99"} <= set(metrics)
