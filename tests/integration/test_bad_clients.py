"""Bad input is normal: a malformed request fails alone, with a client-error status and a short message."""

import asyncio
import json
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.grpc.aio as aioclient
from tritonclient.utils import InferenceServerException

from ugt_ensemble.export.compare import ranked_mismatches
from ugt_ensemble.histories import history_json, random_history
from ugt_ensemble.runtime.constraint_data import ConstraintData
from ugt_ensemble.runtime.contract import CATALOG_DIR, ITEM_IDS, MODEL_SCORES, RECOMMENDATIONS, RULE_NAMES, SCORES
from ugt_ensemble.runtime.tensor_bundle import BUNDLE, bundle_step_inputs
from ugt_ensemble.runtime.tensor_bundle import step_inputs as unbundled
from ugt_ensemble.server import TritonServer
from ugt_ensemble.server.stubs import stubs_of
from ugt_ensemble_dev.reliability.raw import POISON, RawGrpc, bytes_element, http_binary
from ugt_ensemble_dev.reliability.step_tensors import infer_tensors, malformed_rule_tensors, odd_rule_tensors


def test_a_poisoned_bytes_tensor_fails_alone_over_grpc_and_http(built, tmp_path):
    """A length prefix claiming 2 GiB: the Python backend checks a batch's strings together, so before
    preprocess ran one request per execute(), every good request batched with it got its error."""
    config, result = built
    model = config.export.model_name
    rng = np.random.default_rng(3)
    good = [history_json(random_history(result.catalog.item_ids, int(n), rng)) for n in rng.integers(5, 200, 64)]
    failures, answered, poisoned = [], [0], []
    lock = threading.Lock()
    with TritonServer(result.repository, ready_models=[model], log_path=tmp_path / "server.log") as server:

        def good_client(worker: int) -> None:
            raw = RawGrpc(server.grpc_url)
            for i in range(40):
                payload = bytes_element(good[(worker * 40 + i) % len(good)].encode())
                if i % 4 == 3:
                    status, body = http_binary(server.http_url, model, payload)
                    outcome = ("OK", "") if status == 200 else (str(status), body)
                else:
                    outcome = raw.infer(model, payload)
                with lock:
                    answered[0] += 1
                    if outcome[0] != "OK":
                        failures.append(outcome)
            raw.close()

        def poisoner() -> None:
            raw = RawGrpc(server.grpc_url)
            for i in range(30):
                if i % 2:
                    poisoned.append(raw.infer(model, POISON))
                else:
                    poisoned.append(http_binary(server.http_url, model, POISON))
                time.sleep(0.01)
            raw.close()

        threads = [threading.Thread(target=good_client, args=(w,)) for w in range(8)]
        threads.append(threading.Thread(target=poisoner))
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=300)
        start = time.perf_counter()
        code = server.stop()
        stop_seconds = time.perf_counter() - start
    assert answered[0] == 8 * 40 and failures == [], failures[:3]
    assert all(status in ("INVALID_ARGUMENT", 400) for status, _ in poisoned), poisoned[:3]
    assert all("expecting string of length 2147483647" in body for _, body in poisoned)
    assert code == 0 and stop_seconds < 8, (code, stop_seconds)  # it used to hit the 10 s exit timeout


@pytest.mark.parametrize(
    ("history", "message"),
    [
        ("[1, 2", "not valid JSON"),
        ('[{"item_id": 1, "type": "like"}]', 'unknown event type "like"'),
        ("[" + "1," * 200_000 + "1]", "the limit is"),
    ],
)
def test_client_mistakes_are_invalid_argument_not_server_errors(built, server, history, message):
    config, _ = built
    model = config.export.model_name
    with grpcclient.InferenceServerClient(server.grpc_url) as client:
        tensor = grpcclient.InferInput("HISTORY", [1, 1], "BYTES")
        tensor.set_data_from_numpy(np.array([[history.encode()]], dtype=object))
        with pytest.raises(InferenceServerException) as info:
            client.infer(model, [tensor])
    assert info.value.status() == "StatusCode.INVALID_ARGUMENT" and message in info.value.message()
    status, body = http_binary(server.http_url, model, bytes_element(history.encode()))
    assert status == 400 and message in json.loads(body)["error"]


