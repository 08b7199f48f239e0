"""`serve` supervises tritonserver (a real one, `python -m ugt_ensemble serve` as a subprocess): a model unloaded
with the operator key is loaded again, a tritonserver killed with kill -9 is restarted on the same ports and
answers again with its orphan stubs and shared memory gone, a step paused under load (which crashes Triton)
ends in answers again, SIGTERM leaves nothing of its own behind, and a server that keeps dying makes `serve`
give up with exit code 3. A reload that hangs ends in a restart; serve stops within 10 s while it hangs, and
a serve killed with kill -9 takes its tritonserver along, and the next serve removes what it left."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from ugt_ensemble.errors import ServerError
from ugt_ensemble.histories import history_json, random_history
from ugt_ensemble.server import Ports
from ugt_ensemble.server.operator_key import load_operator_key
from ugt_ensemble.server.orphans import SHM_DIR
from ugt_ensemble.server.probe import probe_ensemble
from ugt_ensemble.server.stubs import orphans_of, proc_stat, stubs_of
from ugt_ensemble_dev.traffic import Traffic

SERVING = re.compile(r"Serving 'ugt_recommend'(?: again)? \(pid (\d+)")


class Serve:
    """`python -m ugt_ensemble serve` on free ports, its output collected line by line."""

    def __init__(self, repository: Path, state: Path, *extra: str) -> None:
        self.ports = Ports.free()
        env = {k: v for k, v in os.environ.items() if not k.startswith("UGT_OPERATOR_KEY")}
        env["UGT_STATE_DIR"] = str(state)
        self.key_file = state / "operator.key"
        ports = self.ports
        command = [sys.executable, "-m", "ugt_ensemble", "serve", "--model-repository", str(repository)]
        command += ["--http-port", str(ports.http), "--grpc-port", str(ports.grpc)]
        command += ["--metrics-port", str(ports.metrics)]
        command += ["--log-file", str(state / "tritonserver.log"), "--watch-interval", "0.5", *extra]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    @property
    def url(self) -> str:
        return f"127.0.0.1:{self.ports.grpc}"

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line)

    def wait_for(self, pattern: str, count: int = 1, timeout_s: float = 240) -> None:
        deadline = time.monotonic() + timeout_s
        while len(re.findall(pattern, self.output)) < count:
            assert time.monotonic() < deadline and self.process.poll() is None, f"no {pattern!r} in:\n{self.output}"
            time.sleep(0.1)

    def stop(self) -> None:
        """SIGTERM (serve then removes its server's stubs and regions), SIGKILL if it does not exit in 60 s."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def server_pid(self) -> int:
        return int(SERVING.findall(self.output)[-1])

    def shm_prefix(self) -> str:
        return f"ugt_serve_{self.process.pid}_"

    def regions(self) -> set[str]:
        return {p.name for p in SHM_DIR.iterdir() if p.name.startswith(self.shm_prefix())}


class Prober:
    """A small client loop: one request through the ensemble every 0.1 s, each on a new connection."""

    def __init__(self, url: str) -> None:
        self.url, self.results, self._stop = url, [], threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            sent = time.monotonic()
            try:
                probe_ensemble(self.url, "ugt_recommend", timeout_s=5)
                self.results.append((sent, True))
            except Exception:  # noqa: BLE001 - a refused connection is a failed request too
                self.results.append((sent, False))

    def __enter__(self) -> Prober:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


@pytest.fixture(scope="module")
def serve(built, tmp_path_factory):
    _, result = built
    served = Serve(result.repository, tmp_path_factory.mktemp("serve-state"))
    try:
        served.wait_for(SERVING.pattern)
        yield served
    finally:
        served.stop()


def test_serve_prints_where_the_key_is_never_the_key(serve):
    key = load_operator_key(serve.key_file)
    assert f"Operator key: {serve.key_file}" in serve.output
    assert key.value not in serve.output
    assert serve.key_file.stat().st_mode & 0o777 == 0o600


def test_a_model_unloaded_with_the_key_is_loaded_again_by_the_watchdog(serve):
    import tritonclient.grpc as grpcclient
    from tritonclient.utils import InferenceServerException

    key = load_operator_key(serve.key_file)
    with grpcclient.InferenceServerClient(serve.url) as client:
        with pytest.raises(InferenceServerException, match="restricted"):
            client.unload_model("ugt_recommend")  # without the key: refused
        probe_ensemble(serve.url, "ugt_recommend")
        client.unload_model("ugt_recommend", headers=key.grpc_headers())
    unloaded = time.monotonic()
    with pytest.raises(ServerError):
        probe_ensemble(serve.url, "ugt_recommend")
    _answers_within(serve.url, 20)
    print(f"\nunloaded ensemble answered again after {time.monotonic() - unloaded:.1f} s")
    assert "ugt_recommend should be serving but is not loaded" in serve.output


def test_a_killed_tritonserver_is_restarted_and_its_orphans_removed(serve):
    dead = serve.server_pid()
    before = serve.regions()
    assert len(before) >= 4
    (paused,) = [s for s in stubs_of(dead) if s.model == "preprocess"]
    os.kill(paused.pid, signal.SIGSTOP)  # a stub that cannot notice its server died: it would stay behind
    restarts = serve.output.count("again (pid")
    with Prober(serve.url) as prober:
        time.sleep(1.0)
        killed = time.monotonic()
        os.kill(dead, signal.SIGKILL)
        serve.wait_for(r"again \(pid", count=restarts + 1, timeout_s=240)
        _answers_within(serve.url, 30)
        time.sleep(1.0)
    recovered = next(t for t, ok in prober.results if t > killed and ok) - killed
    failed = sum(1 for t, ok in prober.results if t > killed and not ok)
    assert serve.server_pid() != dead and serve.process.poll() is None
    assert f"tritonserver (pid {dead}) was killed by SIGKILL" in serve.output
    assert proc_stat(paused.pid) is None and orphans_of(dead) == []
    assert not before & serve.regions()  # the dead server's regions are gone; the new one has its own
    assert all(ok for t, ok in prober.results if t > killed + recovered)
    (cleaned,) = re.findall(rf"Cleaned up after tritonserver \(pid {dead}\): (.*)", serve.output)
    assert re.match(r"[1-9]\d* orphan stub\(s\) killed, [1-9]\d* shared-memory region\(s\)", cleaned), cleaned
    print(f"\nkill -9 -> answering again after {recovered:.1f} s; {failed} probe-loop requests failed; {cleaned}")
    assert recovered < 60


def test_a_model_step_paused_under_load_ends_in_answers_again(built, serve):
    """A stub paused for 3 s under load crashed tritonserver (SIGSEGV or SIGABRT: Triton's fault) and serve exited."""
    _, result = built
    rng = np.random.default_rng(5)
    histories = [history_json(random_history(result.catalog.item_ids, int(n), rng)) for n in rng.integers(1, 80, 16)]
    pid, before, restarts = serve.server_pid(), serve.regions(), serve.output.count("again (pid")
    (stub,) = [s for s in stubs_of(pid) if s.model == "ugt_trt"]
    with Traffic(serve.url, "ugt_recommend", histories, concurrency=8):
        time.sleep(1.0)
        paused = time.monotonic()
        os.kill(stub.pid, signal.SIGSTOP)
        time.sleep(3.0)
        os.kill(stub.pid, signal.SIGCONT)
        time.sleep(10.0)
    if serve.server_pid() == pid and proc_stat(pid) is not None and serve.output.count("again (pid") == restarts:
        _answers_within(serve.url, 60)
        crashed = "no crash"
    else:
        serve.wait_for(r"again \(pid", count=restarts + 1, timeout_s=240)
        _answers_within(serve.url, 60)
        assert orphans_of(pid) == [] and not before & serve.regions()
        crashed = re.findall(rf"tritonserver \(pid {pid}\) (was killed by \w+|exited with code \d+)", serve.output)
    _answers_within(serve.url, 5)
    print(f"\nstub paused 3 s under load: {crashed}; answering again {time.monotonic() - paused:.1f} s after the pause")


def test_sigterm_leaves_no_server_stub_or_region_behind(serve):
    pid = serve.server_pid()
    serve.process.send_signal(signal.SIGTERM)
    assert serve.process.wait(60) == 0, serve.output
    assert "tritonserver stopped" in serve.output
    assert proc_stat(pid) is None and orphans_of(pid) == [] and stubs_of(pid) == []
    assert serve.regions() == set()


def test_sigterm_during_the_start_stops_it(built, tmp_path):
    _, result = built
    served = Serve(result.repository, tmp_path)
    try:
        served.wait_for("Operator key:")
        deadline = time.monotonic() + 60
        while not _servers_of(served) and time.monotonic() < deadline:
            time.sleep(0.05)
        (pid,) = _servers_of(served)
        time.sleep(1.0)  # loading its models
        assert "Serving" not in served.output
        asked = time.monotonic()
        served.process.send_signal(signal.SIGTERM)
        assert served.process.wait(60) == 0, served.output
        took = time.monotonic() - asked
    finally:
        served.stop()
    assert proc_stat(pid) is None and orphans_of(pid) == [] and served.regions() == set()
    print(f"\nSIGTERM during the start: serve exited after {took:.1f} s")
    assert took < 10


def test_sigterm_during_a_restart_stops_it_within_10_s(built, tmp_path):
    _, result = built
    served = Serve(result.repository, tmp_path)
    try:
        served.wait_for(SERVING.pattern)
        dead = served.server_pid()
        os.kill(dead, signal.SIGKILL)
        served.wait_for("Restarting tritonserver in")
        deadline = time.monotonic() + 60
        while not (started := [pid for pid in _servers_of(served) if pid != dead]) and time.monotonic() < deadline:
            time.sleep(0.05)
        (pid,) = started  # the restart is starting its new server
        asked = time.monotonic()
        served.process.send_signal(signal.SIGTERM)
        assert served.process.wait(60) == 0, served.output
        took = time.monotonic() - asked
    finally:
        served.stop()
    assert "again (pid" not in served.output
    assert proc_stat(pid) is None and orphans_of(pid) == [] and served.regions() == set()
    print(f"\nSIGTERM during a restart: serve exited after {took:.1f} s")
    assert took < 10


def _servers_of(served: Serve) -> list[int]:
    """The tritonserver processes that `served` started (children whose command line carries its region prefix)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0") if entry.name.isdigit() else []
        except OSError:
            continue
        ours = argv and argv[0].endswith(b"tritonserver") and served.shm_prefix().encode() in b" ".join(argv)
        if ours and (proc_stat(int(entry.name)) or ["", ""])[1] == str(served.process.pid):
            found.append(int(entry.name))
    return found


def test_serve_gives_up_when_tritonserver_keeps_dying(built, tmp_path):
    _, result = built
    served = Serve(result.repository, tmp_path, "--max-restarts", "0")
    try:
        served.wait_for(SERVING.pattern)
        pid = served.server_pid()
        os.kill(pid, signal.SIGKILL)
        assert served.process.wait(60) == 3
    finally:
        served.stop()
    time.sleep(0.2)  # the reader thread takes the last lines
    assert "giving up" in served.output and "was killed by SIGKILL" in served.output
    assert orphans_of(pid) == [] and served.regions() == set()


def test_a_reload_that_hangs_is_a_failed_heal_and_the_restarted_server_serves(built, tmp_path):
    """Issue 22: a stub killed while Triton started it for the watchdog's reload left the load pending for good:
    every request failed (watched 12 min) while readiness said 200, and nothing restarted the server."""
    _, result = built
    served = Serve(result.repository, tmp_path, "--heal-timeout", "10")
    try:
        served.wait_for(SERVING.pattern)
        pid = served.server_pid()
        _hang_a_reload(served)
        hung = time.monotonic()
        served.wait_for(r"the watchdog gave up: healing failed 3 times in a row", timeout_s=240)
        served.wait_for(r"again \(pid", timeout_s=240)
        _answers_within(served.url, 120)
        print(f"\nreload hung -> answering again after {time.monotonic() - hung:.1f} s (a restart)")
        assert "its reload did not finish within 10 s" in served.output, served.output
        assert served.server_pid() != pid and proc_stat(pid) is None and orphans_of(pid) == []
    finally:
        served.stop()


def test_serve_killed_or_stopped_while_a_reload_hangs(built, tmp_path):
    """kill -9 of serve: its tritonserver dies with it (it lived on, on the ports, with its regions), and the next
    serve removes the regions and the temporary folder it left; SIGTERM stops serve within 10 s (it did not stop
    in 30-35 s, twice) while a reload hangs."""
    _, result = built
    (tmp_path / "first").mkdir()
    (tmp_path / "second").mkdir()
    first = Serve(result.repository, tmp_path / "first")
    try:
        first.wait_for(SERVING.pattern)
        server, regions = first.server_pid(), first.regions()
        (folder,) = Path(tempfile.gettempdir()).glob(f"ugt-triton-{first.process.pid}-*")
        _hang_a_reload(first)
        _still_hung(first)
        first.process.kill()
        killed = time.monotonic()
        while (proc_stat(server) or ["Z"])[0] != "Z" and time.monotonic() - killed < 30:
            time.sleep(0.05)
        died = time.monotonic() - killed
        assert (proc_stat(server) or ["Z"])[0] == "Z", "tritonserver outlived serve"
        left = first.regions()
        assert folder.is_dir() and regions
    finally:
        first.stop()
    second = Serve(result.repository, tmp_path / "second")
    try:
        second.wait_for(SERVING.pattern)
        assert "Removed what dead serve processes left" in second.output and not folder.exists()
        assert first.regions() == set()
        server = second.server_pid()
        _hang_a_reload(second)
        _still_hung(second)
        asked = time.monotonic()
        second.process.send_signal(signal.SIGTERM)
        assert second.process.wait(60) == 0, second.output
        took = time.monotonic() - asked
    finally:
        second.stop()
    print(
        f"\nkill -9 of serve: tritonserver gone after {died:.1f} s, {len(left)} region(s) and its folder left, "
        f"removed by the next serve; SIGTERM while a reload hangs: serve exited after {took:.1f} s"
    )
    assert took < 10
    assert proc_stat(server) is None and orphans_of(server) == [] and second.regions() == set()


def _hang_a_reload(served: Serve) -> None:
    """kill -9 the model step's stub, then the stub Triton starts for the watchdog's reload (as an OOM kill during
    its initialisation would): Triton's load of the step never finishes (5 of 5 tries; kill -9 twice 0.6 s apart,
    the issue's recipe, hung it 0 of 2 times here)."""
    pid = served.server_pid()
    dead = [s.pid for s in stubs_of(pid) if s.model == "ugt_trt"]
    for stub in dead:
        os.kill(stub, signal.SIGKILL)
    deadline = time.monotonic() + 60
    while not (new := [s.pid for s in stubs_of(pid) if s.model == "ugt_trt" and s.pid not in dead]):
        assert time.monotonic() < deadline, f"no reload started:\n{served.output}"
        time.sleep(0.005)
    os.kill(new[0], signal.SIGKILL)
    served.wait_for("ugt_trt is broken")


def _still_hung(served: Serve) -> None:
    """The reload has not ended 5 s later, and requests fail."""
    time.sleep(5.0)
    assert not re.search(r"ugt_trt (answers again|still broken)", served.output), served.output
    with pytest.raises(ServerError):
        probe_ensemble(served.url, "ugt_recommend", timeout_s=5)


def _answers_within(url: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            probe_ensemble(url, "ugt_recommend", timeout_s=5)
            return
        except Exception:  # noqa: BLE001 - not yet (a refused connection included)
            assert time.monotonic() < deadline, "no answer"
            time.sleep(0.1)
