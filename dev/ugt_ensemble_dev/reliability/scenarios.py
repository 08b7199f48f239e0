"""The reliability scenarios: each runs against a live server and returns a `Section` of RELIABILITY.md.

Load (soak, overload and bursts), faults (a stub killed under load, a rollout and a rollback under load)
and bad input (poisoned BYTES tensors, the model step's memory at its largest shapes). The fuzzing of
requests is `fuzz_server`; the suite (`suite.py`) runs them all on one server and writes the report.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from ugt_ensemble.server.operator_key import OperatorKey
from ugt_ensemble_dev.reliability.load import Summary, burst, memory_mib, poisson
from ugt_ensemble_dev.traffic import Traffic


@dataclass
class Live:
    """The server the scenarios run against, the workload they send, and the key of its load API."""

    grpc_url: str
    http_url: str
    server_pid: int
    repository: Path
    ensemble: str
    histories: Sequence[str]
    operator_key: OperatorKey | None = None

    def grpc_headers(self) -> dict[str, str] | None:
        """gRPC metadata for the server's keyed APIs (load/unload), None when it has no key."""
        return self.operator_key.grpc_headers() if self.operator_key is not None else None


@dataclass
class Section:
    """A titled part of the report: Markdown text, and whether its expectations held."""

    title: str
    text: str
    ok: bool = True
    facts: dict = field(default_factory=dict)


def soak(live: Live, seconds: float, window_s: float, concurrency: int = 8) -> Section:
    """`seconds` at `concurrency`: per window, requests, failures, p50/p99 and every process's memory."""
    rows, memory = [], []
    with Traffic(live.grpc_url, live.ensemble, live.histories, concurrency) as traffic:
        start = time.monotonic()
        while time.monotonic() - start < seconds:
            time.sleep(window_s)
            memory.append((time.monotonic() - start, memory_mib(live.server_pid)))
    answers = traffic.stop()
    for t, mib in memory:
        window = [a for a in answers if t - window_s <= a.sent - start < t]
        s = Summary.of(window)
        rows.append(f"| {t:.0f} | {s.requests} | {s.failed} | {s.p50_ms:.1f} | {s.p99_ms:.1f} | " + _mib(mib) + " |")
    total = Summary.of(answers)
    names = " | ".join(memory[0][1]) if memory else ""
    text = (
        f"{total.requests} requests at concurrency {concurrency} over {seconds:.0f} s with mixed history lengths: "
        f"{total.failed} failed; p50 {total.p50_ms:.1f} ms, p99 {total.p99_ms:.1f} ms.\n\n"
        f"| s | requests | failed | p50 ms | p99 ms | {names} |\n|{'---|' * (5 + len(memory[0][1]) if memory else 5)}\n"
        + "\n".join(rows)
    )
    return Section(f"Soak: {seconds:.0f} s at concurrency {concurrency}", text, total.failed == 0, {"total": total})


def overload(live: Live, seconds: float, burst_size: int = 500) -> Section:
    """Concurrency 64 for `seconds`, then `burst_size` requests at once, then back to concurrency 1."""
    with Traffic(live.grpc_url, live.ensemble, live.histories, 64) as traffic:
        time.sleep(seconds)
    heavy = Summary.of(traffic.stop())
    start = time.monotonic()
    rushed = Summary.of(burst(live.grpc_url, live.ensemble, live.histories, burst_size))
    rush_s = time.monotonic() - start
    with Traffic(live.grpc_url, live.ensemble, live.histories, 1) as traffic:
        time.sleep(max(2.0, seconds / 4))
    after = Summary.of(traffic.stop())
    text = "\n".join(
        [
            "| load | requests | failed | p50 ms | p99 ms | max ms |",
            "|---|---|---|---|---|---|",
            _row(f"concurrency 64, {seconds:.0f} s", heavy),
            _row(f"burst of {burst_size} at once (all answered in {rush_s:.1f} s)", rushed),
            _row("then concurrency 1", after),
        ]
    )
    errors = {**heavy.errors, **rushed.errors}
    text += "\n\nErrors: " + (", ".join(f"{n} x {e!r}" for e, n in errors.items()) if errors else "none")
    return Section("Overload: concurrency 64, then a burst", text, after.failed == 0, {"burst": rushed})