def test_huge_bad_values_come_back_short(built, server):
    """A 16 KB event type once overflowed gRPC's metadata limit (`Stream removed`); a 1 MB one came back
    as a 1 MB HTTP error body."""
    config, _ = built
    model = config.export.model_name
    raw = RawGrpc(server.grpc_url)
    code, message = raw.infer(model, bytes_element(json.dumps([{"item_id": 1, "type": "x" * 16_000}]).encode()))
    raw.close()
    assert code == "INVALID_ARGUMENT" and "(16002 characters)" in message and len(message) < 500
    document = json.dumps([{"item_id": 1, "type": "y" * 1_000_000}]).encode()
    status, body = http_binary(server.http_url, model, bytes_element(document))
    assert status == 400 and "(1000002 characters)" in body and len(body) < 1000
    code, message = RawGrpc(server.grpc_url).infer(model, bytes_element(b"[" + b"9" * 5000 + b"]"))
    assert code == "INVALID_ARGUMENT" and "integer literal of 5000 digits" in message


def test_overload_is_shed_with_unavailable_and_the_server_recovers(build_for_test, tmp_path):
    """A full step queue answers at once, and a request waiting past the queue timeout is refused, both
    with UNAVAILABLE, instead of queueing without bound."""
    config, result = build_for_test(max_queue_size=4, naive_peer=False)
    model = config.export.model_name
    rng = np.random.default_rng(8)
    long_history = history_json(random_history(result.catalog.item_ids, 1000, rng))

    async def burst(count: int) -> list[str]:
        async with aioclient.InferenceServerClient(server.grpc_url) as client:

            async def one() -> str:
                tensor = aioclient.InferInput("HISTORY", [1, 1], "BYTES")
                tensor.set_data_from_numpy(np.array([[long_history.encode()]], dtype=object))
                try:
                    await client.infer(model, [tensor])
                except InferenceServerException as exc:
                    return f"{exc.status()} {exc.message()}"
                return "OK"

            return await asyncio.gather(*(one() for _ in range(count)))

    with TritonServer(result.repository, ready_models=[model], log_path=tmp_path / "server.log") as server:
        outcomes = asyncio.run(burst(300))
        shed = [o for o in outcomes if o != "OK"]
        assert shed and "OK" in outcomes
        assert all(o.startswith("StatusCode.UNAVAILABLE") for o in shed), shed[:3]
        assert any("Exceeds maximum queue size" in o for o in shed)  # some also wait past the queue timeout
        deadline = time.monotonic() + 10
        while asyncio.run(burst(2)) != ["OK", "OK"]:  # answered normally again once the backlog is gone
            assert time.monotonic() < deadline, "the server did not recover within 10 s after the burst"
            time.sleep(0.5)


def test_the_model_step_memory_stays_bounded_at_the_largest_shapes(built, server):
    """64 histories of 1024 events in one batch: ONNX Runtime's arena used to keep a ~1 GiB peak for good
    (resident 182 -> 890 MiB under overload); `max_batch_tokens` now bounds each engine call."""
    config, result = built
    rng = np.random.default_rng(4)
    rows = [history_json(random_history(result.catalog.item_ids, 1024, rng)).encode() for _ in range(64)]
    with grpcclient.InferenceServerClient(server.grpc_url) as client:
        tensor = grpcclient.InferInput("HISTORY", [64, 1], "BYTES")
        tensor.set_data_from_numpy(np.array(rows, dtype=object).reshape(64, 1))
        for _ in range(2):
            assert client.infer(config.export.model_name, [tensor]).as_numpy("ITEM_IDS").shape == (64, 50)
    (step,) = [s for s in stubs_of(server.process.pid) if s.model == config.triton.step_name]
    assert step.rss_mib < 450, f"model step resident memory {step.rss_mib:.0f} MiB"


@pytest.fixture(scope="module")
def step_inputs(built, server):
    """Good inputs of the model step and postprocess (what preprocess and the step make of a document with
    rules), the served constraint data, and the stubs before any malformed call."""
    config, result = built
    t = config.triton
    data = ConstraintData.load(result.repository / t.preprocess_name / "1" / CATALOG_DIR)
    ids = result.catalog.item_ids.tolist()
    document = json.dumps({"events": ids[:20], "exclude": ids[20:60], "exclude_history": True}).encode()
    with grpcclient.InferenceServerClient(server.grpc_url) as client:
        history = np.array([[document]], dtype=object)
        pre = infer_tensors(client, t.preprocess_name, {"HISTORY": history})
        tensors = dict(unbundled(pre.outputs, with_rules=True))  # the bundle's arrays, sent one by one here
        step = infer_tensors(client, t.step_name, tensors)
    rules = {name: tensors[name] for name in RULE_NAMES}
    post = {RECOMMENDATIONS: step.outputs[RECOMMENDATIONS], MODEL_SCORES: step.outputs[MODEL_SCORES], **rules}
    stubs = {s.instance: s.pid for s in stubs_of(server.process.pid)}
    return {t.step_name: tensors, t.postprocess_name: post}, rules, data, stubs


