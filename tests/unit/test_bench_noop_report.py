"""The no-op benchmark's arithmetic: CPU by model, requests per second per core, medians with ranges."""

from __future__ import annotations

from ugt_ensemble_dev.bench.noop import TARGETS, Measurement, by_model
from ugt_ensemble_dev.bench.noop_report import Roles, _cell, _per_core
from ugt_ensemble_dev.bench.perf_analyzer_output import PerfAnalyzerResult


def _measurement(cpu_ms: dict[str, float], round_no: int = 1) -> Measurement:
    result = PerfAnalyzerResult("ugt_recommend", 1, 500.0, 2000.0, 0, 0, 3000.0, None, 100, None)
    return Measurement(TARGETS[0], 1, round_no, result, cpu_ms)


def test_instances_and_replaced_stubs_add_up_by_model():
    cpu = {"tritonserver": 1.0, "preprocess#2": 0.5, "ugt_trt": 0.1, "ugt_trt#2": 0.2, "total": 1.8}
    assert by_model(cpu) == {"tritonserver": 1.0, "preprocess": 0.5, "ugt_trt": 0.1 + 0.2, "total": 1.8}


def test_requests_per_core_are_the_inverse_of_cpu_ms_per_request():
    roles = Roles("preprocess", "ugt_trt", "postprocess")
    m = _measurement({"preprocess": 0.4, "postprocess": 0.6, "ugt_trt": 0.2, "tritonserver": 1.0, "total": 2.2})
    assert roles.pre_post(m) == 1.0 and roles.without_step(m) == 2.0
    assert _per_core(roles.pre_post)(m) == 1000.0 and _per_core(roles.without_step)(m) == 500.0


def test_cells_are_medians_with_ranges_and_skip_missing_values():
    runs = [_measurement({"total": v}, i) for i, v in enumerate((2.0, 1.0, 4.0))]
    assert _cell(runs, lambda m: m.cpu_ms["total"], 1) == "2.0 (1.0-4.0)"
    assert _cell(runs[:1], lambda m: m.cpu_ms["total"]) == "2"
    assert _cell(runs, lambda m: m.cpu_ms.get("preprocess", float("nan"))) == "-"