def stub_kills(live: Live, steps: Sequence[str], settle_s: float, heals: Callable[[], list]) -> Section:
    """For each step: kill -9 its stub under load (concurrency 8); failed requests and time to recover."""
    from ugt_ensemble.server.stubs import stubs_of

    rows, ok = [], True
    for step in steps:
        before = len(heals())
        stub = next(s for s in stubs_of(live.server_pid) if s.model == step)
        with Traffic(live.grpc_url, live.ensemble, live.histories, 8) as traffic:
            time.sleep(1.0)
            killed = time.monotonic()
            os.kill(stub.pid, signal.SIGKILL)
            time.sleep(settle_s)
        answers = traffic.stop()
        failed = [a for a in answers if a.error]
        recovered = max((a.sent for a in failed), default=killed) - killed  # the last failed request's send time
        after = [a for a in answers if a.sent > killed + recovered]
        healed = [h for h in heals()[before:] if h.model == step]
        good = bool(after) and all(a.error is None for a in after) and bool(healed) and healed[-1].ok
        ok &= good
        heal_s = f"{healed[-1].seconds:.1f}" if healed else "-"
        rows.append(f"| {step} | {len(failed)} of {len(answers)} | {recovered:.1f} | {heal_s} | {len(after)} |")
    text = (
        "| killed stub | failed requests | last failed request sent (s after the kill) | reload took (s) | "
        "requests sent after it (all answered correctly) |\n|---|---|---|---|---|\n" + "\n".join(rows)
    )
    return Section("A stub killed under load (kill -9), healed by the watchdog", text, ok)


