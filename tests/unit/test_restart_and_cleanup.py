"""The pieces of `serve`'s supervision that need no tritonserver: restart bounds, exit descriptions, which
models should be serving, the heal counter, the watchdog's deadlines, the parent-death signal, and the removal
of a dead server's (and a dead serve's) stubs, shared memory and folders (with real processes that carry a
stub's or a tritonserver's command line)."""

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from ugt_ensemble.server.deadlines import LoadDeadlines, is_deadline
from ugt_ensemble.server.locate import TritonInstall
from ugt_ensemble.server.orphans import SHM_DIR, clean_up_after, mapped_regions, new_shm_prefix, shm_prefix_args
from ugt_ensemble.server.process import WORKDIR_PREFIX, TritonServer
from ugt_ensemble.server.restore import HEAL_PARAMETER, bumped_config, expected_models, unloaded
from ugt_ensemble.server.stubs import STUB, orphans_of, proc_stat
from ugt_ensemble.server.supervisor import RestartPolicy, describe_exit
from ugt_ensemble.server.sweep import SERVE_FOLDER, sweep_dead_serves

#: A stand-in stub's model.py: maps its region and sleeps (its command line reads like a stub's, see `_fake_stub`).
FAKE_STUB = """
import mmap, os, sys, time
fd = os.open("/dev/shm/" + sys.argv[1], os.O_RDWR)
region = mmap.mmap(fd, 4096)
print("mapped", flush=True)
time.sleep(600)
"""


def test_restart_backoff_doubles_from_one_second_up_to_thirty():
    policy = RestartPolicy()
    assert [policy.backoff_s(n) for n in range(1, 8)] == [1, 2, 4, 8, 16, 30, 30]
    assert (policy.max_restarts, policy.window_s) == (5, 600.0)


def test_exit_descriptions_name_the_signal():
    assert describe_exit(-signal.SIGSEGV) == "was killed by SIGSEGV"
    assert describe_exit(-signal.SIGABRT) == "was killed by SIGABRT"
    assert describe_exit(1) == "exited with code 1"
    assert describe_exit(None) == "is still running"


def test_expected_models_come_from_the_manifest_with_ensembles_last(tmp_path):
    manifest = {
        "ensemble": "ugt_recommend",
        "models": ["ugt_recommend", "preprocess", "ugt_trt", "postprocess", "ugt_naive", "ugt_recommend_b"],
        "variants": {"ugt_recommend_b": 2},
    }
    (tmp_path / "ugt_build.json").write_text(json.dumps(manifest))
    assert expected_models(tmp_path, also=["extra"]) == [
        "extra",
        "postprocess",
        "preprocess",
        "ugt_naive",
        "ugt_trt",
        "ugt_recommend",
        "ugt_recommend_b",
    ]
    assert expected_models(tmp_path / "missing", also=["a"]) == ["a"]


def test_unloaded_models_are_those_listed_with_no_version_serving():
    index = [
        {"name": "preprocess", "version": "1", "state": "READY"},
        {"name": "ugt_trt", "version": "1", "state": "UNAVAILABLE", "reason": "unloaded"},
        {"name": "ugt_trt", "version": "2", "state": "UNAVAILABLE", "reason": "unloaded"},
        {"name": "postprocess", "version": "1", "state": "UNAVAILABLE"},
        {"name": "postprocess", "version": "2", "state": "LOADING"},
        {"name": "ugt_recommend"},  # never loaded: listed without a state
    ]
    expected = ["preprocess", "ugt_trt", "postprocess", "gone", "ugt_recommend"]
    assert unloaded(index, expected) == ["ugt_trt", "ugt_recommend"]


def test_the_heal_counter_changes_the_config_and_nothing_else():
    config = {"name": "preprocess", "parameters": {"catalog_file": {"string_value": "c.npz"}}, "max_batch_size": 8}
    once = bumped_config(config)
    twice = bumped_config(once)
    assert once["parameters"][HEAL_PARAMETER] == {"string_value": "1"}
    assert twice["parameters"][HEAL_PARAMETER] == {"string_value": "2"}
    assert {k: v for k, v in twice["parameters"].items() if k != HEAL_PARAMETER} == config["parameters"]
    assert twice["max_batch_size"] == 8 and HEAL_PARAMETER not in config["parameters"]  # the input is left alone


def test_serve_names_its_regions_with_its_own_prefix():
    prefix = new_shm_prefix()
    assert prefix.startswith(f"ugt_serve_{os.getpid()}_") and prefix != new_shm_prefix()
    assert shm_prefix_args(prefix) == (f"--backend-config=python,shm-region-prefix-name={prefix}",)


