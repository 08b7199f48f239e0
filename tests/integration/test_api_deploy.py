"""ServingExporter.deploy_full_pipeline on a given model, served by a real tritonserver."""

from ugt_ensemble import ExportConfig, ServingExporter, TritonConfig
from ugt_ensemble.client import RecommendClient
from ugt_ensemble.server import TritonServer


def test_deploy_full_pipeline_then_serve_and_benchmark(tmp_path, tiny_model, catalog):
    exporter = ServingExporter(
        catalog, ExportConfig(max_batch_size=8, max_seq_length=128), TritonConfig(max_batch_size=8), show_progress=False
    )
    result = exporter.deploy_full_pipeline(tiny_model, tmp_path / "repo")
    assert result["valid"], result["errors"]
    assert result["info"]["build"]["engine"] == "onnxruntime"
    with TritonServer(tmp_path / "repo", ready_models=["ugt_recommend"]) as server:
        with RecommendClient(server.grpc_url) as client:
            answer = client.recommend_one([int(i) for i in catalog.item_ids[:5]])
        assert answer.ok and len(answer.items()) == 50
        report = exporter.benchmark(server.grpc_url, "ugt_recommend", num_requests=8)
    assert {run["concurrency"] for run in report["runs"]} == {1, 8}
    assert all(run["succeeded"] == 8 for run in report["runs"])