def poisoned_bytes(live: Live, rounds: int) -> Section:
    """Good requests at concurrency 8 while BYTES tensors with a 2 GiB length prefix arrive (gRPC, HTTP)."""
    from ugt_ensemble_dev.reliability.raw import POISON, RawGrpc, bytes_element, http_binary

    good_failed, poisoned, lock = [0], [], threading.Lock()

    def good(worker: int) -> None:
        raw = RawGrpc(live.grpc_url)
        for i in range(rounds):
            status, _ = raw.infer(
                live.ensemble, bytes_element(live.histories[(worker + i) % len(live.histories)].encode())
            )
            with lock:
                good_failed[0] += status != "OK"
        raw.close()

    def poison() -> None:
        raw = RawGrpc(live.grpc_url)
        for i in range(rounds // 2):
            poisoned.append(
                raw.infer(live.ensemble, POISON)[0] if i % 2 else http_binary(live.http_url, live.ensemble, POISON)[0]
            )
        raw.close()

    threads = [threading.Thread(target=good, args=(w,)) for w in range(8)] + [threading.Thread(target=poison)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    statuses = sorted({str(s) for s in poisoned})
    text = (
        f"{8 * rounds} good requests at concurrency 8 beside {len(poisoned)} poisoned ones: "
        f"{good_failed[0]} good requests failed; the poisoned ones got {', '.join(statuses)}."
    )
    return Section("Poisoned BYTES tensors beside good requests", text, good_failed[0] == 0)


def queue_policy(live: Live, rates: Sequence[float], seconds: float, set_policy: Callable[[bool], None]) -> Section:
    """Open-loop p99 at each rate without and with a queue policy (max_queue_size 128) on every step."""
    rows = []
    for enabled in (False, True):
        set_policy(enabled)
        for rate in rates:
            s = Summary.of(poisson(live.grpc_url, live.ensemble, live.histories, rate, int(rate * seconds)))
            rows.append(_row(f"{'with' if enabled else 'no'} queue policy, {rate:.0f} req/s", s))
    set_policy(False)
    text = "| load | requests | failed | p50 ms | p99 ms | max ms |\n|---|---|---|---|---|---|\n" + "\n".join(rows)
    return Section("Queue policy: what a bounded queue costs", text)


def _row(label: str, s: Summary) -> str:
    return f"| {label} | {s.requests} | {s.failed} | {s.p50_ms:.1f} | {s.p99_ms:.1f} | {s.max_ms:.0f} |"


def _mib(memory: dict[str, float]) -> str:
    return " | ".join(f"{v:.0f}" for v in memory.values())


def rollout(live: Live, catalog_b: Path, index_a, index_b, wait_s: float) -> Section:  # noqa: ANN001 - CatalogIndex
    """Deploy version N+1 (another catalog) and roll back, under concurrency 8: failures, p99 before and
    around each switch, and the versions answers came from by send time (by the catalog their items match)."""
    from ugt_ensemble.serving.rollout import Rollout
    from ugt_ensemble_dev.traffic import switches

    marks = {}
    with Traffic(live.grpc_url, live.ensemble, live.histories, 8) as traffic:
        time.sleep(wait_s)
        rollout = Rollout(live.repository, live.grpc_url, live.operator_key)
        marks["deploy"] = time.monotonic()
        version = rollout.deploy({}, catalog_b)
        marks["switched"] = time.monotonic()
        time.sleep(wait_s)
        marks["rollback"] = time.monotonic()
        rollout.rollback()
        marks["rolled back"] = time.monotonic()
        time.sleep(wait_s)
    answers = traffic.stop()
    labels = [_catalog_of(a, index_a, index_b) for a in answers if a.error is None]
    before = Summary.of([a for a in answers if a.sent < marks["deploy"]])
    building = Summary.of([a for a in answers if marks["deploy"] <= a.sent < marks["switched"] - 1])
    around = Summary.of(
        [a for a in answers if abs(a.sent - marks["switched"]) < 1 or abs(a.sent - marks["rolled back"]) < 1]
    )
    total = Summary.of(answers)
    runs = switches(labels)
    text = "\n".join(
        [
            f"Version {version} (catalog {catalog_b.name}) built and switched to while serving, then rolled back: "
            f"{total.failed} of {total.requests} requests failed; answers by send time came from "
            f"{' -> '.join(runs)} (by the catalog their items match).",
            "",
            "| window | requests | failed | p50 ms | p99 ms | max ms |",
            "|---|---|---|---|---|---|",
            _row("before the rollout", before),
            _row("while version N+1 was built (export and checks on the same 2 cores)", building),
            _row("within 1 s of each switch", around),
        ]
    )
    return Section("Rollout and rollback under load", text, total.failed == 0 and runs == ["A", "B", "A"])


def largest_shapes(live: Live, step: str, histories_of_1024: Sequence[str]) -> Section:
    """Two requests of 64 histories of 1024 events: the model step's resident memory afterwards."""
    import tritonclient.grpc as grpcclient

    from ugt_ensemble.client.grpc_client import history_tensor
    from ugt_ensemble.server.stubs import stubs_of

    tensor = history_tensor(histories_of_1024)
    with grpcclient.InferenceServerClient(live.grpc_url) as client:
        for _ in range(2):
            client.infer(live.ensemble, [tensor])
    rss = max(s.rss_mib for s in stubs_of(live.server_pid) if s.model == step)
    count = len(histories_of_1024)
    text = f"After 2 requests of {count} histories of 1024 events, the model step holds {rss:.0f} MiB resident."
    return Section("Memory at the largest shapes", text, rss < 600, {"rss_mib": rss})


def _catalog_of(answer, index_a, index_b) -> str:  # noqa: ANN001
    import numpy as np

    real = answer.item_ids != -1
    for label, index in (("A", index_a), ("B", index_b)):
        codes, found = index.codes_of(answer.item_ids[real])
        if found.all() and np.array_equal(codes, answer.semantic_ids[real]):
            return label
    return "mixed"
