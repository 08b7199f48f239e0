"""Run NVIDIA `perf_analyzer` against a served model (its report is parsed by `perf_analyzer_output`).

A concurrency value whose measurement never stabilises ends perf_analyzer's sweep (exit code 2 when it
is the first value, 0 otherwise); `run` then goes on from the next value and reports the unstable one
as an entry with `error` set.
"""

from __future__ import annotations

import itertools
import logging
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ugt_ensemble.errors import ConfigError, MissingDependencyError, UgtEnsembleError
from ugt_ensemble.repository.input_data import write_input_data
from ugt_ensemble.tools.environment import cuda_runtime_libs
from ugt_ensemble_dev.bench.perf_analyzer_output import (
    NOT_MEASURED,
    UNSTABLE,
    UNSTABLE_LINE,
    PerfAnalyzerResult,
    StepBreakdown,
    parse_output,
)

__all__ = ["PerfAnalyzer", "PerfAnalyzerResult", "StepBreakdown", "parse_output", "run", "write_input_data"]

LOGGER = logging.getLogger(__name__)

#: perf_analyzer's exit code when a measurement did not stabilise (pa::STABILITY_ERROR).
STABILITY_EXIT_CODE = 2
_LIBRARY_HINTS = {
    "libb64": "sudo apt-get install libb64-0d",
    "libcudart": "pip install nvidia-cuda-runtime-cu12",
}


@dataclass(frozen=True)
class PerfAnalyzer:
    """A runnable perf_analyzer: the binary and the environment it needs on top of `os.environ`."""

    executable: Path
    env: dict[str, str] = field(default_factory=dict)

    @classmethod
    def locate(cls) -> PerfAnalyzer:
        """The binary next to this Python (tritonclient's wheel) or on PATH, with its libraries checked."""
        candidates = [Path(sys.executable).parent / "perf_analyzer", shutil.which("perf_analyzer")]
        found = [Path(c) for c in candidates if c and os.access(c, os.X_OK) and Path(c).is_file()]
        if not found:
            raise MissingDependencyError(
                f"perf_analyzer not found next to {sys.executable} or on PATH: "
                "pip install 'tritonclient[grpc]==2.51.0' (its manylinux wheel ships the binary)"
            )
        analyzer = cls(found[0], _library_env())
        analyzer._check_libraries()
        return analyzer

    def environment(self) -> dict[str, str]:
        return {**os.environ, **self.env}

    def _check_libraries(self) -> None:
        ldd = shutil.which("ldd")
        if ldd is None:
            LOGGER.debug("no ldd; not checking perf_analyzer's libraries")
            return
        out = subprocess.run(
            [ldd, str(self.executable)], check=False, capture_output=True, text=True, env=self.environment(), timeout=30
        ).stdout
        missing = [line.split("=>")[0].strip() for line in out.splitlines() if "not found" in line]
        if missing:
            hints = [
                f"{lib}: "
                + next(
                    (h for k, h in _LIBRARY_HINTS.items() if lib.startswith(k)), "install the package that provides it"
                )
                for lib in missing
            ]
            raise MissingDependencyError(f"perf_analyzer needs {'; '.join(hints)}")


def _library_env() -> dict[str, str]:
    """LD_LIBRARY_PATH with nvidia-cuda-runtime-cu12's lib/ (libcudart.so.12) first, if it is installed."""
    libs = cuda_runtime_libs()
    existing = [os.environ["LD_LIBRARY_PATH"]] if os.environ.get("LD_LIBRARY_PATH") else []
    return {"LD_LIBRARY_PATH": os.pathsep.join(libs + existing)} if libs else {}


