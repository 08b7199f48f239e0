"""Helpers of scripts/gpu_check.sh: sample Triton's GPU metrics, and write the GPU section of BENCHMARKS.md.

    gpu_check_report.py sample METRICS_URL OUT.jsonl      poll nv_gpu_utilization / nv_gpu_memory_used_bytes
                                                          every second until SIGTERM
    gpu_check_report.py section --mode tensorrt|torch --work DIR --output BENCHMARKS.md --gpu TEXT [--note TEXT]

The section sits between BEGIN and END markers; a rerun replaces it, and the rest of the file is kept.
Standard library only.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import signal
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

BEGIN = "<!-- gpu_check:begin (scripts/gpu_check.sh writes this section; a rerun replaces it) -->"
END = "<!-- gpu_check:end -->"
#: The seeds' bar: P99 under 30 ms at batch 64 and sequence 512, GPU utilisation above 80 %.
TARGET_BATCH, TARGET_LENGTH, TARGET_P99_MS, TARGET_UTIL = 64, 512, 30.0, 0.80
_SAMPLE = re.compile(r"^(nv_gpu_utilization|nv_gpu_memory_used_bytes)\{[^}]*\}\s+([0-9.eE+-]+)$", re.M)


def parse_gpu_metrics(text: str) -> dict[str, float]:
    """Triton's /metrics text -> the highest utilisation (0-1) and the summed memory (bytes) over its GPUs."""
    util, memory = [], []
    for name, value in _SAMPLE.findall(text):
        (util if name == "nv_gpu_utilization" else memory).append(float(value))
    return {"util": max(util, default=0.0), "memory_bytes": sum(memory)}


def sample(url: str, out: Path, interval_s: float = 1.0) -> int:
    """Append one JSON line {"t", "util", "memory_bytes"} per interval until SIGTERM / SIGINT."""
    running = [True]
    signal.signal(signal.SIGTERM, lambda *_: running.__setitem__(0, False))
    with out.open("a", encoding="utf-8") as handle:
        while running[0]:
            try:
                with urllib.request.urlopen(url, timeout=5) as answer:
                    metrics = parse_gpu_metrics(answer.read().decode("utf-8", "replace"))
                handle.write(json.dumps({"t": time.time(), **metrics}) + "\n")
                handle.flush()
            except (OSError, ValueError):
                pass
            time.sleep(interval_s)
    return 0


def window(samples: list[dict[str, float]], start: float, end: float) -> dict[str, float | None]:
    """Mean and max utilisation and the max memory of the samples taken in [start, end]."""
    inside = [s for s in samples if start <= s["t"] <= end]
    if not inside:
        return {"util_mean": None, "util_max": None, "memory_mib": None}
    utils = [s["util"] for s in inside]
    return {
        "util_mean": sum(utils) / len(utils),
        "util_max": max(utils),
        "memory_mib": max(s["memory_bytes"] for s in inside) / 2**20,
    }


def tensorrt_rows(work: Path) -> list[dict[str, Any]]:
    """One row per bench run under work/bench/<precision>/L<length>-c<concurrency>/ (bench.csv, start, end)."""
    rows = []
    for run in sorted((work / "bench").glob("*/L*-c*")):
        precision, (length, concurrency) = run.parent.name, re.findall(r"\d+", run.name)
        samples = _read_samples(work / f"metrics-{precision}.jsonl")
        row: dict[str, Any] = {"precision": precision, "length": int(length), "batch": int(concurrency)}
        try:
            start, end = (float((run / name).read_text()) for name in ("start", "end"))
            with (run / "bench.csv").open(encoding="utf-8") as handle:
                result = next(r for r in csv.DictReader(handle) if r.get("target", "ensemble") == "ensemble")
            row.update(throughput=float(result["throughput"]), p99_ms=float(result["latency_p99"]))
            row.update(window(samples, start, end))
        except (OSError, StopIteration, KeyError, ValueError) as exc:
            row["error"] = f"no result ({type(exc).__name__})"
        rows.append(row)
    return rows


def torch_rows(work: Path) -> list[dict[str, Any]]:
    """The rows scripts/gpu_check_torch.py wrote (work/torch.json)."""
    path = work / "torch.json"
    return json.loads(path.read_text(encoding="utf-8"))["rows"] if path.is_file() else []


