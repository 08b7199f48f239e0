"""The HISTORY documents of each rule variant the benchmark sends, the 1,000 exclusions per history (the items the
model ranks first, then others), and a check that the served answers obey each variant's rule."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ugt_ensemble.client import with_rules
from ugt_ensemble_dev.bench.rules_report import event_ids

#: The rule variants, in the order of the report: no rule (the plain list form), exclude the history, exclude
#: 1,000 items, draw from an allow-list, and each of the last two with the 1,000 exclusions as well.
VARIANTS: tuple[str, ...] = (
    "none", "exclude_history", "exclusions", "allow", "exclusions+exclude_history", "exclusions+allow"
)  # fmt: skip


def _rules(variant: str) -> set[str]:
    """The rules of `variant` ("a+b" combines two), checked against `VARIANTS`."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown rule variant {variant!r}; choose from {', '.join(VARIANTS)}")
    return set(variant.split("+")) - {"none"}


def rule_document(variant: str, history: list, exclusions: Sequence[int] = (), set_name: str = "allow") -> str:
    """The HISTORY document of `history` under `variant` (see `VARIANTS`), as compact JSON."""
    rules = _rules(variant)
    document: list | dict = history
    if rules:
        document = with_rules(
            history,
            exclude=exclusions if "exclusions" in rules else (),
            exclude_history=True if "exclude_history" in rules else None,
            sets=[set_name] if "allow" in rules else (),
        )
    return json.dumps(document, separators=(",", ":"))


def parse_variants(text: str) -> tuple[str, ...]:
    """Comma-separated variant names, checked; "none" is always measured first (the ratios' reference)."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        raise ValueError(f"unknown rule variant(s) {unknown}; choose from {', '.join(VARIANTS)}")
    return ("none", *[n for n in VARIANTS if n in names and n != "none"])


def fill_exclusions(ranked: Sequence[int], count: int, item_ids: np.ndarray, rng: np.random.Generator) -> list[int]:
    """`ranked` (distinct, in order) followed by seeded random other catalog items, `count` ids in all."""
    chosen = list(dict.fromkeys(int(i) for i in ranked))[:count]
    taken = set(chosen)
    while len(chosen) < count:
        for item in rng.choice(item_ids, count - len(chosen) + 16).tolist():
            if item not in taken and len(chosen) < count:
                taken.add(item)
                chosen.append(item)
    return chosen


def ranked_exclusions(
    client, histories: Sequence[list], item_ids: np.ndarray, count: int, rounds: int, seed: int,
) -> list[list[int]]:  # fmt: skip  # client: a RecommendClient
    """Per history, `count` ids to exclude: the items the served model ranks first (`rounds` answers in a row, each
    excluding the ones before), then seeded random others."""
    ranked: list[list[int]] = [[] for _ in histories]
    for _ in range(rounds):
        documents = [with_rules(h, exclude=r) if r else h for h, r in zip(histories, ranked)]
        for mine, answer in zip(ranked, client.recommend_results(documents)):
            if not answer.ok:
                raise RuntimeError(f"preparing the exclusions: the server refused a request: {answer.error}")
            mine += [item for item, _ in answer.items()]
    rng = np.random.default_rng(seed)
    return [fill_exclusions(r, count, item_ids, rng) for r in ranked]


@dataclass
class RuleCheck:
    """One variant's answers to its documents: failed requests, answers short of K, items breaking the rule."""

    variant: str
    requests: int = 0
    failed: int = 0
    short: int = 0
    violations: int = 0
    first_error: str = ""


def check_answers(
    variant: str, histories: Sequence[list], answers: Sequence, k: int, exclusions: Sequence[Sequence[int]] = (),
    allowed: set[int] | None = None,
) -> RuleCheck:  # fmt: skip
    """Count failures, answers with fewer than `k` items, and items a variant's rule forbids."""
    check = RuleCheck(variant, requests=len(answers))
    for i, answer in enumerate(answers):
        if not answer.ok:
            check.failed += 1
            check.first_error = check.first_error or answer.error[:200]
            continue
        items = [item for item, _ in answer.items()]
        check.short += len(items) < k
        rules, broken = _rules(variant), set()
        if "exclude_history" in rules:
            broken |= set(items) & set(event_ids(histories[i]))
        if "exclusions" in rules:
            broken |= set(items) & set(exclusions[i])
        if "allow" in rules and allowed is not None:
            broken |= {item for item in items if item not in allowed}
        check.violations += len(broken)
    return check
