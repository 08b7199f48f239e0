"""A server that heals: kill -9 of each Python-backend stub under load is followed by correct answers again,
without a manual restart (the watchdog `serve` runs reloads the broken step), with no write to the repository
(also on a read-only mount); a model unloaded with the operator key is loaded again; a reload that misses its
deadline is a failed heal."""

import hashlib
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from ugt_ensemble.histories import history_json, random_history
from ugt_ensemble.server import TritonServer
from ugt_ensemble.server.context import EXPLICIT_ARGS
from ugt_ensemble.server.orphans import SHM_DIR, mapped_regions
from ugt_ensemble.server.probe import probe_ensemble
from ugt_ensemble.server.stubs import stub_argv, stubs_of
from ugt_ensemble.server.watchdog import Watchdog
from ugt_ensemble_dev.traffic import Traffic

EXPLICIT = EXPLICIT_ARGS  # explicit model control, as serve runs it


@pytest.fixture(scope="module")
def healing_server(built, tmp_path_factory):
    config, result = built
    log = tmp_path_factory.mktemp("healing") / "tritonserver.log"
    with TritonServer(
        result.repository, ready_models=[config.export.model_name], extra_args=EXPLICIT, log_path=log
    ) as s:
        watchdog = Watchdog(
            s.grpc_url,
            s.process.pid,
            result.repository,
            config.export.model_name,
            interval_s=0.5,
            headers=s.grpc_operator_headers(),
        )
        watchdog.start()
        yield s, watchdog
        watchdog.stop()


@pytest.mark.parametrize("step", ["preprocess", "ugt_trt", "postprocess"])
def test_a_killed_stub_is_healed_under_load(built, healing_server, step):
    config, result = built
    server, watchdog = healing_server
    rng = np.random.default_rng(2)
    histories = [history_json(random_history(result.catalog.item_ids, int(n), rng)) for n in rng.integers(1, 80, 16)]
    (stub,) = [s for s in stubs_of(server.process.pid) if s.model == step]
    heals_before = len(watchdog.heals)
    files = snapshot(result.repository)
    with Traffic(server.grpc_url, config.export.model_name, histories, concurrency=8) as traffic:
        time.sleep(1.0)
        killed = time.monotonic()
        os.kill(stub.pid, signal.SIGKILL)
        time.sleep(12.0)
    answers = traffic.stop()  # sorted by send time
    failed = [a for a in answers if a.error]
    recovered = max((a.sent for a in failed), default=killed) - killed
    after = [a for a in answers if a.sent > killed + recovered]
    assert recovered < 8 and len(after) >= 50 and all(a.error is None for a in after), (recovered, len(after))
    assert all("not healthy" in a.error for a in failed), failed[:2]
    healed = [h for h in watchdog.heals[heals_before:] if h.model == step]
    assert healed and healed[-1].ok, watchdog.heals
    assert [s.model for s in stubs_of(server.process.pid)].count(step) == 1
    assert snapshot(result.repository) == files  # healing wrote nothing: no mtime, size or content changed


def test_a_model_unloaded_with_the_key_is_loaded_again(built, healing_server):
    import tritonclient.grpc as grpcclient

    config, result = built
    server, watchdog = healing_server
    name = config.export.model_name
    with grpcclient.InferenceServerClient(server.grpc_url) as client:
        client.unload_model("ugt_trt", headers=server.grpc_operator_headers())
        unloaded = time.monotonic()
        while time.monotonic() - unloaded < 20:
            try:
                probe_ensemble(server.grpc_url, name)
                break
            except Exception:  # noqa: BLE001 - not yet
                time.sleep(0.1)
        seconds = time.monotonic() - unloaded
        index = client.get_model_repository_index(as_json=True, headers=server.grpc_operator_headers())["models"]
    probe_ensemble(server.grpc_url, name)
    assert {(m["name"], m.get("state")) for m in index} >= {("ugt_trt", "READY"), (name, "READY")}
    deadline = time.monotonic() + 10  # the watchdog records its heal after its own probe answers
    while not any(h.action == "load" for h in watchdog.heals) and time.monotonic() < deadline:
        time.sleep(0.1)
    loads = [h for h in watchdog.heals if h.action == "load"]  # the step, or the ensemble (which loads its steps)
    assert loads and all(h.ok for h in loads) and {h.model for h in loads} <= {"ugt_trt", name}, watchdog.heals
    print(f"\nunloaded ugt_trt answered again after {seconds:.1f} s")


