"""Fuzz a running server: N hostile and valid requests at concurrency 8, then check it is still whole.

Every valid request must be answered as its histories were answered when each was sent alone
beforehand (or as `references` says); every invalid one must be refused with INVALID_ARGUMENT /
HTTP 400 and a short message (a request with more rows than max_batch_size: the server's own
batch-size error); the server process and every Python-backend stub must still be alive, with the
same pids, and answer a last probe as before.

Given the served `repository`, documents of the object form join in (`fuzz_rules`): valid ones with
the repository's item sets, exclusions and exclude-history, whose every answer must obey the rules
(`RuleOracle`: distinct, eligible items, min(K, eligible) of them), and invalid ones whose error must
name their defect.

    python -m ugt_ensemble_dev.reliability.fuzz_server --model-repository /tmp/fuzzrepo --requests 10000
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Sequence

from ugt_ensemble.client.results import Recommendation
from ugt_ensemble.server.stubs import proc_stat, stubs_of
from ugt_ensemble_dev.reliability.fuzz_pool import (
    answer_check,
    discover_item_ids,
    favourites,
    pool_classes,
    reference_answers,
    valid_pool,
)
from ugt_ensemble_dev.reliability.fuzz_requests import (
    GOOD_OUTCOMES,
    AnswerCheck,
    FuzzRequest,
    RequestPlanner,
    Senders,
    classify,
    compare_rows,
)
from ugt_ensemble_dev.reliability.fuzz_rules import RuleContext
from ugt_ensemble_dev.reliability.rule_oracle import RuleOracle


@dataclass
class FuzzResult:
    """Counts by outcome and by request kind, what went wrong, how long it took, and the server's state."""

    requests: int
    histories: int
    seconds: float
    outcomes: dict[str, int]
    kinds: dict[str, int]
    wrong_answers: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    server_alive: bool = True
    stubs_before: dict[str, int] = field(default_factory=dict)
    stubs_after: dict[str, int] = field(default_factory=dict)
    #: The valid pool's documents by what their rules leave (see `fuzz_pool.pool_classes`).
    pool: dict[str, int] = field(default_factory=dict)

    @property
    def stubs_alive(self) -> bool:
        """The same stub processes (instance -> pid) before and after (vacuously true without a server pid)."""
        return self.stubs_before == self.stubs_after

    @property
    def ok(self) -> bool:
        return not self.wrong_answers and not self.unexpected and self.server_alive and self.stubs_alive

    def summary(self) -> str:
        lines = [
            f"{self.requests} requests ({self.histories} histories) in {self.seconds:.1f} s: "
            + ", ".join(f"{k} {v}" for k, v in sorted(self.outcomes.items())),
            f"server alive: {self.server_alive}; stubs alive: {self.stubs_alive} "
            f"(before {self.stubs_before}, after {self.stubs_after})",
            *([f"valid pool: {self.pool}"] if self.pool else []),
            *(f"wrong: {w}" for w in self.wrong_answers[:5]),
            *(f"unexpected: {u}" for u in self.unexpected[:5]),
        ]
        return "\n".join(lines)

    def markdown(self) -> str:
        """The result as a Markdown paragraph and table (for RELIABILITY.md)."""
        rate = self.requests / self.seconds if self.seconds else 0.0
        rows = "\n".join(f"| {name} | {count} |" for name, count in sorted(self.outcomes.items()))
        problems = [f"- wrong: {w}" for w in self.wrong_answers[:5]] + [f"- {u}" for u in self.unexpected[:5]]
        return "\n".join(
            [
                f"{self.requests} requests ({self.histories} histories) in {self.seconds:.1f} s ({rate:.0f}/s); "
                f"wrong answers: {len(self.wrong_answers)}; unexpected outcomes: {len(self.unexpected)}; "
                f"server alive: {'yes' if self.server_alive else 'NO'}; "
                f"stubs alive (same pids): {'yes' if self.stubs_alive else 'NO'} ({len(self.stubs_after)} stubs).",
                *([self._rules_line()] if self.pool else []),
                "",
                "| outcome | requests |",
                "| --- | --- |",
                rows,
                *([""] + problems if problems else []),
            ]
        )

    def _rules_line(self) -> str:
        """The object form's share: the pool's documents by what their rules leave, and the defects sent."""
        pool = ", ".join(f"{name}: {count}" for name, count in sorted(self.pool.items()))
        defects = sum(count for kind, count in self.kinds.items() if kind.startswith("rules/"))
        kinds = len({kind for kind in self.kinds if kind.startswith("rules/")})
        return (
            f"Valid pool (each answered alone first): {pool}; requests whose single row has a business-rule defect: "
            f"{defects} ({kinds} kinds; more such rows inside multi-row requests)."
        )


