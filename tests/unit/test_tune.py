"""`bench --tune` without a server: settings in configs, the candidate grid, the choice, the write-back."""

from __future__ import annotations

import json

import pytest

from ugt_ensemble.client.load_results import BenchmarkResult
from ugt_ensemble.config import BuildConfig, ExportConfig, TritonConfig
from ugt_ensemble.errors import ConfigError, RepositoryError
from ugt_ensemble.repository.manifest import MANIFEST
from ugt_ensemble.repository.render import render_configs
from ugt_ensemble.repository.rules import parse_config
from ugt_ensemble.repository.step_settings import (
    StepSettings,
    read_step_config,
    settings_of,
    with_settings,
    write_step_settings,
)
from ugt_ensemble.repository.writer import write_models
from ugt_ensemble_dev.bench.tune import Candidate, TuneConfig, TuneResult, candidate_grid, choose, tune_markdown

STEP = TritonConfig().step_name


def _cpu_build(**triton) -> BuildConfig:
    """A build for a CPU server (ONNX Runtime, fp32) with these TritonConfig fields."""
    return BuildConfig(export=ExportConfig(precision="fp32"), triton=TritonConfig.cpu(**triton))


def _step_config(**triton):
    text = render_configs(_cpu_build(**triton))[STEP]
    return parse_config(text, STEP)


def test_settings_are_read_from_and_applied_to_the_emitted_config():
    config = _step_config(instance_count=1, intra_op_threads=2, max_queue_delay_us=0)
    assert settings_of(config) == StepSettings(1, 2, 0)
    tuned = with_settings(config, StepSettings(2, 1, 300))
    assert settings_of(tuned) == StepSettings(2, 1, 300)
    assert tuned.instance_group[0].kind == config.instance_group[0].kind
    assert settings_of(config) == StepSettings(1, 2, 0)  # the original is untouched


def test_native_engines_have_no_thread_knob():
    config = _step_config(platform="onnxruntime-backend", instance_count=3)
    assert settings_of(config) == StepSettings(3, None, 0)
    with pytest.raises(ConfigError, match="intra-op threads"):
        with_settings(config, StepSettings(1, 2, 0))


def test_invalid_settings_are_rejected():
    with pytest.raises(ConfigError, match=">= 1"):
        StepSettings(0, 1, 0)
    with pytest.raises(ConfigError, match="max_queue_delay_us"):
        StepSettings(1, 1, -5)
    with pytest.raises(ConfigError, match="rounds"):
        TuneConfig(rounds=0)


def test_grid_puts_the_current_settings_first_without_duplicates():
    current = StepSettings(1, 2, 0)
    grid = candidate_grid(current, (1, 2), (1, 2), (0, 200))
    assert grid[0] == current and len(grid) == len(set(grid)) == 8
    assert candidate_grid(StepSettings(1, None, 0), (1, 2), (1, 2), (0,)) == [
        StepSettings(1, None, 0),
        StepSettings(2, None, 0),
    ]


def _candidate(settings: StepSettings, *throughputs: float, p99: float = 10.0, failed: int = 0) -> Candidate:
    runs = [
        BenchmarkResult(t, 5.0, 8.0, 9.0, p99, 5.0, 1.0, 12.0, 100 + failed, 100, failed, concurrency=8)
        for t in throughputs
    ]
    return Candidate(settings, runs)


def test_choice_needs_a_clear_win_within_the_p99_slack():
    current, faster, much_faster = StepSettings(1, 2, 0), StepSettings(2, 1, 0), StepSettings(2, 2, 0)
    near = [_candidate(current, 100, 104, 96), _candidate(faster, 103, 104, 102)]
    assert choose(near, margin=0.05, p99_slack=0.2)[0] == current
    clear = [_candidate(current, 100, 90, 110), _candidate(faster, 120, 119, 130)]
    assert choose(clear, margin=0.05, p99_slack=0.2)[0] == faster
    slow_tail = [_candidate(current, 100), _candidate(much_faster, 150, p99=13.0)]
    chosen, reason = choose(slow_tail, margin=0.05, p99_slack=0.2)
    assert chosen == current and "p99 within 20%" in reason
    failing = [_candidate(current, 100), _candidate(much_faster, 150, failed=3)]
    assert choose(failing, margin=0.05, p99_slack=0.2)[0] == current


def test_unmeasurable_current_settings_are_an_error():
    with pytest.raises(ConfigError, match="could not be measured"):
        choose([Candidate(StepSettings(1, 2, 0), error="boom")], 0.05, 0.2)


def test_report_marks_the_current_and_chosen_settings():
    current, other, broken = StepSettings(1, 2, 0), StepSettings(2, 1, 0), StepSettings(4, 1, 0)
    candidates = [_candidate(current, 100, 90), _candidate(other, 130, 125), Candidate(broken, error="no memory")]
    report = tune_markdown(TuneResult(current, candidates, other, "faster"), TuneConfig())
    assert "| 1 inst x 2 threads, delay 0 us | 100.0 | 90-100 |" in report
    assert "| chosen |" in report and "| current |" in report
    assert "not loadable: no memory" in report and "Choice: faster." in report


@pytest.fixture
def repository(tmp_path, catalog):
    write_models(tmp_path, _cpu_build(), catalog.index())
    (tmp_path / STEP / "1" / "model.onnx").write_bytes(b"placeholder for the file check")
    (tmp_path / MANIFEST).write_text(json.dumps({"triton": {"instance_count": 1, "intra_op_threads": 2}}))
    return tmp_path


def test_write_back_keeps_the_header_and_records_the_choice(repository):
    path = write_step_settings(repository, STEP, StepSettings(2, 1, 100), "Tuned on a test")
    text = path.read_text()
    assert text.startswith("# Generated by ugt-ensemble") and "# Tuned on a test\n" in text
    assert settings_of(read_step_config(repository, STEP)) == StepSettings(2, 1, 100)
    manifest = json.loads((repository / MANIFEST).read_text())
    assert manifest["triton"]["instance_count"] == 2 and manifest["triton"]["intra_op_threads"] == 1
    assert manifest["tuned"]["max_queue_delay_us"] == 100


def test_write_back_restores_the_old_config_when_the_repository_fails(repository):
    (repository / "postprocess" / "1" / "model.py").unlink()
    before = (repository / STEP / "config.pbtxt").read_text()
    with pytest.raises(ConfigError, match="kept the old one.*missing model.py"):
        write_step_settings(repository, STEP, StepSettings(2, 1, 0), "Tuned")
    assert (repository / STEP / "config.pbtxt").read_text() == before


def test_missing_step_config_names_the_file(tmp_path):
    with pytest.raises(RepositoryError, match=f"{STEP}/config.pbtxt: cannot read"):
        read_step_config(tmp_path, STEP)
