"""A TensorRT model step's optimisation profile bounds the rule lists (`ExportConfig.max_rule_list`), so preprocess
refuses a request that removes more catalog items than that: INVALID_ARG for that request alone, naming the bound.

The CPU tritonserver here cannot load a TensorRT step, so the repository is a CPU build whose preprocess config
gets the parameter a tensorrt_plan build renders (`max_rule_list`, 0 in a CPU build: no bound).
"""

import json

import pytest

from ugt_ensemble.client import RecommendClient
from ugt_ensemble.server import TritonServer

BOUND = 100
RENDERED = 'key: "max_rule_list"\n  value: { string_value: "0" }'


@pytest.fixture(scope="module")
def bounded(build_for_test):
    config, result = build_for_test(naive_peer=False)
    path = result.repository / "preprocess" / "config.pbtxt"
    text = path.read_text(encoding="utf-8")
    assert RENDERED in text
    path.write_text(text.replace(RENDERED, RENDERED.replace('"0"', f'"{BOUND}"')), encoding="utf-8")
    with TritonServer(result.repository, ready_models=[config.export.model_name]) as server:
        with RecommendClient(server.grpc_url, config.export.model_name) as client:
            yield client, [int(i) for i in result.catalog.item_ids]


def test_requests_removing_more_than_the_bound_fail_alone(bounded):
    client, ids = bounded
    documents = [
        json.dumps({"events": ids[:5], "exclude": ids[100 : 100 + BOUND + 1]}),
        json.dumps({"events": ids[:60], "exclude_history": True, "exclude": ids[60:101]}),
        json.dumps({"events": ids[:5], "exclude": ids[100 : 100 + BOUND] + [-3, 10**12]}),  # unknown ids don't count
        json.dumps({"events": ids[:60], "exclude_history": True, "exclude": ids[60:100]}),
        json.dumps(ids[:500]),  # no rule: one padding entry
    ]
    answers = client.recommend_results(documents)
    assert f"removes {BOUND + 1} catalog items" in answers[0].error and f"at most {BOUND}" in answers[0].error
    assert f"removes {BOUND + 1} catalog items" in answers[1].error
    for document, answer in zip(documents[2:], answers[2:]):
        assert answer.ok, answer.error
        removed = set(json.loads(document).get("exclude", [])) if document.startswith("{") else set()
        assert len(answer.items()) == 50 and not removed & {item for item, _ in answer.items()}
