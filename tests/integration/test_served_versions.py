"""Versions as a user runs them (the real CLI, a real tritonserver): a deploy of the catalog already served makes no
version and says so; after two deploys a restarted `serve` runs the stubs of the served version only (it loaded
every version the policies keep: 9 stubs for 3 steps), and a rollback to a version it did not load loads it first;
`versions` prints a header row."""

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ugt_ensemble.server import Ports
from ugt_ensemble.server.stubs import stubs_of
from ugt_ensemble.serving.versions import VersionedRepository

PYTHON = [sys.executable, "-m", "ugt_ensemble"]
STEPS = ("postprocess", "preprocess", "ugt_trt")


def _cli(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*PYTHON, *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=600)


def _write_catalog(path: Path, catalog, keep) -> None:
    rows = [f"{i},{a},{b},{c}" for i, (a, b, c), k in zip(catalog.item_ids, catalog.codes.tolist(), keep) if k]
    path.write_text("item_id,l1,l2,l3\n" + "\n".join(rows) + "\n")


@pytest.fixture(scope="module")
def repo(tmp_path_factory, catalog, tiny_config) -> Path:
    folder = tmp_path_factory.mktemp("served_versions")
    every = [True] * len(catalog)
    _write_catalog(folder / "a.csv", catalog, every)
    _write_catalog(folder / "b.csv", catalog, [i % 20 != 0 for i in range(len(catalog))])
    _write_catalog(folder / "c.csv", catalog, [i % 20 != 1 for i in range(len(catalog))])
    (folder / "tiny.json").write_text(json.dumps(dataclasses.asdict(tiny_config)))
    flags = ["--target-server", "cpu-wheel", "--model-config", "tiny.json", "--max-batch-size", "8"]
    built = _cli("build", "--output-dir", "repo", "--catalog", "a.csv", *flags, "--max-seq-length", "64", cwd=folder)
    assert built.returncode == 0, built.stderr[-3000:]
    return folder / "repo"


def test_a_deploy_that_changes_nothing_makes_no_version(repo):
    same = _cli("deploy", "--model-repository", "repo", "--catalog", "a.csv", cwd=repo.parent)
    assert same.returncode == 0, same.stderr[-3000:]
    assert same.stdout.startswith(
        "Nothing deployed to repo: version 2 would hold the same model, catalog and item sets as the served version 1"
    ), same.stdout
    assert VersionedRepository(repo).numbers() == [1] and not (repo / "preprocess" / "2").exists()
    changed = _cli("deploy", "--model-repository", "repo", "--catalog", "b.csv", cwd=repo.parent)
    assert changed.returncode == 0 and "Deployed version 2 to repo; serving it" in changed.stdout, changed.stderr


def test_serve_loads_only_the_served_versions_and_a_rollback_loads_its_own(repo, tmp_path):
    if VersionedRepository(repo).numbers() == [1]:  # run alone
        assert _cli("deploy", "--model-repository", "repo", "--catalog", "b.csv", cwd=repo.parent).returncode == 0
    assert _cli("deploy", "--model-repository", "repo", "--catalog", "c.csv", cwd=repo.parent).returncode == 0
    listed = _cli("versions", "--model-repository", "repo", cwd=repo.parent)
    lines = listed.stdout.splitlines()
    assert lines[0].split() == ["VERSION", "CREATED", "CATALOG", "(items,", "fingerprint)", "MODEL"], lines
    assert [line.split()[0] for line in lines[1:4]] == ["1", "2", "*"] and VersionedRepository(repo).pinned() == 3
    assert VersionedRepository(repo).loaded_policy() == [1, 2, 3]  # kept for a rollback

    ports, env = Ports.free(), {**os.environ, "UGT_STATE_DIR": str(tmp_path)}
    env.pop("UGT_OPERATOR_KEY", None)
    serve = subprocess.Popen(
        [*PYTHON, "serve", "--model-repository", str(repo), "--http-port", str(ports.http), "--grpc-port",
         str(ports.grpc), "--metrics-port", str(ports.metrics), "--log-file", str(tmp_path / "t.log")],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
    )  # fmt: skip
    try:
        _wait_for(serve, "Serving 'ugt_recommend'")
        server = _tritonserver_of(serve.pid)
        assert _stub_versions(server) == {(step, "3") for step in STEPS}  # 3 stubs, not 9
        url = f"127.0.0.1:{ports.grpc}"
        back = _cli("rollback", "--model-repository", str(repo), "--url", url, cwd=tmp_path, env=env)
        assert back.returncode == 0 and "serves version 2" in back.stdout, back.stderr[-2000:]
        assert _stub_versions(server) == {(step, v) for step in STEPS for v in ("2", "3")}
        answered = _cli("infer", "--url", url, "--json", "[1, 2, 3]", cwd=tmp_path)
        assert answered.returncode == 0 and len(json.loads(answered.stdout)["item_ids"]) == 50, answered.stderr
    finally:
        serve.send_signal(signal.SIGTERM)
        out, _ = serve.communicate(timeout=60)
    assert serve.returncode == 0, out[-3000:]


def _wait_for(process: subprocess.Popen, needle: str, timeout_s: float = 240) -> None:
    deadline, lines = time.monotonic() + timeout_s, []
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        lines.append(line)
        if needle in line:
            return
        if not line and process.poll() is not None:
            break
    raise AssertionError(f"no {needle!r} in serve's output:\n{''.join(lines)}")


def _tritonserver_of(parent: int) -> int:
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
                command = (entry / "cmdline").read_bytes().split(b"\0")[0]
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == parent and command.endswith(b"tritonserver"):
                return int(entry.name)
    raise AssertionError(f"serve (pid {parent}) runs no tritonserver")


def _stub_versions(server: int) -> set[tuple[str, str]]:
    return {(stub.model, stub.version) for stub in stubs_of(server)}
