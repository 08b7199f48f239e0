"""Version operations at once against a served repository, through the CLI, with traffic on the server:
two deploys give N+1 and N+2 (never */N/N/), the manifest matches what the server answers with; a cleanup
beside a variant keeps the variant's version; a rollback asked for during a deploy waits and stays.

The tests share one server and repository and run in file order (each copes with the state it finds).
Each catalog has its own item ids, so an answer's item ids tell which catalog, hence which version,
served it.
"""

import concurrent.futures
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import tritonclient.grpc as grpcclient

from ugt_ensemble.build import build_repository
from ugt_ensemble.catalog import Catalog, save_catalog_csv, synthetic_catalog
from ugt_ensemble.client.grpc_client import history_tensor
from ugt_ensemble.config import BuildConfig, ExportConfig, TritonConfig
from ugt_ensemble.histories import history_json, random_history
from ugt_ensemble.repository.deployment import validate_deployment
from ugt_ensemble.repository.lock import LOCK_FILE, RepositoryBusyError, RepositoryLock, read_holder
from ugt_ensemble.runtime.contract import ITEM_IDS
from ugt_ensemble.server import TritonServer
from ugt_ensemble.server.context import EXPLICIT_ARGS
from ugt_ensemble.serving.rollout import Rollout
from ugt_ensemble.serving.versions import VersionedRepository
from ugt_ensemble_dev.traffic import Traffic

EXPLICIT = EXPLICIT_ARGS  # explicit model control, as serve runs it
SEED = 4
ROOT = Path(__file__).parents[2]
STEPS = ("preprocess", "ugt_trt", "postprocess")


def _catalog(offset: int, seed: int) -> Catalog:
    base = synthetic_catalog(1500, seed=seed)
    return Catalog.from_arrays(base.item_ids + offset, base.codes, base.codebook_sizes, f"catalog +{offset}")


@pytest.fixture(scope="module")
def catalogs(tmp_path_factory):
    """Catalog A (built) and B, C, D (deployed), each with its own item ids, saved as CSV."""
    folder = tmp_path_factory.mktemp("catalogs")
    result = {}
    for name, offset, seed in (("A", 0, SEED), ("B", 100_000, 5), ("C", 200_000, 6), ("D", 300_000, 7)):
        result[name] = _catalog(offset, seed)
        save_catalog_csv(result[name], folder / f"{name}.csv")
    return result, folder


@pytest.fixture(scope="module")
def served(tmp_path_factory, catalogs, tiny_config):
    root = tmp_path_factory.mktemp("ops") / "repo"
    config = BuildConfig(
        output_dir=root, model_config=tiny_config, seed=SEED, triton=TritonConfig.cpu(),
        export=ExportConfig(precision="fp32", max_seq_length=128, validation_shapes=((1, 1), (4, 64))),
    )  # fmt: skip
    build_repository(config, catalog=catalogs[0]["A"])
    log = root.parent / "tritonserver.log"
    with TritonServer(root, ready_models=["ugt_recommend"], extra_args=EXPLICIT, log_path=log) as server:
        yield server


@pytest.fixture(scope="module")
def histories(catalogs):
    rng = np.random.default_rng(3)
    ids = catalogs[0]["A"].item_ids
    return ["[]"] + [history_json(random_history(ids, int(n), rng)) for n in rng.integers(1, 60, 15)]


def _cli(server, *args: str, stderr_path: Path | None = None) -> subprocess.Popen:
    """The CLI against the served repository; its stderr to `stderr_path` when given (to watch it while it runs)."""
    env = {**os.environ, "UGT_OPERATOR_KEY": server.operator_key.value}
    command = [sys.executable, "-m", "ugt_ensemble", *args, "--model-repository", str(server.model_repository),
               "--url", server.grpc_url]  # fmt: skip
    stderr = stderr_path.open("w") if stderr_path else subprocess.PIPE
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=stderr, text=True)
    process.stderr_path = stderr_path  # type: ignore[attr-defined]
    return process


def _finish(process: subprocess.Popen, timeout_s: float = 600) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=timeout_s)
    path = getattr(process, "stderr_path", None)
    return process.returncode, out, path.read_text() if path else err


