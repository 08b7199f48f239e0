"""Fuzzed inference requests for a live server: what to send, how to send it, and what must come back.

A request carries one or several HISTORY rows (shape [k, 1], k up to and past the model's
max_batch_size) over tritonclient gRPC, hand-made gRPC raw contents, or HTTP binary data; some
have broken BYTES framing (length prefixes that lie, missing or extra elements). Valid rows come
from a pool of documents whose answers are known (lists of events, and objects with business rules);
invalid rows are fresh fuzz cases, of the list form or (given a `RuleContext`) of the object form,
whose error must name the problem (`FuzzRequest.hints`).
"""

from __future__ import annotations

import json
import random
import struct
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import numpy as np
import tritonclient.grpc as grpcclient
from tritonclient.utils import InferenceServerException

from ugt_ensemble.client.grpc_client import history_tensor
from ugt_ensemble.client.results import Recommendation
from ugt_ensemble.export.compare import ranked_mismatches
from ugt_ensemble_dev.reliability.fuzz import KINDS, SMALL_KINDS, FuzzCase, RandomSource, generate_case
from ugt_ensemble_dev.reliability.fuzz_rules import RuleContext, invalid_rule_case
from ugt_ensemble_dev.reliability.raw import (
    POISON,
    RawGrpc,
    bytes_element,
    bytes_tensor,
    decode_http_outputs,
    http_binary,
)

ANSWER, CLIENT_ERROR, BATCH_SIZE = "answer", "client-error", "batch-size"
INVALID_KINDS = tuple(k for k in KINDS if not k.startswith("valid"))
SMALL_INVALID_KINDS = tuple(k for k in SMALL_KINDS if not k.startswith("valid"))
#: Valid pool documents at most this large may share a request with others.
SMALL_DOCUMENT = 64 << 10
#: Share of invalid rows drawn from the object form's defects when a `RuleContext` is given.
RULE_DEFECT_SHARE = 0.4
#: What checks a valid row's answer beyond its reference: the problem, or None (see `RuleOracle.problem`).
AnswerCheck = Callable[[bytes, Recommendation], "str | None"]


@dataclass(frozen=True)
class FuzzRequest:
    """One request: its rows, how it travels, the raw BYTES contents when framed by hand, what to expect."""

    index: int
    transport: str  # "grpc" (tritonclient), "raw-grpc" or "http"
    kind: str  # what it holds: "valid", a fuzz case kind, "multi", "over-batch" or a framing defect
    documents: tuple[bytes, ...]
    expect: str
    raw: bytes | None = None
    #: Substrings the error must hold (the row and the problem), when the first bad row's defect decides it.
    hints: tuple[str, ...] = ()

    @property
    def rows(self) -> int:
        return len(self.documents)


@dataclass(frozen=True)
class Reply:
    """What the server said: "OK" (with outputs), a gRPC status name, or "HTTP <code>"."""

    status: str
    message: str = ""
    outputs: dict | None = None