def render_section(mode: str, rows: list[dict[str, Any]], gpu: str, notes: list[str]) -> str:
    """The Markdown section, markers included."""
    what = {
        "tensorrt": "TensorRT engines served by tritonserver; `bench --perf-analyzer` over gRPC through the "
        "whole ensemble (raw JSON histories in), one run per history length and concurrency; GPU figures "
        "from Triton's metrics (nv_gpu_utilization, nv_gpu_memory_used_bytes) during each run.",
        "torch": "**TensorRT is not installed here: the model step alone was measured with PyTorch on CUDA "
        "(eager, no Triton, no preprocess/postprocess); these are not Triton numbers.** Batch = rows per "
        "call; GPU figures sampled with nvidia-smi during each measurement.",
    }[mode]
    lines = [BEGIN, "## GPU check", "", f"Run {time.strftime('%Y-%m-%d')} on {gpu}. {what}", ""]
    lines += [f"- {note}" for note in notes] + ([""] if notes else [])
    lines += _verdict(rows) + [""]
    lines += ["| precision | history length | batch | req/s | p99 ms | GPU util mean / max | GPU memory MiB |"]
    lines += ["|---|---|---|---|---|---|---|"]
    lines += [_table_row(r) for r in sorted(rows, key=lambda r: (r["precision"], r["length"], r["batch"]))]
    return "\n".join(lines + ["", END]) + "\n"


def replace_section(path: Path, section: str) -> None:
    """Put `section` into `path` in place of the previous one (appended the first time)."""
    text = path.read_text(encoding="utf-8") if path.is_file() else ""
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        text = head + section.rstrip("\n") + rest.split(END, 1)[1]
    else:
        text = (text.rstrip("\n") + "\n\n" if text else "") + section
    path.write_text(text, encoding="utf-8")


def _verdict(rows: list[dict[str, Any]]) -> list[str]:
    at = [r for r in rows if r["batch"] == TARGET_BATCH and r["length"] == TARGET_LENGTH and "p99_ms" in r]
    if not at:
        return [f"Targets (batch {TARGET_BATCH}, length {TARGET_LENGTH}): not measured."]
    lines = []
    for r in sorted(at, key=lambda r: r["precision"]):
        p99_ok = "met" if r["p99_ms"] < TARGET_P99_MS else "NOT met"
        util = r.get("util_mean")
        util_text = "not measured" if util is None else f"{util:.0%} ({'met' if util > TARGET_UTIL else 'NOT met'})"
        lines.append(
            f"- {r['precision']}: p99 {r['p99_ms']:.2f} ms at batch {TARGET_BATCH}, length {TARGET_LENGTH} "
            f"(target < {TARGET_P99_MS:g} ms: {p99_ok}); GPU utilisation {util_text}, target > {TARGET_UTIL:.0%}"
        )
    return lines


def _table_row(r: dict[str, Any]) -> str:
    if "error" in r:
        return f"| {r['precision']} | {r['length']} | {r['batch']} | {r['error']} | | | |"
    util = "-" if r.get("util_mean") is None else f"{r['util_mean']:.0%} / {r['util_max']:.0%}"
    memory = "-" if r.get("memory_mib") is None else f"{r['memory_mib']:.0f}"
    return f"| {r['precision']} | {r['length']} | {r['batch']} | {r['throughput']:.1f} | {r['p99_ms']:.2f} | {util} | {memory} |"  # noqa: E501


def _read_samples(path: Path) -> list[dict[str, float]]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    sampler = commands.add_parser("sample")
    sampler.add_argument("url")
    sampler.add_argument("out", type=Path)
    section = commands.add_parser("section")
    section.add_argument("--mode", choices=("tensorrt", "torch"), required=True)
    section.add_argument("--work", type=Path, required=True)
    section.add_argument("--output", type=Path, required=True)
    section.add_argument("--gpu", required=True)
    section.add_argument("--note", action="append", default=[])
    args = parser.parse_args(argv)
    if args.command == "sample":
        return sample(args.url, args.out)
    rows = tensorrt_rows(args.work) if args.mode == "tensorrt" else torch_rows(args.work)
    replace_section(args.output, render_section(args.mode, rows, args.gpu, args.note))
    print(f"wrote the GPU section of {args.output} ({len(rows)} rows)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