def _wait_for_text(process: subprocess.Popen, text: str, timeout_s: float = 120) -> None:
    """Until `process` has written `text` to its stderr file (an event, however fast or slow the machine)."""
    deadline = time.monotonic() + timeout_s
    while text not in process.stderr_path.read_text():  # type: ignore[attr-defined]
        assert process.poll() is None and time.monotonic() < deadline, _finish(process)
        time.sleep(0.05)


def _answered(server, model: str = "ugt_recommend") -> set[int]:
    """The item ids the server answers an empty history with, through a real inference."""
    with grpcclient.InferenceServerClient(server.grpc_url) as client:
        result = client.infer(model, [history_tensor(["[]"])])
    items = result.as_numpy(ITEM_IDS)[0]
    return set(items[items >= 0].tolist())


def _catalog_of(items: set[int], catalogs: dict[str, Catalog]) -> str:
    names = [name for name, c in catalogs.items() if items <= set(c.item_ids.tolist())]
    assert len(names) == 1, (sorted(items)[:5], names)
    return names[0]


def _waited(text: str) -> float:
    marker = "waited "
    return float(text.split(marker)[1].split(" s")[0]) if marker in text else 0.0


def test_two_deploys_at_once_give_two_consistent_versions(served, catalogs, histories, tmp_path):
    """Both deploys start while this test holds the repository's lock, and it lets go only once both wait for
    it (their stderr says so), so they are at once however fast the machine is."""
    catalog_by_name, folder = catalogs
    root = served.model_repository
    first = max(VersionedRepository(root).numbers())
    start = time.monotonic()
    with Traffic(served.grpc_url, "ugt_recommend", histories, concurrency=4) as traffic:
        with RepositoryLock(root, "the test, until both deploys wait"):
            deploys = {name: _cli(served, "deploy", "--catalog", str(folder / f"{name}.csv"),
                                  stderr_path=tmp_path / f"{name}.err") for name in ("B", "C")}  # fmt: skip
            for process in deploys.values():
                _wait_for_text(process, "waiting for")
        results = {name: _finish(process) for name, process in deploys.items()}
        time.sleep(1)
    elapsed = time.monotonic() - start
    for name, (rc, out, err) in results.items():
        assert rc == 0, (name, out, err[-2000:])
        assert "waiting for the test, until both deploys wait" in err, err[-2000:]
    number = {name: int(out.split("Deployed version ")[1].split()[0]) for name, (_, out, _) in results.items()}
    assert sorted(number.values()) == [first + 1, first + 2], results
    later = max(number, key=number.get)
    waits = [_waited(out) for _, out, _ in results.values()]

    repo = VersionedRepository(root)
    assert repo.numbers()[-2:] == [first + 1, first + 2] and repo.pinned() == first + 2
    nested = [p for step in STEPS for p in (root / step).glob("*/*") if p.is_dir() and p.name.isdigit()]
    assert nested == [], nested  # nothing landed in */N/N/
    for name, version in number.items():
        assert repo.manifest["versions"][str(version)]["catalog"]["fingerprint"] == catalog_by_name[name].fingerprint()
    assert _catalog_of(_answered(served), catalog_by_name) == later  # the manifest's served version answers
    assert validate_deployment(root)["valid"], validate_deployment(root)["errors"]
    answers = traffic.stop()
    assert len(answers) > 20 and traffic.failures == [], traffic.failures[:3]
    print(f"\ntwo deploys at once: {elapsed:.1f} s, lock waits {waits}, {len(answers)} requests, "
          f"{len(traffic.failures)} failed")  # fmt: skip


