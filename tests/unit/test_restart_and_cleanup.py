"""The pieces of `serve`'s supervision that need no tritonserver: restart bounds, exit descriptions, which
models should be serving, the heal counter, and the removal of a dead server's stubs and shared memory
(with real processes that carry a stub's command line)."""

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from ugt_ensemble.server.orphans import SHM_DIR, clean_up_after, mapped_regions, new_shm_prefix, shm_prefix_args
from ugt_ensemble.server.restore import HEAL_PARAMETER, bumped_config, expected_models, unloaded
from ugt_ensemble.server.stubs import STUB, orphans_of, proc_stat
from ugt_ensemble.server.supervisor import RestartPolicy, describe_exit

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