def test_healing_works_on_a_read_only_repository(built, tmp_path):
    """Kubernetes mounts the repository read-only; touching its folders failed with EROFS, three times, exit 3."""
    config, result = built
    source, mounted = tmp_path / "source", tmp_path / "ro"
    shutil.copytree(result.repository, source)
    mounted.mkdir()
    if subprocess.run(["mount", "--bind", str(source), str(mounted)], capture_output=True).returncode != 0:
        pytest.skip("cannot bind-mount here")
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(mounted)], check=True, capture_output=True)
        with pytest.raises(OSError, match="Read-only"):
            os.utime(mounted / "preprocess")
        _kill_a_stub_and_heal(config.export.model_name, mounted, tmp_path / "tritonserver.log")
    finally:
        subprocess.run(["umount", str(mounted)], check=False)


def _kill_a_stub_and_heal(name: str, repository: Path, log: Path) -> None:
    with TritonServer(repository, ready_models=[name], extra_args=EXPLICIT, log_path=log) as server:
        headers = server.grpc_operator_headers()
        watchdog = Watchdog(server.grpc_url, server.process.pid, repository, name, 0.5, headers=headers)
        (stub,) = [s for s in stubs_of(server.process.pid) if s.model == "preprocess"]
        os.kill(stub.pid, signal.SIGKILL)
        time.sleep(0.5)
        made = watchdog.check_once()
        assert [(h.model, h.ok) for h in made] == [("preprocess", True)], made
        probe_ensemble(server.grpc_url, name)
        assert [s.model for s in stubs_of(server.process.pid)].count("preprocess") == 1


def snapshot(repository: Path) -> dict[str, tuple[int, int, str]]:
    """path -> (mtime in ns, size, sha256) of every file and folder under `repository`."""
    found = {}
    for path in sorted(repository.rglob("*")):
        info = path.stat()
        digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else ""
        found[str(path.relative_to(repository))] = (info.st_mtime_ns, info.st_size, digest)
    return found


def test_a_probe_that_times_out_while_requests_are_answered_reloads_nothing(built, healing_server):
    """Overload is not a fault: reloading healthy steps (or restarting) under peak load makes an outage."""
    config, result = built
    server, _ = healing_server
    rng = np.random.default_rng(3)
    histories = [history_json(random_history(result.catalog.item_ids, 60, rng)) for _ in range(8)]
    # A probe deadline no answer can meet stands in for an overloaded server.
    watchdog = Watchdog(
        server.grpc_url,
        server.process.pid,
        result.repository,
        config.export.model_name,
        0.5,
        probe_timeout_s=0.001,
        headers=server.grpc_operator_headers(),
    )
    stubs = {s.instance: s.pid for s in stubs_of(server.process.pid)}
    with Traffic(server.grpc_url, config.export.model_name, histories, concurrency=4) as traffic:
        time.sleep(0.5)
        watchdog.start()
        time.sleep(4.0)
        watchdog.stop()
    assert all(a.error is None for a in traffic.stop())
    assert watchdog.heals == [] and watchdog.fatal is None and watchdog.overloaded_rounds >= 4
    assert {s.instance: s.pid for s in stubs_of(server.process.pid)} == stubs
    watchdog.broken_steps()  # without traffic there is no progress: the same failing probe now means a hang
    assert set(watchdog.broken_steps()) >= {"preprocess", "ugt_trt", "postprocess"}


def test_a_reload_that_misses_its_deadline_is_a_failed_heal_and_none_is_sent_while_it_is_pending(built, tmp_path):
    """Issue 22: the watchdog waited on a stuck reload forever and never counted a failure. Every call now carries
    a deadline: a reload slower than `load_timeout_s` is a failed heal (`hung`), the model gets no second reload
    while that one is pending (Triton queues it behind), and once the late load is done the step is healthy."""
    config, result = built
    name = config.export.model_name
    log = tmp_path / "tritonserver.log"
    with TritonServer(result.repository, ready_models=[name], extra_args=EXPLICIT, log_path=log) as server:
        pid, headers = server.process.pid, server.grpc_operator_headers()
        watchdog = Watchdog(server.grpc_url, pid, result.repository, name, 0.5, headers=headers, load_timeout_s=0.05)
        (stub,) = [s for s in stubs_of(pid) if s.model == "preprocess"]
        region = SHM_DIR / stub_argv(stub.pid)[2]  # Triton leaves a killed stub's region behind
        os.kill(stub.pid, signal.SIGKILL)
        (heal,) = watchdog.check_once()
        assert (heal.model, heal.ok, heal.hung, heal.failed) == ("preprocess", False, True, True), heal
        deadline, pending = time.monotonic() + 120, []
        while made := watchdog.check_once():  # the late load finishes: nothing is broken any more
            pending += made
            assert time.monotonic() < deadline, made
            time.sleep(0.2)
        assert all(h.hung and h.failed and "reload pending" in h.reason for h in pending), pending
        probe_ensemble(server.grpc_url, name)
        assert [s.model for s in stubs_of(pid)].count("preprocess") == 1
        assert watchdog.check_once() == []  # no longer pending
    if region.name not in mapped_regions():
        region.unlink(missing_ok=True)
