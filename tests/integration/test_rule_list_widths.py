"""Rule lists sent straight to the model step and postprocess are bounded per row and per call (issue 22, item 3).

Before, one row of `rule_removed_items` [1, 100000, 2] of (-1, 0) padding sent to the model step made every request
sharing its dynamic batch run at that width (normal traffic 320 -> 24 req/s, the stub 135 -> 857 MB for good). Now
the padding is trimmed (the row is answered at its own width), a row with more real entries than the catalog has
items is refused with INVALID_ARGUMENT naming the tensor, and requests whose lists differ in width never share an
engine call: concurrent normal requests get the answers they get alone, and the stub's memory stays bounded.
"""

from __future__ import annotations

import json
import random
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import tritonclient.grpc as grpcclient

from ugt_ensemble.export.compare import ranked_mismatches
from ugt_ensemble.runtime.contract import (
    ITEM_IDS,
    MODEL_SCORES,
    RECOMMENDATIONS,
    RULE_NAMES,
    RULE_REMOVED_ITEMS,
    SCORES,
)
from ugt_ensemble.runtime.tensor_bundle import step_inputs
from ugt_ensemble.server import TritonServer
from ugt_ensemble.server.stubs import stubs_of
from ugt_ensemble_dev.reliability.step_tensors import infer_tensors

WIDTH = 100_000


@pytest.fixture(scope="module")
def normal_inputs(built, server):
    """What preprocess and the model step make of four documents (two with rules): the inputs of both steps."""
    config, result = built
    t, ids = config.triton, result.catalog.item_ids.tolist()
    documents = [
        ids[:30],
        {"events": ids[:20], "exclude": ids[20:60], "exclude_history": True},
        {"events": ids[100:103], "exclude": ids[200:210]},
        ids[500:900],
    ]
    inputs = []
    with grpcclient.InferenceServerClient(server.grpc_url) as client:
        for document in documents:
            history = np.array([[json.dumps(document).encode()]], dtype=object)
            pre = infer_tensors(client, t.preprocess_name, {"HISTORY": history})
            tensors = dict(step_inputs(pre.outputs, with_rules=True))  # the bundle's arrays, sent one by one here
            step = infer_tensors(client, t.step_name, tensors)
            rules = {name: tensors[name] for name in RULE_NAMES}
            post = {RECOMMENDATIONS: step.outputs[RECOMMENDATIONS], MODEL_SCORES: step.outputs[MODEL_SCORES], **rules}
            inputs.append({t.step_name: tensors, t.postprocess_name: post})
    return inputs


def _padded(tensors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The same request with its removed-items list padded with (-1, 0) to WIDTH entries."""
    removed = tensors[RULE_REMOVED_ITEMS]
    tail = np.tile(np.array([[[-1, 0]]], dtype=np.int64), (len(removed), WIDTH - removed.shape[1], 1))
    return {**tensors, RULE_REMOVED_ITEMS: np.concatenate([removed, tail], axis=1)}


def test_a_long_rule_list_costs_only_its_own_request(built, server, normal_inputs):
    config, result = built
    t = config.triton
    overlong = {**normal_inputs[1][t.step_name], RULE_REMOVED_ITEMS: np.zeros((1, WIDTH, 2), np.int64)}
    jobs = [(model, ("normal", i), inputs[model]) for i, inputs in enumerate(normal_inputs) for model in inputs] * 12
    jobs += [(model, ("padded", i), _padded(inputs[model])) for i, inputs in enumerate(normal_inputs[1:3], 1)
             for model in inputs] * 4  # fmt: skip
    jobs += [(t.step_name, ("overlong", 1), overlong)] * 4
    random.Random(3).shuffle(jobs)
    stubs = {s.instance: s.pid for s in stubs_of(server.process.pid)}
    with grpcclient.InferenceServerClient(server.grpc_url) as client:
        alone = [{model: infer_tensors(client, model, tensors) for model, tensors in i.items()} for i in normal_inputs]
        with ThreadPoolExecutor(8) as pool:
            replies = list(pool.map(lambda job: infer_tensors(client, job[0], job[2]), jobs))
    for (model, (kind, i), _), reply in zip(jobs, replies):
        if kind == "overlong":
            assert reply.status == "INVALID_ARGUMENT", reply
            assert f"{RULE_REMOVED_ITEMS}: row 0 holds {WIDTH} entries" in reply.message, reply.message
            assert f"at most {len(result.catalog)}" in reply.message, reply.message
            continue
        assert reply.status == "OK", (model, kind, i, reply)
        keys = (ITEM_IDS, SCORES) if model == t.postprocess_name else (RECOMMENDATIONS, MODEL_SCORES)
        want, got = alone[i][model].outputs, reply.outputs
        assert not ranked_mismatches(want[keys[0]], want[keys[1]], got[keys[0]], got[keys[1]], 1e-4), (model, kind, i)
    assert {s.instance: s.pid for s in stubs_of(server.process.pid)} == stubs
    (step,) = [s for s in stubs_of(server.process.pid) if s.model == t.step_name]
    assert step.rss_mib < 450, f"model step resident memory {step.rss_mib:.0f} MiB"


def test_preprocess_batching_requests_packs_each_at_its_own_width(build_for_test, tmp_path):
    """With `batch_requests` preprocess packs several requests in one execute(): each request's rule lists come back
    at its own width, never padded to a neighbour's (a long exclude-history beside short ones)."""
    config, result = build_for_test(preprocess_batch_requests=True, naive_peer=False)
    ids = result.catalog.item_ids.tolist()
    documents = [{"events": ids[:2000], "exclude_history": True, "exclude": ids[2000:3000]}]
    documents += [{"events": ids[i : i + 5], "exclude": ids[i + 5 : i + 9]} for i in range(0, 300, 10)]
    documents += [ids[i : i + 5] for i in range(0, 100, 10)]
    name = config.triton.preprocess_name
    histories = [{"HISTORY": np.array([[json.dumps(d).encode()]], dtype=object)} for d in documents]
    with TritonServer(result.repository, ready_models=[name], log_path=tmp_path / "server.log") as server:
        with grpcclient.InferenceServerClient(server.grpc_url) as client:
            alone = [_removed(infer_tensors(client, name, h).outputs).shape for h in histories]
            with ThreadPoolExecutor(8) as pool:
                replies = list(pool.map(lambda h: infer_tensors(client, name, h), histories * 3))
    assert alone[0] == (1, 3000, 2) and set(alone[1:]) == {(1, 4, 2), (1, 1, 2)}
    assert [_removed(r.outputs).shape for r in replies] == alone * 3


def _removed(outputs: dict[str, np.ndarray]) -> np.ndarray:
    """The removed-items list of what preprocess sent (in its bundle for the Python-backend model step)."""
    return step_inputs(outputs, with_rules=True)[RULE_REMOVED_ITEMS]
