"""`rules latency`: closed-loop load through the ensemble for each rule variant (no rule, exclude-history, 1,000
exclusions, an allow-list) at each concurrency, on the same seeded histories, with the product's load client.

Before any timed run every variant's documents are sent once (the warm-up of each step's caches) and the answers
are checked: failures, answers short of K, items the rule forbids. Runs are interleaved (round, concurrency,
variant), so slow drift of the machine affects every variant alike; with several rounds each row is the
median-throughput run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import tritonclient.grpc as grpcclient

from ugt_ensemble.client.grpc_client import history_tensor
from ugt_ensemble.client.load import LoadSpec, run_load
from ugt_ensemble.client.load_results import BenchmarkResult, median_run
from ugt_ensemble.runtime.contract import CATALOG_DIR, ITEM_IDS, SCORES, SEMANTIC_IDS
from ugt_ensemble_dev.bench.rules_documents import RuleCheck, check_answers, ranked_exclusions, rule_document
from ugt_ensemble_dev.bench.rules_report import markdown, seeded_histories


@dataclass
class VariantTarget:
    """One variant as a load-client target: workload item i is its HISTORY document for history i."""

    name: str
    model: str
    workload: list[str]
    _inputs: list = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        self._inputs = [[history_tensor([document])] for document in self.workload]
        self._outputs = [grpcclient.InferRequestedOutput(n) for n in (ITEM_IDS, SCORES, SEMANTIC_IDS)]

    async def request(self, client, i: int) -> None:  # noqa: ANN001 - tritonclient's asyncio client
        await client.infer(self.model, self._inputs[i], outputs=self._outputs)


@dataclass(frozen=True)
class LatencyOptions:
    """What `rules latency` runs (see `rules.parser`)."""

    repository: Path
    variants: tuple[str, ...]
    concurrency: tuple[int, ...] = (1, 8)
    seconds: float = 20.0
    history_length: int = 100
    histories: int = 64
    exclusions: int = 1000
    exclusion_rounds: int = 4
    set_name: str = "allow"
    warmup: int = 50
    rounds: int = 1
    seed: int = 0


def allowed_items(repository: Path, set_name: str) -> set[int] | None:
    """The item ids of the served catalog's set `set_name` (None where the repository has no such set)."""
    from ugt_ensemble.repository.inspect import RepositoryInfo, latest_version
    from ugt_ensemble.runtime.constraint_data import ConstraintData

    info = RepositoryInfo.read(repository)
    folder = repository / info.preprocess / str(latest_version(repository / info.preprocess)) / CATALOG_DIR
    data = ConstraintData.load(folder)
    mask = data.named_sets().get(set_name)
    return None if mask is None else set(data.index.item_ids[mask].tolist())


def prepare_documents(client, options: LatencyOptions, item_ids: np.ndarray, k: int, allowed: set[int] | None):  # noqa: ANN001, ANN201
    """{variant: documents} on the same seeded histories, and each variant's `RuleCheck` of one pass of them."""
    histories = seeded_histories(item_ids, options.histories, options.history_length, options.seed)
    exclusions: list[list[int]] = [[] for _ in histories]
    if any("exclusions" in variant for variant in options.variants):
        rounds = min(options.exclusion_rounds, options.exclusions // max(k, 1))
        exclusions = ranked_exclusions(client, histories, item_ids, options.exclusions, rounds, options.seed + 1)
    documents, checks = {}, []
    for variant in options.variants:
        documents[variant] = [rule_document(variant, h, x, options.set_name) for h, x in zip(histories, exclusions)]
        answers = client.recommend_results(documents[variant])
        checks.append(check_answers(variant, histories, answers, k, exclusions, allowed))
    return documents, checks


def measure(url: str, model: str, documents: dict[str, list[str]], options: LatencyOptions) -> list[BenchmarkResult]:
    """Every (round, concurrency, variant) run, interleaved; the median-throughput run of each pair."""
    targets = [VariantTarget(variant, model, docs) for variant, docs in documents.items()]
    runs: dict[tuple[str, int], list[BenchmarkResult]] = {}
    for _ in range(options.rounds):
        for concurrency in options.concurrency:
            spec = LoadSpec(concurrency, 1, options.seconds, options.warmup)
            for target in targets:
                runs.setdefault((target.name, concurrency), []).append(run_load(target, url, spec, False))
    results = [median_run(attempts, key=lambda r: r.throughput) for attempts in runs.values()]
    order = {v: i for i, v in enumerate(documents)}
    return sorted(results, key=lambda r: (r.concurrency, order[r.target]))


def ratio(value: float, reference: float) -> float | None:
    """value / reference, None where either is missing or the reference is 0."""
    if math.isnan(value) or math.isnan(reference) or reference == 0:
        return None
    return value / reference


def latency_table(results: Sequence[BenchmarkResult]) -> str:
    """The runs as Markdown, each with its p50 and throughput as ratios to the "none" run at its concurrency."""
    reference = {r.concurrency: r for r in results if r.target == "none"}
    rows = []
    for r in results:
        base = reference.get(r.concurrency)
        rows.append([
            r.target, r.concurrency, r.total_requests, r.throughput, r.latency_p50, r.latency_p90, r.latency_p99,
            r.failed_requests, ratio(r.latency_p50, base.latency_p50) if base else None,
            ratio(r.throughput, base.throughput) if base else None,
        ])  # fmt: skip
    header = ["variant", "conc.", "requests", "throughput (req/s)", "p50 ms", "p90 ms", "p99 ms", "failures",
              "p50 / none", "throughput / none"]  # fmt: skip
    return markdown(header, rows)


def check_table(checks: Sequence[RuleCheck]) -> str:
    """The answer checks as Markdown."""
    rows = [[c.variant, c.requests, c.failed, c.short, c.violations, c.first_error or None] for c in checks]
    return markdown(["variant", "requests", "failed", "short of K", "rule violations", "first error"], rows)


def run_latency(options: LatencyOptions) -> str:
    """Serve the repository, check every variant, measure them; returns the Markdown report."""
    from ugt_ensemble.client import RecommendClient
    from ugt_ensemble.repository.inspect import RepositoryInfo
    from ugt_ensemble.server import TritonServer

    info = RepositoryInfo.read(options.repository)
    wants_allow = any("allow" in variant for variant in options.variants)
    allowed = allowed_items(options.repository, options.set_name) if wants_allow else None
    with TritonServer(options.repository, ready_models=[info.ensemble]) as server:
        with RecommendClient(server.grpc_url, info.ensemble) as client:
            documents, checks = prepare_documents(
                client, options, info.index.item_ids, info.num_recommendations, allowed
            )
        results = measure(server.grpc_url, info.ensemble, documents, options)
    o, k = options, info.num_recommendations
    settings = (
        f"{len(info.index)} items; {o.histories} seeded histories of {o.history_length} events; {o.seconds:g} s "
        f"per run after {o.warmup} warm-up requests; {o.rounds} round(s); exclusions: {o.exclusions} ids (the "
        f"model's top {min(o.exclusion_rounds, o.exclusions // max(k, 1)) * k}, then random); allow-list: set "
        f"`{o.set_name}` ({len(allowed) if allowed is not None else '?'} items)"
    )
    return "\n".join([settings, "", "Answer check (one pass of every document):", "", check_table(checks), "",
                      latency_table(results)])  # fmt: skip