def stub_pids(server_pid: int | None) -> dict[str, int]:
    return {} if server_pid is None else {s.instance: s.pid for s in stubs_of(server_pid)}


def server_alive(server_pid: int | None, http_url: str) -> bool:
    """The process exists and is no zombie (when its pid is known) and /v2/health/ready answers 200."""
    if server_pid is not None:
        stat = proc_stat(server_pid)
        if stat is None or stat[0] in ("Z", "X"):
            return False
    try:
        with urllib.request.urlopen(f"{http_url}/v2/health/ready", timeout=5) as response:
            return response.status == 200
    except OSError:
        return False


def model_max_batch_size(http_url: str, model: str) -> int:
    with urllib.request.urlopen(f"{http_url}/v2/models/{model}/config", timeout=10) as response:
        return int(json.load(response)["max_batch_size"])


def fuzz_server(
    grpc_url: str,
    http_url: str,
    model: str = "ugt_recommend",
    server_pid: int | None = None,
    requests: int = 1000,
    *,
    seed: int = 0,
    concurrency: int = 8,
    item_ids: Sequence[int] | None = None,
    pool_size: int = 64,
    references: Mapping[bytes, Recommendation] | None = None,
    atol: float = 1e-4,
    repository: Path | None = None,
) -> FuzzResult:
    """Send `requests` fuzzed requests at `concurrency`; check every reply and, at the end, the server.

    `item_ids` (default: what the server recommends) seed valid histories with catalog items;
    `references` maps documents to their expected answers (default: each sent alone first);
    `repository` (the served one) adds documents with business rules, checked by its `RuleOracle`.
    """
    home = Senders(grpc_url, http_url, model)
    stubs_before = stub_pids(server_pid)
    item_ids = item_ids if item_ids is not None else discover_item_ids(home)
    oracle = RuleOracle.from_repository(repository) if repository is not None else None
    rules = RuleContext(oracle, list(item_ids), favourites(home)) if oracle is not None else None
    expectations = valid_pool(pool_size, seed, item_ids, rules) if references is None else {}
    check = answer_check(oracle, expectations)
    unexpected: list[str] = []
    if references is None:
        references, unexpected = reference_answers(home, list(expectations), check)
    pool = list(references)
    plan = RequestPlanner(seed + 1, pool, item_ids, model_max_batch_size(http_url, model), rules).plan(requests)
    start = time.perf_counter()
    outcomes = _send_all(plan, lambda: Senders(grpc_url, http_url, model), concurrency, references, atol, check)
    seconds = time.perf_counter() - start
    probe, _ = compare_rows(pool[:1], home.infer_documents(tuple(pool[:1])).outputs or {}, references, atol, check)
    home.close()
    result = FuzzResult(
        requests=len(plan),
        histories=sum(r.rows for r in plan),
        seconds=seconds,
        outcomes=dict(Counter(outcome for outcome, _ in outcomes)),
        kinds=dict(Counter(r.kind for r in plan)),
        pool=pool_classes(oracle, expectations),
        unexpected=unexpected,
        server_alive=server_alive(server_pid, http_url) and probe in GOOD_OUTCOMES[:3],
        stubs_before=stubs_before,
        stubs_after=stub_pids(server_pid),
    )
    for request, (outcome, message) in zip(plan, outcomes):
        if outcome not in GOOD_OUTCOMES:
            target = result.wrong_answers if outcome in ("wrong", "ineligible") else result.unexpected
            where = f"request {request.index} ({request.transport}, {request.kind}, {request.rows} rows)"
            target.append(f"{where}: {outcome}: {message[:300]}")
    return result