def test_cleanup_beside_a_variant_keeps_its_version_and_the_variant_answers(served, catalogs, histories):
    catalog_by_name, folder = catalogs
    root = served.model_repository
    if len(VersionedRepository(root).numbers()) < 3:  # run alone: make an older version to clean up
        assert _finish(_cli(served, "deploy", "--catalog", str(folder / "B.csv")))[0] == 0
        assert _finish(_cli(served, "deploy", "--catalog", str(folder / "C.csv")))[0] == 0
    numbers = VersionedRepository(root).numbers()
    oldest, newest = numbers[0], numbers[-1]
    rc, out, err = _finish(_cli(served, "variant", "--name", "ugt_recommend_old", "--version", str(oldest)))
    assert rc == 0, err
    variant_catalog = _catalog_of(_answered(served, "ugt_recommend_old"), catalog_by_name)
    with Traffic(served.grpc_url, "ugt_recommend_old", histories, concurrency=4) as traffic:
        time.sleep(1)
        rc, out, err = _finish(_cli(served, "versions", "--cleanup", "--keep", "1"))
        time.sleep(2)
    assert rc == 0, err
    assert f"Deleted versions {[v for v in numbers if v not in (oldest, newest)]}" in out, out
    assert f"Kept version {oldest}: served by ugt_recommend_old" in out, out
    assert f"variant ugt_recommend_old serves version {oldest}" in out, out
    assert f"on {served.grpc_url}: version {oldest} served by ugt_recommend_old" in out, out
    answers = traffic.stop()
    assert len(answers) > 10 and traffic.failures == [], traffic.failures[:3]
    repo = VersionedRepository(root)
    assert repo.numbers() == [oldest, newest] and repo.loaded_policy() == [oldest, newest]
    assert _catalog_of(_answered(served, "ugt_recommend_old"), catalog_by_name) == variant_catalog
    assert validate_deployment(root)["valid"], validate_deployment(root)["errors"]
    with grpcclient.InferenceServerClient(served.grpc_url) as client:
        index = client.get_model_repository_index(headers=served.grpc_operator_headers()).models
    assert sorted(int(m.version) for m in index if m.name == "ugt_trt" and m.state == "READY") == [oldest, newest]
    print(f"\ncleanup beside a variant: {len(answers)} variant requests, {len(traffic.failures)} failed")


def test_a_rollback_during_a_deploy_waits_for_it_and_is_not_undone(served, catalogs, histories):
    catalog_by_name, folder = catalogs
    root = served.model_repository
    before, answered_before = VersionedRepository(root).pinned(), _answered(served)
    with Traffic(served.grpc_url, "ugt_recommend", histories, concurrency=4) as traffic:
        deploy = _cli(served, "deploy", "--catalog", str(folder / "D.csv"))
        deadline = time.monotonic() + 120
        while read_holder(root / LOCK_FILE).get("pid") != deploy.pid:
            assert deploy.poll() is None and time.monotonic() < deadline, _finish(deploy)
            time.sleep(0.05)
        # in this process: a data-only deploy holds the lock for about a second, less than a CLI's start takes
        with pytest.raises(RepositoryBusyError, match=f"held by deploy \\(pid {deploy.pid}"):
            Rollout(root, served.grpc_url, served.operator_key, lock_timeout_s=0.2).rollback()
        started, rollout = time.monotonic(), Rollout(root, served.grpc_url, served.operator_key)
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            rollback = pool.submit(rollout.rollback)
            rc, deploy_out, deploy_err = _finish(deploy)
            assert rc == 0, deploy_err[-2000:]
            assert rollback.result(timeout=600) == before
        rollback_s = time.monotonic() - started
        time.sleep(3)  # nothing undoes it later
    deployed = int(deploy_out.split("Deployed version ")[1].split()[0])
    # it waited for the deploy (how long depends on how fast the deploy is: 0.2 s to seconds)
    assert deployed == max(VersionedRepository(root).numbers()) and rollout.lock_waited_s > 0, rollout.lock_waited_s
    assert VersionedRepository(root).pinned() == before and _answered(served) == answered_before
    answers = traffic.stop()
    assert traffic.failures == [], traffic.failures[:3]
    assert json.loads((root / "ugt_build.json").read_text())["versions"][str(deployed)]["catalog"]["fingerprint"] == (
        catalog_by_name["D"].fingerprint()
    )
    print(f"\nrollback during a deploy: waited {rollout.lock_waited_s:.1f} s ({rollback_s:.1f} s in all), "
          f"{len(answers)} requests, {len(traffic.failures)} failed")  # fmt: skip


def test_a_load_that_misses_its_deadline_ends_the_operation_with_a_clear_error(served):
    """A load pending for good (a stub killed while Triton starts it) must not hold a deploy, and the repository
    lock, for as long: every load of a version operation has a deadline, and missing it is a ServerError."""
    from ugt_ensemble.errors import ServerError
    from ugt_ensemble.serving.live import LiveServer

    live = LiveServer(served.grpc_url, served.operator_key, load_timeout_s=1e-6)
    started = time.monotonic()
    with pytest.raises(ServerError, match=r"loading preprocess did not finish within 1e-06 s"):
        live.load("preprocess")
    assert time.monotonic() - started < 10
    LiveServer(served.grpc_url, served.operator_key).load("preprocess")  # with its deadline, it loads
