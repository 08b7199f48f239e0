"""A real tritonserver (the nvidia-pytriton wheel's CPU build) on a freshly built repository."""

from __future__ import annotations

import pytest

from ugt_ensemble.build import BuildResult, build_repository
from ugt_ensemble.client import LocalPipeline, RecommendClient
from ugt_ensemble.config import BuildConfig, ExportConfig, TritonConfig
from ugt_ensemble.server import TritonServer

#: A long queue delay so that concurrent test requests really share dynamic batches.
QUEUE_DELAY_US = 20_000


def pytest_collection_modifyitems(items):
    for item in items:
        item.add_marker(pytest.mark.integration)


def build(tmp_path_factory, **triton) -> tuple[BuildConfig, BuildResult]:
    triton.setdefault("naive_peer", True)  # the benchmark's baseline, so the bench smoke can load it too
    config = BuildConfig(
        output_dir=tmp_path_factory.mktemp("repository") / "ensemble",
        synthetic_items=3_000,
        seed=11,
        export=ExportConfig(precision="fp32", validation_shapes=((1, 1), (4, 64))),
        triton=TritonConfig.cpu(max_queue_delay_us=QUEUE_DELAY_US, **triton),
    )
    return config, build_repository(config)


@pytest.fixture(scope="session")
def build_for_test(tmp_path_factory):
    """Build another repository with the same model and catalog and other Triton options."""
    return lambda **triton: build(tmp_path_factory, **triton)


@pytest.fixture(scope="session")
def built(tmp_path_factory) -> tuple[BuildConfig, BuildResult]:
    return build(tmp_path_factory)


@pytest.fixture(scope="session")
def server(built, tmp_path_factory):
    config, result = built
    log = tmp_path_factory.mktemp("logs") / "tritonserver.log"
    with TritonServer(result.repository, ready_models=[config.export.model_name], log_path=log) as running:
        yield running


@pytest.fixture
def client(server):
    with RecommendClient(server.grpc_url) as c:
        yield c


@pytest.fixture(scope="session")
def local(built) -> LocalPipeline:
    config, result = built
    return LocalPipeline(result.model, result.catalog.index(), config.packing)