def _send_all(
    plan: list[FuzzRequest],
    connect: Callable[[], Senders],
    concurrency: int,
    references: Mapping[bytes, Recommendation],
    atol: float,
    check: AnswerCheck | None = None,
) -> list[tuple[str, str]]:
    """(outcome, what was wrong and the server's status and message) of every request, sent by `concurrency`
    threads with their own connections (`connect()` opens one thread's)."""
    local, opened, lock = threading.local(), [], threading.Lock()

    def one(request: FuzzRequest) -> tuple[str, str]:
        if not hasattr(local, "senders"):
            local.senders = connect()
            with lock:
                opened.append(local.senders)
        try:
            reply = local.senders.send(request)
        except Exception as exc:  # noqa: BLE001 - a transport failure is an outcome, not a crash of the driver
            return "transport-error", f"{type(exc).__name__}: {exc}"
        outcome, problem = classify(request, reply, references, atol, check)
        return outcome, f"{problem + '; ' if problem else ''}{reply.status} {reply.message}"

    with ThreadPoolExecutor(concurrency) as pool:
        outcomes = list(pool.map(one, plan))
    for senders in opened:
        senders.close()
    return outcomes


def main(argv: Sequence[str] | None = None) -> int:
    """Fuzz a server given by its urls, or one started here on `--model-repository` (and stopped after)."""
    parser = argparse.ArgumentParser(prog="python -m ugt_ensemble_dev.reliability.fuzz_server", description=__doc__)
    parser.add_argument("--model-repository", type=Path, help="start a tritonserver on this repository")
    parser.add_argument("--grpc-url", help="a running server's gRPC url (host:port)")
    parser.add_argument("--http-url", help="a running server's HTTP url (http://host:port)")
    parser.add_argument("--server-pid", type=int, help="the running server's pid (to check it and its stubs)")
    parser.add_argument("--model", default="ugt_recommend")
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pool-size", type=int, default=64, help="distinct valid histories, each answered alone first")
    parser.add_argument(
        "--repository", type=Path, help="with --grpc-url: the served repository (adds documents with business rules)"
    )
    parser.add_argument("--json", type=Path, help="also write the result as JSON here")
    args = parser.parse_args(argv)
    if args.model_repository is None and not (args.grpc_url and args.http_url):
        parser.error("give --model-repository, or --grpc-url and --http-url")
    result = _run_cli(args)
    print(result.summary())
    if args.json:
        payload = {**asdict(result), "stubs_alive": result.stubs_alive, "ok": result.ok}
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
    return 0 if result.ok else 1


def _run_cli(args: argparse.Namespace) -> FuzzResult:
    options = dict(seed=args.seed, concurrency=args.concurrency, pool_size=args.pool_size)
    if args.model_repository is None:
        options["repository"] = args.repository
        return fuzz_server(args.grpc_url, args.http_url, args.model, args.server_pid, args.requests, **options)
    from ugt_ensemble.runtime.catalog_index import CatalogIndex
    from ugt_ensemble.runtime.contract import CATALOG_DIR
    from ugt_ensemble.server.context import ServingContext

    catalog = CatalogIndex.load(args.model_repository / "preprocess" / "1" / CATALOG_DIR)
    with ServingContext.create(args.model_repository, args.model, watch_interval_s=0) as context:
        server = context.server
        pid = server.process.pid
        return fuzz_server(
            server.grpc_url,
            server.http_url,
            args.model,
            pid,
            args.requests,
            item_ids=catalog.item_ids.tolist(),
            repository=args.model_repository,
            **options,
        )


if __name__ == "__main__":
    sys.exit(main())
