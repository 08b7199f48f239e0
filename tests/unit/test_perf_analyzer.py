"""perf_analyzer report parsing and input-data files (no server, no subprocess)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from ugt_ensemble.errors import ConfigError, MissingDependencyError
from ugt_ensemble_dev.bench import perf_analyzer as pa
from ugt_ensemble_dev.bench.perf_analyzer import PerfAnalyzer, write_input_data
from ugt_ensemble_dev.bench.perf_analyzer_output import (
    NOT_MEASURED,
    UNSTABLE,
    PerfAnalyzerResult,
    StepBreakdown,
    parse_output,
)

SETTINGS = """\
 Successfully read data for 1 stream/streams with 2 step/steps.
*** Measurement Settings ***
  Batch size: 1
  Service Kind: TRITON
  Using "time_windows" mode for stabilization
  Stabilizing using p99latency and throughput
  Measurement window: 4000 msec
  Latency limit: 0 msec
  Concurrency limit: 8 concurrent requests
  Using synchronous calls for inference

"""

ENSEMBLE_BLOCK = """\
Request concurrency: 8
  Client:
    Request count: 6589
    Throughput: 456.645 infer/sec
    p50 latency: 16731 usec
    p90 latency: 22741 usec
    p95 latency: 24706 usec
    p99 latency: 29236 usec
    Avg gRPC time: 17472 usec ((un)marshal request/response 8 usec + response wait 17464 usec)
  Server:
    Inference count: 6589
    Execution count: 6589
    Successful request count: 6589
    Avg request latency: 16790 usec (overhead 0 usec + queue 4786 usec + compute 12085 usec)

  Composing models:
  postprocess, version: 1
      Inference count: 6589
      Execution count: 1924
      Successful request count: 6589
      Avg request latency: 3444 usec (overhead 6 usec + queue 825 usec + compute input 76 usec + compute infer 1431 usec + compute output 1105 usec)

  preprocess, version: 1
      Inference count: 6594
      Execution count: 2302
      Successful request count: 6594
      Avg request latency: 2738 usec (overhead 4 usec + queue 770 usec + compute input 74 usec + compute infer 1643 usec + compute output 245 usec)

  ugt_trt, version: 1
      Inference count: 6594
      Execution count: 1919
      Successful request count: 6594
      Avg request latency: 10705 usec (overhead 6 usec + queue 3191 usec + compute input 97 usec + compute infer 7249 usec + compute output 162 usec)

"""

ENSEMBLE_SUMMARY = """\
Inferences/Second vs. Client p99 Batch Latency
Concurrency: 8, throughput: 456.645 infer/sec, latency 29236 usec
"""

SINGLE_MODEL = """\
Request concurrency: 2
  Client:
    Request count: 486
    Throughput: 89.9262 infer/sec
    Avg latency: 22164 usec (standard deviation 286 usec)
    p50 latency: 22129 usec
    p90 latency: 22523 usec
    p95 latency: 22645 usec
    p99 latency: 23032 usec
    Avg gRPC time: 22125 usec ((un)marshal request/response 14 usec + response wait 22111 usec)
  Server:
    Inference count: 486
    Execution count: 243
    Successful request count: 486
    Avg request latency: 2100 usec (overhead 5 usec + queue 300 usec + compute input 50 usec + compute infer 1600 usec + compute output 100 usec)