def run(
    analyzer: PerfAnalyzer,
    url: str,
    model: str,
    input_data: Path,
    concurrency: Sequence[int],
    output_dir: Path,
    measurement_ms: int = 4000,
    percentile: int = 99,
    stability_percentage: int = 20,
    max_trials: int = 6,
    extra_args: Sequence[str] = (),
) -> list[PerfAnalyzerResult]:
    """Measure `model` at gRPC `url` at each concurrency; one result per value, sorted.

    An arithmetic progression is one sweep (--concurrency-range start:end:step); other values get a
    process each. A value that never became stable is logged, comes back with `error` set, and the sweep
    goes on after it. Writes output_dir/<model>.csv (the rows of every process) and <model>.log (their
    stdout and stderr). `UgtEnsembleError` if perf_analyzer fails otherwise.
    """
    values = sorted({int(c) for c in concurrency})
    if not values or values[0] < 1:
        raise ConfigError(f"concurrency must be positive integers, got {list(concurrency)}")
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    command = [
        str(analyzer.executable),
        "-m",
        model,
        "-u",
        url,
        "-i",
        "grpc",
        "--input-data",
        str(input_data),
        f"--percentile={percentile}",
        "--measurement-interval",
        str(measurement_ms),
        "--stability-percentage",
        str(stability_percentage),
        "--max-trials",
        str(max_trials),
        "--verbose-csv",
        *extra_args,
    ]
    results: dict[int, PerfAnalyzerResult] = {}
    logs: list[str] = []
    csv_lines: list[str] = []
    pending = [values] if _step(values) else [[v] for v in values]
    with tempfile.TemporaryDirectory(prefix="ugt-perf-") as tmp:
        while pending:
            group = pending.pop(0)
            csv_path = Path(tmp) / f"{len(logs)}.csv"
            sweep = ["--concurrency-range", f"{group[0]}:{group[-1]}:{_step(group)}", "-f", str(csv_path)]
            timeout = (max_trials + 2) * measurement_ms * len(group) / 1000 + 60
            text = _run_process(analyzer, [*command, *sweep], timeout, logs)
            parsed = {r.concurrency: r for r in parse_output(text, model) if r.concurrency in group}
            results.update(parsed)
            if csv_path.is_file():
                lines = csv_path.read_text(encoding="utf-8").splitlines()
                csv_lines += lines[1:] if csv_lines else lines
            pending[:0] = _rest_of_sweep(group, parsed, model, results)
    (output_dir / f"{model}.csv").write_text("".join(f"{line}\n" for line in csv_lines), encoding="utf-8")
    (output_dir / f"{model}.log").write_text("".join(logs), encoding="utf-8")
    return [results[v] for v in values if v in results]


def _run_process(analyzer: PerfAnalyzer, command: list[str], timeout: float, logs: list[str]) -> str:
    """Run perf_analyzer once; its stdout and stderr. Raises unless it succeeded or a value was unstable."""
    LOGGER.info("running %s", shlex.join(command))
    try:
        done = subprocess.run(
            command, check=False, capture_output=True, text=True, env=analyzer.environment(), timeout=timeout
        )
    except subprocess.TimeoutExpired as exc:
        tail = _tail(_decode(exc.stdout) + _decode(exc.stderr))
        raise UgtEnsembleError(f"perf_analyzer did not finish in {timeout:.0f} s:\n{tail}") from None
    except OSError as exc:
        raise MissingDependencyError(f"cannot run {analyzer.executable}: {exc}") from None
    logs.append(
        f"$ {shlex.join(command)}\n{done.stdout}\n--- stderr (exit code {done.returncode}) ---\n{done.stderr}\n"
    )
    text = f"{done.stdout}\n{done.stderr}"
    unstable = done.returncode == STABILITY_EXIT_CODE and UNSTABLE_LINE.search(text) is not None
    if done.returncode != 0 and not unstable:
        raise UgtEnsembleError(f"perf_analyzer failed with exit code {done.returncode}:\n{_tail(text)}")
    return text


def _rest_of_sweep(
    group: list[int], parsed: Mapping[int, PerfAnalyzerResult], model: str, results: dict[int, PerfAnalyzerResult]
) -> list[list[int]]:
    """After a sweep: the values still to run (a sweep stops at an unstable value); marks unmeasured ones."""
    missing = [v for v in group if v not in parsed or not parsed[v].ok]
    if not missing:
        return []
    stop = missing[0]
    if stop in parsed and parsed[stop].error == UNSTABLE:
        LOGGER.warning(
            "perf_analyzer: %s at concurrency %d was not stable within the trials; skipped "
            "(raise measurement_ms, stability_percentage or max_trials)",
            model,
            stop,
        )
        rest = [v for v in group if v > stop]
        return [rest] if rest else []
    for value in missing:
        LOGGER.warning("perf_analyzer: no measurement of %s at concurrency %d", model, value)
        results[value] = PerfAnalyzerResult.failed(model, value, NOT_MEASURED)
    return []


def _step(values: Sequence[int]) -> int | None:
    """The common difference if `values` (sorted, distinct) form an arithmetic progression."""
    steps = {b - a for a, b in itertools.pairwise(values)} or {1}
    return steps.pop() if len(steps) == 1 else None


def _decode(data: bytes | str | None) -> str:
    return data.decode("utf-8", "replace") if isinstance(data, bytes) else (data or "")


def _tail(text: str, lines: int = 30) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])