@pytest.mark.skipif(not SHM_DIR.is_dir(), reason="needs /dev/shm")
def test_clean_up_after_a_dead_server_removes_its_orphans_and_regions_only(tmp_path):
    prefix = new_shm_prefix()
    dead_server = _dead_pid()
    other_server = os.getpid()  # alive: its stubs and regions must stay
    names = {key: f"{prefix}{key}_{uuid.uuid4()}" for key in ("orphan", "stale", "other")}
    foreign = f"triton_python_backend_shm_region_{uuid.uuid4()}"  # another server's, by the default name
    for name in [*names.values(), foreign]:
        (SHM_DIR / name).write_bytes(b"\0" * 8192)
    model = tmp_path / "model.py"
    model.write_text(FAKE_STUB)
    orphan = _fake_stub(model, names["orphan"], dead_server)
    bystander = _fake_stub(model, foreign, other_server)
    keeper = _mapper(SHM_DIR / names["other"])  # a live process maps a region with our prefix
    try:
        assert [o.pid for o in orphans_of(dead_server)] == [orphan.pid]
        assert {names["orphan"], foreign, names["other"]} <= mapped_regions()
        done = clean_up_after(dead_server, prefix)
        assert done.stubs == [orphan.pid] and proc_stat(orphan.pid) is None  # killed, and reaped: it is our child
        assert sorted(done.regions) == sorted([names["orphan"], names["stale"]]) and done.bytes == 2 * 8192
        assert bystander.poll() is None and keeper.poll() is None
        assert sorted(p.name for p in SHM_DIR.iterdir() if p.name.startswith(prefix)) == [names["other"]]
        assert (SHM_DIR / foreign).exists()
    finally:
        for process in (orphan, bystander, keeper):
            process.kill()
            process.wait()
        for name in [*names.values(), foreign]:
            (SHM_DIR / name).unlink(missing_ok=True)


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def _fake_stub(model: Path, region: str, server_pid: int) -> subprocess.Popen:
    """Python running `model` with the command line of a stub: [stub, model.py, region, size, growth, server pid]."""
    argv = [str(model.parent / STUB), str(model), region, "1048576", "1048576", str(server_pid)]
    process = subprocess.Popen(argv, executable=sys.executable, stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "mapped"
    return process


def _mapper(path: Path) -> subprocess.Popen:
    code = f"import mmap, os, time; m = mmap.mmap(os.open({str(path)!r}, os.O_RDWR), 4096); print('mapped', flush=True)"
    code += "; time.sleep(600)"
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "mapped"
    time.sleep(0.05)
    return process


def test_a_deadline_is_told_from_other_errors():
    from tritonclient.utils import InferenceServerException

    assert is_deadline(InferenceServerException("Deadline Exceeded", "StatusCode.DEADLINE_EXCEEDED"))
    assert not is_deadline(InferenceServerException("failed to connect", "StatusCode.UNAVAILABLE"))
    assert not is_deadline(ValueError("x"))


def test_a_reload_that_missed_its_deadline_stays_pending_until_the_model_is_healthy():
    loads = LoadDeadlines()
    loads.miss("ugt_trt", time.monotonic() - 3)
    loads.miss("ugt_trt", time.monotonic())  # the first miss is kept
    assert loads.pending_s("ugt_trt") >= 3 and loads.pending_s("preprocess") is None
    loads.settle(["ugt_trt"])  # still broken: still pending
    assert loads.pending_s("ugt_trt") is not None
    loads.settle([])  # no longer broken: the load finished after all
    assert loads.pending_s("ugt_trt") is None


def test_a_model_loading_too_long_with_nothing_ready_is_stuck():
    loads = LoadDeadlines()
    index = [
        {"name": "ugt_trt", "version": "1", "state": "LOADING"},
        {"name": "preprocess", "version": "2", "state": "LOADING"},  # a new version next to a READY one
        {"name": "preprocess", "version": "1", "state": "READY"},
        {"name": "other", "version": "1", "state": "LOADING"},  # not the manifest's
    ]
    expected = ["ugt_trt", "preprocess"]
    assert loads.stuck(index, expected, 0.2) == {}  # first seen now
    time.sleep(0.3)
    assert list(loads.stuck(index, expected, 0.2)) == ["ugt_trt"]
    assert loads.stuck([{"name": "ugt_trt", "version": "1", "state": "READY"}], expected, 0.2) == {}
    assert loads.loading == {}


def test_tritonserver_is_killed_when_its_parent_dies():
    """The parent-death signal is SIGKILL: a server whose load is stuck ignores a graceful stop (SIGTERM, SIGINT)."""
    child_code = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "signal.signal(signal.SIGINT, signal.SIG_IGN); print('ignoring', flush=True); time.sleep(600)"
    )
    code = (
        "import subprocess, sys, time; from ugt_ensemble.server.process import die_with_parent; "
        f"child = subprocess.Popen([sys.executable, '-c', {child_code!r}], preexec_fn=die_with_parent); "
        "print(child.pid, flush=True); time.sleep(600)"
    )
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    lines = {parent.stdout.readline().strip() for _ in range(2)}  # the child's pid, and its word once it ignores
    assert "ignoring" in lines, lines
    (child,) = [int(line) for line in lines if line.isdigit()]
    parent.kill()
    parent.wait()
    try:
        deadline = time.monotonic() + 30
        while (proc_stat(child) or ["Z"])[0] != "Z" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert (proc_stat(child) or ["Z"])[0] == "Z"  # dead (a zombie until init reaps it)
    finally:
        if (proc_stat(child) or ["Z"])[0] != "Z":
            os.kill(child, signal.SIGKILL)