Inferences/Second vs. Client Average Batch Latency
Concurrency: 2, throughput: 89.9262 infer/sec, latency 22164 usec
"""


def trailing_spaces(text: str) -> str:
    """perf_analyzer writes these section titles with a trailing space."""
    for title in ("Client:", "Server:", "Composing models:"):
        text = text.replace(f"{title}\n", f"{title} \n")
    return text


def test_parse_ensemble_report():
    [result] = parse_output(trailing_spaces(SETTINGS + ENSEMBLE_BLOCK + ENSEMBLE_SUMMARY), "ugt_recommend")
    assert result.ok and result.error is None
    assert (result.model, result.concurrency, result.request_count) == ("ugt_recommend", 8, 6589)
    assert result.throughput == pytest.approx(456.645)
    assert (result.p50_us, result.p90_us, result.p95_us, result.p99_us) == (16731, 22741, 24706, 29236)
    assert result.avg_latency_us == 17472  # no "Avg latency" line with --percentile: the gRPC time
    assert result.server == StepBreakdown("ugt_recommend", 6589, 6589, 16790, 4786, 0, 12085, 0)
    assert [s.model for s in result.steps] == ["postprocess", "preprocess", "ugt_trt"]
    post, pre, trt = result.steps
    assert post == StepBreakdown("postprocess", 6589, 1924, 3444, 825, 76, 1431, 1105)
    assert pre == StepBreakdown("preprocess", 6594, 2302, 2738, 770, 74, 1643, 245)
    assert trt == StepBreakdown("ugt_trt", 6594, 1919, 10705, 3191, 97, 7249, 162)
    assert trt.avg_batch == pytest.approx(6594 / 1919)
    assert pre.compute_us == 74 + 1643 + 245


def test_parse_single_model_report():
    [result] = parse_output(trailing_spaces(SETTINGS + SINGLE_MODEL), "preprocess")
    assert (result.concurrency, result.request_count, result.steps) == (2, 486, ())
    assert result.throughput == pytest.approx(89.9262)
    assert result.avg_latency_us == 22164
    assert result.p99_us == 23032
    assert result.server == StepBreakdown("preprocess", 486, 243, 2100, 300, 50, 1600, 100)
    assert result.server.avg_batch == 2.0


def test_parse_sweep_keeps_every_concurrency():
    second = ENSEMBLE_BLOCK.replace("concurrency: 8", "concurrency: 16").replace("456.645", "500.5")
    results = parse_output(SETTINGS + ENSEMBLE_BLOCK + second + ENSEMBLE_SUMMARY, "ugt_recommend")
    assert [(r.concurrency, r.throughput, len(r.steps)) for r in results] == [(8, 456.645, 3), (16, 500.5, 3)]


def test_unstable_first_value_is_an_error_entry():
    # What perf_analyzer 2.51 prints (exit code 2) when the first value of a sweep never stabilises.
    text = (
        SETTINGS
        + "Request concurrency: 1\n\n"
        + (
            "Failed to obtain stable measurement within 3 measurement windows for concurrency 1. "
            "Please try to increase the --measurement-interval.\nFailed to obtain stable measurement.\n"
        )
    )
    [result] = parse_output(text, "ugt_recommend")
    assert (result.concurrency, result.error, result.ok) == (1, UNSTABLE, False)
    assert math.isnan(result.throughput) and result.server is None and result.steps == ()


def test_unstable_later_value_keeps_the_measured_ones():
    # Exit code 0: the sweep stops at the unstable value, its header is printed without numbers,
    # and the stderr message (appended by `run`) names it.
    text = (
        SETTINGS + ENSEMBLE_BLOCK + "Request concurrency: 9\n" + ENSEMBLE_SUMMARY + "\n"
        "Failed to obtain stable measurement within 6 measurement windows for concurrency 9. "
        "Please try to increase the --measurement-interval.\n"
    )
    results = parse_output(text, "ugt_recommend")
    assert [(r.concurrency, r.error) for r in results] == [(8, None), (9, UNSTABLE)]
    assert pa._rest_of_sweep([8, 9, 10, 11], {r.concurrency: r for r in results}, "m", {}) == [[10, 11]]


def test_unstable_value_without_header_is_reported():
    text = "Failed to obtain stable measurement within 6 measurement windows for concurrency 4."
    assert [(r.concurrency, r.error) for r in parse_output(text, "m")] == [(4, UNSTABLE)]


def test_block_without_numbers_is_not_measured():
    [result] = parse_output(SETTINGS + "Request concurrency: 3\n", "m")
    assert result.error == NOT_MEASURED
    results: dict[int, PerfAnalyzerResult] = {}
    assert pa._rest_of_sweep([3, 4], {3: result}, "m", results) == []
    assert sorted(results) == [3, 4] and {r.error for r in results.values()} == {NOT_MEASURED}


GARBAGE = [
    "",
    "garbage\n\x00\x01 nothing: here",
    "Request concurrency: x\n  Client:\n",
    "Concurrency: 8, throughput: 1 infer/sec, latency 3 usec",
    "Failed to obtain stable measurement.",
]


@pytest.mark.parametrize("text", GARBAGE)
def test_garbage_gives_nothing(text):
    assert parse_output(text, "m") == []


def test_missing_fields_default_and_unknown_lines_are_ignored():
    text = (
        "Request concurrency: 4\n  Client:\n    Throughput: 10 infer/sec\n    Some new field: 7 widgets\n"
        "  Server:\n    Execution count: 0\n"
        "    Avg request latency: 50 usec (queue 20 usec + new thing 1 usec)\n"
    )
    [result] = parse_output(text, "m")
    assert result.throughput == 10 and result.request_count == 0 and result.avg_latency_us is None
    assert math.isnan(result.p99_us)
    assert result.server == StepBreakdown("m", 0, 0, 50, 20, 0, 0, 0)
    assert result.server.avg_batch == 0


def test_arithmetic_progressions():
    assert pa._step([1, 2, 3]) == 1 and pa._step([4, 8, 12]) == 4 and pa._step([5]) == 1
    assert pa._step([1, 2, 4]) is None


def test_write_input_data_round_trip(tmp_path):
    mask = np.array([1.0, 1.0, 0.0, 0.5], dtype=np.float32)
    ids = np.arange(6, dtype=np.int64).reshape(2, 3)
    path = write_input_data(
        tmp_path / "sub" / "in.json",
        [
            {"HISTORY": "[1,2,3]"},
            {"HISTORY": b'[4, {"item_id": 5, "type": "cart"}]'},
            {"encoder_l1_ids": ids, "encoder_mask": mask},
        ],
    )
    data = json.loads(path.read_text(encoding="utf-8"))["data"]
    assert data[0] == {"HISTORY": {"content": ["[1,2,3]"], "shape": [1]}}
    assert data[1]["HISTORY"] == {"content": ['[4, {"item_id": 5, "type": "cart"}]'], "shape": [1]}
    assert data[2]["encoder_l1_ids"] == {"content": [0, 1, 2, 3, 4, 5], "shape": [2, 3]}
    assert all(isinstance(x, int) for x in data[2]["encoder_l1_ids"]["content"])
    assert data[2]["encoder_mask"] == {"content": [1.0, 1.0, 0.0, 0.5], "shape": [4]}
    assert all(isinstance(x, float) for x in data[2]["encoder_mask"]["content"])


def test_write_input_data_bytes_array_and_errors(tmp_path):
    path = write_input_data(tmp_path / "in.json", [{"HISTORY": np.array([b"[1]"], dtype=object)}])
    assert json.loads(path.read_text())["data"] == [{"HISTORY": {"content": ["[1]"], "shape": [1]}}]
    with pytest.raises(ConfigError):
        write_input_data(tmp_path / "x.json", [])
    with pytest.raises(ConfigError, match="not UTF-8"):
        write_input_data(tmp_path / "x.json", [{"HISTORY": b"\xff"}])
    with pytest.raises(ConfigError, match="complex"):
        write_input_data(tmp_path / "x.json", [{"X": np.zeros(2, dtype=np.complex64)}])


def test_locate_without_a_binary(tmp_path, monkeypatch):
    monkeypatch.setattr(pa.sys, "executable", str(tmp_path / "python"))
    monkeypatch.setattr(pa.shutil, "which", lambda name: None)
    with pytest.raises(MissingDependencyError, match="perf_analyzer not found") as info:
        PerfAnalyzer.locate()
    assert "\n" not in str(info.value)


def test_library_env_puts_cuda_runtime_first(tmp_path, monkeypatch):
    lib = tmp_path / "nvidia" / "cuda_runtime" / "lib"
    lib.mkdir(parents=True)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("LD_LIBRARY_PATH", "/somewhere")
    paths = pa._library_env()["LD_LIBRARY_PATH"].split(":")
    assert paths[-1] == "/somewhere" and str(lib) in paths