class RequestPlanner:
    """Draws requests from one seed: valid rows from `pool`, invalid ones from the fuzzers (the object form's
    too when `rules` is given)."""

    def __init__(
        self,
        seed: int,
        pool: Sequence[bytes],
        item_ids: Sequence[int] | None,
        max_batch_size: int,
        rules: RuleContext | None = None,
    ) -> None:
        self.rng = random.Random(seed)
        self.src = RandomSource(self.rng)
        self.pool = list(pool)
        self.small_pool = [d for d in pool if len(d) <= SMALL_DOCUMENT] or self.pool
        self.item_ids = item_ids
        self.max_batch_size = max_batch_size
        self.rules = rules

    def plan(self, count: int) -> list[FuzzRequest]:
        makers = [
            (30, self._single, "grpc"),
            (15, self._single, "http"),
            (10, self._single, "raw-grpc"),
            (15, self._multi, "grpc"),
            (5, self._multi, "http"),
            (5, self._over_batch, None),
            (20, self._broken_framing, None),
        ]
        weights = [w for w, _, _ in makers]
        requests = []
        for index in range(count):
            _, make, transport = self.rng.choices(makers, weights)[0]
            requests.append(make(index, transport or self.rng.choice(("raw-grpc", "http"))))
        return requests

    def _row(self, valid: bool, small: bool) -> tuple[bytes, str | None, str]:
        """(document, None for a valid row or the hint of an invalid one ("" when none), kind)."""
        if valid:
            document = self.rng.choice(self.small_pool if small else self.pool)
            return document, None, "valid_rules" if document.lstrip().startswith(b"{") else "valid"
        if self.rules is not None and self.rng.random() < RULE_DEFECT_SHARE:
            rule_case = invalid_rule_case(self.src, self.rules, small)
            return rule_case.document, rule_case.hint or "", f"rules/{rule_case.kind}"
        while True:
            case = generate_case(self.src, self.item_ids, SMALL_INVALID_KINDS if small else INVALID_KINDS)
            if not _object_with_events(case):
                return case.document, case.hint or "", case.kind

    def _single(self, index: int, transport: str) -> FuzzRequest:
        document, hint, kind = self._row(self.rng.random() < 0.5, small=False)
        expect, hints = (ANSWER, ()) if hint is None else (CLIENT_ERROR, (hint,) if hint else ())
        return FuzzRequest(index, transport, kind, (document,), expect, hints=hints)

    def _rows(self, count: int, bad_share: float) -> tuple[tuple[bytes, ...], bool, tuple[str, ...]]:
        """The rows, whether all are valid, and what the error must hold (the first bad row decides it)."""
        rows = [self._row(self.rng.random() >= bad_share, small=True) for _ in range(count)]
        first = next(((i, hint) for i, (_, hint, _) in enumerate(rows) if hint is not None), None)
        hints: tuple[str, ...] = ()
        if first is not None and first[1]:
            hints = (first[1],) if count == 1 else (f"row {first[0]}: ", first[1])
        return tuple(d for d, _, _ in rows), first is None, hints

    def _multi(self, index: int, transport: str) -> FuzzRequest:
        count = min(2 + int(self.rng.expovariate(1 / 8)), self.max_batch_size)
        if self.rng.random() < 0.1:
            count = self.max_batch_size
        documents, valid, hints = self._rows(count, bad_share=self.rng.choice((0.0, 0.0, 0.05, 0.3)))
        return FuzzRequest(index, transport, "multi", documents, ANSWER if valid else CLIENT_ERROR, hints=hints)

    def _over_batch(self, index: int, transport: str) -> FuzzRequest:
        documents, _, _ = self._rows(self.max_batch_size + self.rng.randint(1, 16), bad_share=0.1)
        return FuzzRequest(index, transport, "over-batch", documents, BATCH_SIZE)

    def _broken_framing(self, index: int, transport: str) -> FuzzRequest:
        documents, _, _ = self._rows(self.rng.randint(1, 4), bad_share=0.0)
        good = bytes_tensor(documents)
        last = documents[-1]
        defects = {
            "poison": bytes_tensor(documents[:-1]) + POISON,
            "prefix-overruns": good[: len(good) - len(last) - 4] + struct.pack("<I", len(last) + 7) + last,
            "prefix-underruns": good[: len(good) - len(last) - 4] + struct.pack("<I", len(last) // 2) + last,
            "prefix-cut": good + b"\x05\x00",
            "element-missing": bytes_tensor(documents[:-1]),
            "element-extra": good + bytes_element(last),
            "trailing-bytes": good + b"xyz",
        }
        kind = self.rng.choice(sorted(defects))
        return FuzzRequest(index, transport, kind, documents, CLIENT_ERROR, raw=defects[kind])


def _object_with_events(case: FuzzCase) -> bool:
    """Whether a list-form "invalid" case is an object with "events" (the object form: valid, or refused
    for another reason than the case says)."""
    return case.document.lstrip().startswith(b"{") and b'"events"' in case.document


class Senders:
    """One thread's connections: a tritonclient gRPC client, a raw gRPC channel and the HTTP url."""

    def __init__(self, grpc_url: str, http_url: str, model: str, timeout_s: float = 120.0) -> None:
        self.model, self.http_url, self.timeout_s = model, http_url, timeout_s
        self.client = grpcclient.InferenceServerClient(grpc_url)
        self.raw = RawGrpc(grpc_url, timeout_s)

    def send(self, request: FuzzRequest) -> Reply:
        if request.transport == "grpc" and request.raw is None:
            return self.infer_documents(request.documents)
        raw = request.raw if request.raw is not None else bytes_tensor(request.documents)
        if request.transport == "http":
            status, body = http_binary(self.http_url, self.model, raw, request.rows, timeout_s=self.timeout_s)
            if status != 200:
                return Reply(f"HTTP {status}", body)
            return Reply("OK", outputs=decode_http_outputs(body))
        status, message, outputs = self.raw.infer_outputs(self.model, raw, request.rows)
        return Reply(status, message, outputs if status == "OK" else None)

    def infer_documents(self, documents: tuple[bytes, ...]) -> Reply:
        """Send `documents` as the rows of one request through tritonclient (correct framing)."""
        try:
            result = self.client.infer(self.model, [history_tensor(documents)], client_timeout=self.timeout_s)
        except InferenceServerException as exc:
            return Reply(str(exc.status()).removeprefix("StatusCode."), exc.message() or "")
        outputs = {o.name: result.as_numpy(o.name) for o in result.get_response().outputs}
        return Reply("OK", outputs=outputs)

    def close(self) -> None:
        self.client.close()
        self.raw.close()


#: Outcomes that mean the server did what the contract says.
GOOD_OUTCOMES = ("answered", "answered-score-noise", "answered-ties-swapped", "refused", "refused-batch-size")
#: Longest error message a refused request may get (characters).
MAX_ERROR_CHARS = 1000
_CLIENT_STATUSES = ("INVALID_ARGUMENT", "HTTP 400")


def classify(
    request: FuzzRequest,
    reply: Reply,
    references: Mapping[bytes, Recommendation],
    atol: float,
    check: AnswerCheck | None = None,
) -> tuple[str, str]:
    """The outcome of one request (a GOOD_OUTCOMES name, "wrong", "ineligible" or what went unexpectedly),
    and what was wrong with an answer ("" when nothing is known)."""
    if request.expect == ANSWER:
        if reply.status != "OK":
            return "valid-refused", ""
        return compare_rows(request.documents, reply.outputs or {}, references, atol, check)
    if reply.status == "OK":
        return "invalid-answered", ""
    if reply.status not in _CLIENT_STATUSES:
        return "server-error", ""
    if len(reply.message) > MAX_ERROR_CHARS:
        return "long-error", ""
    if request.expect == BATCH_SIZE:
        return ("refused-batch-size" if "batch-size" in reply.message else "wrong-error"), ""
    missing = [hint for hint in request.hints if hint not in _error_text(reply)]
    return ("wrong-error", f"the error does not name {missing}") if missing else ("refused", "")


def _error_text(reply: Reply) -> str:
    """The error message itself (an HTTP reply's is the "error" of its JSON body)."""
    if reply.status.startswith("HTTP"):
        try:
            return str(json.loads(reply.message)["error"])
        except (ValueError, KeyError, TypeError):
            pass
    return reply.message


def compare_rows(
    documents: Sequence[bytes],
    outputs: dict,
    references: Mapping[bytes, Recommendation],
    atol: float,
    check: AnswerCheck | None = None,
) -> tuple[str, str]:
    """How every row compares with its reference (the worst row decides), and the first problem `check` finds:

    "answered": bit for bit; "answered-score-noise": the same items and codes in the same order, scores
    within `atol` (batched kernels round differently); "answered-ties-swapped": items whose scores tie
    within `atol` changed places; "wrong": anything else; "ineligible": `check` found a problem (items that
    break the document's rules, repeated items, too few items).
    """
    try:
        got = [Recommendation.from_outputs({k: v[row] for k, v in outputs.items()}) for row in range(len(documents))]
    except (KeyError, IndexError, ValueError):
        return "wrong", "malformed outputs"
    for row, (document, answer) in enumerate(zip(documents, got)):
        problem = check(document, answer) if check is not None else None
        if problem:
            return "ineligible", f"row {row} ({document[:80]!r}): {problem}"
    verdicts = [_compare(references[d], answer, atol) for d, answer in zip(documents, got)]
    return (max(verdicts, key=_VERDICTS.index) if verdicts else "answered"), ""


_VERDICTS = ("answered", "answered-score-noise", "answered-ties-swapped", "wrong")


def _compare(ref: Recommendation, got: Recommendation, atol: float) -> str:
    same_order = np.array_equal(ref.item_ids, got.item_ids) and np.array_equal(ref.semantic_ids, got.semantic_ids)
    if same_order and np.array_equal(ref.scores, got.scores):
        return "answered"
    for keys in ("item_ids", "semantic_ids"):
        args = (getattr(ref, keys)[None], ref.scores[None], getattr(got, keys)[None], got.scores[None])
        if ranked_mismatches(*args, atol=atol):
            return "wrong"
    return "answered-score-noise" if same_order else "answered-ties-swapped"