def test_malformed_rule_tensors_sent_to_the_model_step_or_postprocess_fail_alone(built, server, step_inputs):
    """A set index, parent or slot out of range would crash the engine's Gather; a wrong dtype, shape or
    batch size is Triton's to refuse. Each is INVALID_ARGUMENT naming the tensor, while good requests sent at
    the same time (sharing dynamic batches with them) get their answers, and in-range but odd rule tensors are
    answered: no INTERNAL, no crashed stub."""
    config, _ = built
    good_inputs, rules, data, stubs = step_inputs
    bad = malformed_rule_tensors(rules, data)
    odd = odd_rule_tensors(rules, data)
    jobs = [(model, "good", good, None) for model, good in good_inputs.items() for _ in range(24)]
    for model, good in good_inputs.items():
        others = {k: v for k, v in good.items() if k not in RULE_NAMES}
        jobs += [(model, name, {**others, **tensors}, hint) for name, (tensors, hint) in bad.items()]
        jobs += [(model, name, {**others, **tensors}, None) for name, tensors in odd.items()]
    random.Random(2).shuffle(jobs)
    with grpcclient.InferenceServerClient(server.grpc_url) as client:
        alone = {model: infer_tensors(client, model, good) for model, good in good_inputs.items()}
        with ThreadPoolExecutor(8) as pool:
            replies = list(pool.map(lambda job: infer_tensors(client, job[0], job[2]), jobs))
    for (model, name, _, hint), reply in zip(jobs, replies):
        if hint is not None:
            assert reply.status == "INVALID_ARGUMENT" and hint in reply.message, (model, name, reply)
            continue
        assert reply.status == "OK", (model, name, reply)
        if name == "good":
            post = model == config.triton.postprocess_name
            keys, scores = (ITEM_IDS, SCORES) if post else (RECOMMENDATIONS, MODEL_SCORES)
            want, got = alone[model].outputs, reply.outputs
            assert not ranked_mismatches(want[keys], want[scores], got[keys], got[scores], 1e-4), (model, name)
    assert {s.instance: s.pid for s in stubs_of(server.process.pid)} == stubs


def test_a_malformed_bundle_sent_to_the_model_step_fails_alone(built, server, step_inputs):
    """The bundle preprocess sends the Python-backend step, cut short, with a forged header, or beside the tensors
    it holds, is INVALID_ARGUMENT naming `ugt_bundle`; the well-formed bundle and good requests batched with the
    bad ones get the answers they get alone, and no stub restarts."""
    config, _ = built
    step = config.triton.step_name
    good_inputs, _, _, stubs = step_inputs
    good = good_inputs[step]
    bundle = bundle_step_inputs(good, with_rules=True)[BUNDLE]
    forged = bundle.copy()
    forged[:, 16:24] = np.frombuffer(np.int64(2).tobytes(), dtype=np.uint8)  # encoder_l1_ids declared float32
    bad = {
        "cut short": ({BUNDLE: bundle[:, :-8]}, "runs past the row's"),
        "forged dtype": ({BUNDLE: forged}, "encoder_l1_ids is declared as code 2"),
        "bundle and tensors": ({BUNDLE: bundle, **good}, "send ugt_bundle alone or the step's tensors"),
        "not a bundle": ({BUNDLE: bundle[:, :40]}, "shorter than the header"),
    }
    jobs = [("good", good, None)] * 12 + [("bundle", {BUNDLE: bundle}, None)] * 12
    jobs += [(name, tensors, hint) for name, (tensors, hint) in bad.items()] * 3
    random.Random(4).shuffle(jobs)
    with grpcclient.InferenceServerClient(server.grpc_url) as client:
        alone = infer_tensors(client, step, good)
        with ThreadPoolExecutor(8) as pool:
            replies = list(pool.map(lambda job: infer_tensors(client, step, job[1]), jobs))
    want = alone.outputs
    for (name, _, hint), reply in zip(jobs, replies):
        if hint is not None:
            assert reply.status == "INVALID_ARGUMENT" and hint in reply.message, (name, reply)
            continue
        got = reply.outputs
        assert reply.status == "OK", (name, reply)
        assert not ranked_mismatches(want[RECOMMENDATIONS], want[MODEL_SCORES], got[RECOMMENDATIONS],
                                     got[MODEL_SCORES], 1e-4), name  # fmt: skip
    assert {s.instance: s.pid for s in stubs_of(server.process.pid)} == stubs
