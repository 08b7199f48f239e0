"""The valid documents a server fuzz run knows the answers of: each sent alone first, and checked.

The pool holds lists of events (and, given a `RuleContext`, objects with business rules the repository
allows), each with the `RuleExpectation` that `RuleOracle.problem` checks its answers against.
"""

from __future__ import annotations

import json
from typing import Mapping, Sequence

from ugt_ensemble.client.results import Recommendation
from ugt_ensemble_dev.reliability.fuzz import generate_cases
from ugt_ensemble_dev.reliability.fuzz_json import RandomSource
from ugt_ensemble_dev.reliability.fuzz_requests import AnswerCheck, Senders
from ugt_ensemble_dev.reliability.fuzz_rules import RuleContext, valid_rule_case
from ugt_ensemble_dev.reliability.rule_oracle import RuleExpectation, RuleOracle


def reference_answers(
    senders: Senders, documents: Sequence[bytes], check: AnswerCheck | None = None
) -> tuple[dict[bytes, Recommendation], list[str]]:
    """Each document sent alone, one after the other: its answers, and the documents refused (or answered
    against `check`)."""
    answers, refused = {}, []
    for document in dict.fromkeys(documents):
        reply = senders.infer_documents((document,))
        if reply.status == "OK":
            answer = Recommendation.from_outputs({k: v[0] for k, v in reply.outputs.items()})
            problem = check(document, answer) if check is not None else None
            if problem:
                refused.append(f"reference {document[:60]!r}: {problem}")
            answers[document] = answer
        else:
            refused.append(f"reference {document[:60]!r}: {reply.status} {reply.message[:200]}")
    return answers, refused


def discover_item_ids(senders: Senders, rounds: int = 3) -> list[int]:
    """Catalog items the server itself recommends (from the empty history on), when no catalog is given."""
    found: dict[int, None] = {}
    history = b"[]"
    for _ in range(rounds):
        reply = senders.infer_documents((history,))
        if reply.status != "OK":
            break
        items = [int(i) for i in reply.outputs["ITEM_IDS"].reshape(-1) if i >= 0]
        found.update(dict.fromkeys(items))
        history = json.dumps(items[:: rounds + 1]).encode()
    return list(found)


def valid_pool(
    size: int, seed: int, item_ids: Sequence[int] | None, rules: RuleContext | None = None
) -> dict[bytes, RuleExpectation]:
    """`size` distinct valid documents (about one in thirty near the 1 MiB limit), the empty history first,
    with what each asks for; given `rules`, half of them are objects with rules the repository allows."""
    pool = {b"[]": RuleExpectation()}
    lists = size - size // 2 if rules is not None else size
    for case in generate_cases(lists * 4, seed, item_ids, kinds=("valid",) * 30 + ("valid_at_limit",)):
        if len(pool) >= lists:
            break
        pool.setdefault(case.document, RuleExpectation(tuple(case.item_ids)))
    src = RandomSource(seed + 2)
    for _ in range(size * 8 if rules is not None else 0):
        if len(pool) >= size:
            break
        rule_case = valid_rule_case(src, rules)  # type: ignore[arg-type]
        if rule_case.expectation is not None:
            pool.setdefault(rule_case.document, rule_case.expectation)
    return pool


def answer_check(oracle: RuleOracle | None, expectations: Mapping[bytes, RuleExpectation]) -> AnswerCheck | None:
    """Checks an answer against the rules of its document (when the document's expectation is known)."""
    if oracle is None:
        return None

    def check(document: bytes, answer: Recommendation) -> str | None:
        expectation = expectations.get(document)
        return None if expectation is None else oracle.problem(expectation, answer.item_ids)

    return check


def favourites(senders: Senders) -> list[int]:
    """The items the empty history gets (what exclusions should hit to change an answer)."""
    reply = senders.infer_documents((b"[]",))
    return [int(i) for i in reply.outputs["ITEM_IDS"].reshape(-1) if i >= 0] if reply.status == "OK" else []


def pool_classes(oracle: RuleOracle | None, expectations: Mapping[bytes, RuleExpectation]) -> dict[str, int]:
    """How many pool documents ask for no rule, and how many leave K or more, fewer, or no eligible items."""
    if oracle is None:
        return {}
    classes: dict[str, int] = {}
    for expectation in expectations.values():
        eligible = oracle.eligible_count(expectation)
        if not oracle.uses_rules(expectation):
            name = "no rules"
        else:
            name = (
                "rules, no item eligible"
                if eligible == 0
                else f"rules, {'<' if eligible < oracle.k else '>='} K eligible"
            )
        classes[name] = classes.get(name, 0) + 1
    return classes
