"""The `k8s` probes against a real tritonserver: readiness stays 200 after a Python stub dies, the
liveness probe (a real inference) fails then. Builds its own tiny CPU repository."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import urllib.request

import pytest

from ugt_ensemble.build import build_repository
from ugt_ensemble.config import BuildConfig, ExportConfig, target_server_settings
from ugt_ensemble.deploy.k8s import liveness_command, render_manifests
from ugt_ensemble.deploy.k8s_check import load_documents
from ugt_ensemble.deploy.options import K8sOptions
from ugt_ensemble.server import TritonServer
from ugt_ensemble.server.stubs import stubs_of


@pytest.fixture(scope="module")
def repository(tmp_path_factory, tiny_config):
    export, triton = target_server_settings("cpu-wheel")
    config = BuildConfig(
        output_dir=tmp_path_factory.mktemp("k8s") / "ensemble",
        model_config=tiny_config,
        synthetic_items=500,
        seed=4,
        export=ExportConfig(**{**export, "max_seq_length": 128, "validation_shapes": ((1, 1), (2, 16))}),
        triton=triton,
        target_server="cpu-wheel",
    )
    return build_repository(config).repository


def ready(server: TritonServer) -> int:
    with urllib.request.urlopen(f"{server.http_url}/v2/health/ready", timeout=5) as answer:
        return answer.status


def test_liveness_fails_when_a_stub_dies_while_readiness_stays_200(repository):
    deployment = load_documents(render_manifests(repository, K8sOptions()))["Deployment"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    rendered = container["livenessProbe"]["exec"]["command"]
    with TritonServer(repository, ready_models=["ugt_recommend"]) as server:
        probe = liveness_command("ugt_recommend", server.ports.http)
        assert probe[:2] == rendered[:2] and probe[2].replace(str(server.ports.http), "8000") == rendered[2]
        assert subprocess.run(probe, capture_output=True, timeout=60).returncode == 0
        (stub,) = [s for s in stubs_of(server.process.pid) if s.model == "preprocess"]
        os.kill(stub.pid, signal.SIGKILL)
        time.sleep(1)
        assert ready(server) == 200
        failed = subprocess.run(probe, capture_output=True, text=True, timeout=60)
        assert failed.returncode != 0, failed.stdout
