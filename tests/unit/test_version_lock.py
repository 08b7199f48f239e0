"""The repository lock of version operations: a second operation waits for the first, a timeout names the
holder, a killed holder releases it, and one thread may take it again while holding it."""

import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from ugt_ensemble.repository.lock import LOCK_FILE, RepositoryBusyError, RepositoryLock, read_holder

HOLD = """
import sys, time
from ugt_ensemble.repository.lock import RepositoryLock
with RepositoryLock(sys.argv[1], "deploy"):
    print("held", flush=True)
    time.sleep(float(sys.argv[2]))
"""


@pytest.fixture
def holder(tmp_path):
    """Start a process that holds the lock of tmp_path as a `deploy` for `seconds`; yields a starter."""
    started = []

    def start(seconds: float) -> subprocess.Popen:
        process = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path), str(seconds)], stdout=subprocess.PIPE,
                                   text=True)  # fmt: skip
        assert process.stdout.readline().strip() == "held"
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
        process.wait()


def test_a_second_operation_waits_for_the_first_and_then_holds_it(tmp_path, holder):
    process = holder(1.5)
    start = time.monotonic()
    with RepositoryLock(tmp_path, "rollback", timeout_s=30) as lock:
        waited = time.monotonic() - start
        assert process.poll() is not None, "the lock was taken while its holder still ran"
        assert read_holder(tmp_path / LOCK_FILE)["operation"] == "rollback"
    assert 0.5 < waited < 20 and lock.waited_s == pytest.approx(waited, abs=0.5)
    assert (tmp_path / LOCK_FILE).is_file() and (tmp_path / LOCK_FILE).read_text() == ""  # released: no holder


def test_the_timeout_names_the_holder_its_pid_command_and_since_when(tmp_path, holder):
    process = holder(30)
    start = time.monotonic()
    with pytest.raises(RepositoryBusyError) as caught:
        with RepositoryLock(tmp_path, "rollback", timeout_s=0.5):
            pass
    message = str(caught.value)
    assert 0.4 < time.monotonic() - start < 5
    assert "\n" not in message and "rollback waited" in message
    assert f"held by deploy (pid {process.pid}" in message and "since 20" in message and "-c" in message
    assert "--lock-timeout" in message


def test_a_killed_holder_releases_the_lock(tmp_path, holder):
    process = holder(60)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    with RepositoryLock(tmp_path, "cleanup", timeout_s=0) as lock:
        assert lock.waited_s < 1


def test_reentrant_in_one_thread_exclusive_between_threads(tmp_path):
    outcome = {}

    def other() -> None:
        try:
            with RepositoryLock(tmp_path, "variant", timeout_s=0.3):
                outcome["other"] = "held"
        except RepositoryBusyError:
            outcome["other"] = "busy"

    with RepositoryLock(tmp_path, "rollback", timeout_s=0):
        with RepositoryLock(tmp_path, "switch", timeout_s=0):  # the same thread again: no deadlock
            thread = threading.Thread(target=other)
            thread.start()
            thread.join()
        assert read_holder(tmp_path / LOCK_FILE)["operation"] == "rollback"
    assert outcome["other"] == "busy"
    with RepositoryLock(tmp_path, "variant", timeout_s=0):
        pass


def test_a_read_only_repository_is_one_line(tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root opens read-only folders for writing")
    tmp_path.chmod(0o555)
    try:
        with pytest.raises(Exception, match="cannot open the repository's lock file"):
            with RepositoryLock(tmp_path, "deploy"):
                pass
    finally:
        tmp_path.chmod(0o755)


def test_a_rebuild_during_a_version_operation_fails_at_once_naming_it(tmp_path, holder):
    from ugt_ensemble.build import build_repository
    from ugt_ensemble.config import BuildConfig

    process = holder(30)
    start = time.monotonic()
    with pytest.raises(RepositoryBusyError, match=rf"deploy.*{process.pid}|{process.pid}.*deploy"):
        build_repository(BuildConfig(output_dir=tmp_path))
    assert time.monotonic() - start < 5  # before any export work