def test_a_servers_folder_names_the_process_that_made_it(tmp_path):
    server = TritonServer(tmp_path, install=TritonInstall(tmp_path / "tritonserver"))  # never started
    try:
        assert server.log_path.parent.name.startswith(f"{WORKDIR_PREFIX}{os.getpid()}-")
        assert SERVE_FOLDER.fullmatch(server.log_path.parent.name)
    finally:
        server.__exit__(None, None, None)
    assert not server.log_path.parent.exists()


@pytest.mark.skipif(not SHM_DIR.is_dir(), reason="needs /dev/shm")
def test_a_new_serve_sweeps_what_dead_serves_left_and_nothing_else(tmp_path):
    dead, live = _dead_pid(), os.getpid()
    tag = uuid.uuid4().hex[:6]
    regions = {
        "dead": f"ugt_serve_{dead}_{tag}_{uuid.uuid4()}",
        "dead_mapped": f"ugt_serve_{dead}_{tag}_{uuid.uuid4()}",  # a live process maps it: kept
        "dead_stub": f"ugt_serve_{dead}_{tag}_{uuid.uuid4()}",
        "live": f"ugt_serve_{live}_{tag}_{uuid.uuid4()}",  # made by a live owner after it started: kept
        "reused": f"ugt_serve_{live}_{tag}_{uuid.uuid4()}",  # older than its pid's process: a reused pid
        "foreign": f"triton_python_backend_shm_region_{uuid.uuid4()}",  # not our pattern: kept
        "odd": f"ugt_serve_{dead}_x_{uuid.uuid4()}",  # not exactly our pattern: kept
    }
    for name in regions.values():
        (SHM_DIR / name).write_bytes(b"\0" * 4096)
    day_ago = time.time() - 86400
    os.utime(SHM_DIR / regions["reused"], (day_ago, day_ago))
    folders = {
        key: tmp_path / name
        for key, name in (
            ("dead", f"ugt-triton-{dead}-ab_c1"),
            ("live", f"ugt-triton-{live}-ab_c1"),
            ("old_style", "ugt-triton-ab_c1xyz"),
        )
    }
    for folder in folders.values():
        (folder / "backends").mkdir(parents=True)
    (tmp_path / f"ugt-triton-{dead}-link").symlink_to(folders["live"])  # a link is never followed nor removed
    model = tmp_path / "model.py"
    model.write_text(FAKE_STUB)
    orphan = _fake_stub(model, regions["dead_stub"], dead)  # its serve is dead
    keeper_stub = _fake_stub(model, regions["live"], dead)  # its serve lives: kept
    server = _fake_server(tmp_path, f"ugt_serve_{dead}_{tag}_")
    keeper = _mapper(SHM_DIR / regions["dead_mapped"])
    try:
        done = sweep_dead_serves(tmp_path)
        assert done.servers == [server.pid] and done.stubs == [orphan.pid], done
        assert proc_stat(server.pid) is None and proc_stat(orphan.pid) is None  # killed, and reaped (our children)
        assert sorted(done.regions) == sorted([regions["dead"], regions["dead_stub"], regions["reused"]])
        assert {p.name for p in SHM_DIR.iterdir()} >= {regions[k] for k in ("dead_mapped", "live", "foreign", "odd")}
        assert done.folders == [folders["dead"].name] and not folders["dead"].exists()
        assert folders["live"].is_dir() and folders["old_style"].is_dir()
        assert (tmp_path / f"ugt-triton-{dead}-link").is_symlink() and (folders["live"] / "backends").is_dir()
        assert keeper_stub.poll() is None and keeper.poll() is None
        assert "1 tritonserver(s) and 1 stub(s) killed, 3 shared-memory region(s)" in done.describe()
        assert not sweep_dead_serves(tmp_path)  # nothing left to sweep
    finally:
        for process in (orphan, keeper_stub, server, keeper):
            process.kill()
            process.wait()
        for name in regions.values():
            (SHM_DIR / name).unlink(missing_ok=True)


def _fake_server(folder: Path, prefix: str) -> subprocess.Popen:
    """Python with the command line of a tritonserver that a serve started: [tritonserver, script, flags]."""
    script = folder / "server.py"
    script.write_text("import time\nprint('up', flush=True)\ntime.sleep(600)\n")
    argv = [str(folder / "tritonserver"), str(script), f"--backend-config=python,shm-region-prefix-name={prefix}"]
    process = subprocess.Popen(argv, executable=sys.executable, stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "up"
    return process
