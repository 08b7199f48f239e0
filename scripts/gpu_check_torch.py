"""scripts/gpu_check.sh without TensorRT: time the model step (encoder + constrained beam search) with
PyTorch on CUDA, per precision, batch and history length, and sample GPU utilisation and memory with
nvidia-smi meanwhile. Writes {"rows": [...]} as JSON for gpu_check_report.py. The reference UGT (default
architecture, seeded weights) on a seeded synthetic catalog: the model `build` serves by default.

Exit status: 0 measured; 2 bad arguments; 3 no CUDA device (one line each).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any


def int_list(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


class GpuSampler:
    """Polls `nvidia-smi` (utilisation %, memory used MiB of GPU 0) in a thread between start() and stop()."""

    QUERY = ["nvidia-smi", "--id=0", "--query-gpu=utilization.gpu,memory.used", "--format=csv,noheader,nounits"]

    def __init__(self, interval_s: float = 0.2) -> None:
        self.interval_s, self.samples = interval_s, []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> GpuSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                out = subprocess.run(self.QUERY, capture_output=True, text=True, timeout=5).stdout
                util, memory = (float(v) for v in out.strip().splitlines()[0].split(","))
                self.samples.append((util / 100, memory))
            except (OSError, ValueError, IndexError, subprocess.SubprocessError):
                pass
            self._stop.wait(self.interval_s)

    def summary(self) -> dict[str, float | None]:
        if not self.samples:
            return {"util_mean": None, "util_max": None, "memory_mib": None}
        utils = [u for u, _ in self.samples]
        return {
            "util_mean": sum(utils) / len(utils),
            "util_max": max(utils),
            "memory_mib": max(m for _, m in self.samples),
        }


def measure(model, inputs: dict, precision: str, iterations: int, warmup: int) -> dict[str, float]:  # noqa: ANN001
    """Latency percentiles (ms) of `iterations` synchronised calls after `warmup` ones."""
    import torch

    dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(precision)
    timings = []
    with torch.inference_mode(), torch.autocast("cuda", dtype=dtype or torch.float16, enabled=dtype is not None):
        for i in range(warmup + iterations):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            model(**inputs)
            end.record()
            torch.cuda.synchronize()
            if i >= warmup:
                timings.append(start.elapsed_time(end))
    timings.sort()
    pick = lambda q: timings[min(len(timings) - 1, int(q * len(timings)))]  # noqa: E731
    return {"p50_ms": pick(0.5), "p99_ms": pick(0.99), "mean_ms": sum(timings) / len(timings)}


def run(args: argparse.Namespace) -> dict[str, Any]:
    import numpy as np
    import torch

    from ugt_ensemble.catalog import synthetic_catalog
    from ugt_ensemble.config import UGTConfig
    from ugt_ensemble.histories import random_encoder_batch
    from ugt_ensemble.model.ugt import build_model

    catalog = synthetic_catalog(args.items, seed=0)
    model = build_model(UGTConfig(), catalog.prefix_tables(), seed=0).to("cuda")
    index, rows = catalog.index(), []
    for precision in args.precisions.split(","):
        for length in args.lengths:
            for batch in args.batches:
                packed = random_encoder_batch(index, batch, length, np.random.default_rng(batch * 7919 + length))
                inputs = {k: torch.from_numpy(v).to("cuda") for k, v in packed.items()}
                row: dict[str, Any] = {"precision": precision, "length": length, "batch": batch}
                try:
                    with GpuSampler() as gpu:
                        row.update(measure(model, inputs, precision, args.iterations, args.warmup))
                    row.update(gpu.summary(), throughput=batch * 1000 / row["mean_ms"])
                except RuntimeError as exc:  # e.g. out of memory, or an op without fp16 kernel
                    row["error"] = str(exc).splitlines()[0][:80]
                rows.append(row)
                print(json.dumps(row), flush=True)
    return {"torch": torch.__version__, "device": torch.cuda.get_device_name(0), "rows": rows}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int_list, default=[1, 8, 16, 32, 64], help="default: 1,8,16,32,64")
    parser.add_argument("--lengths", type=int_list, default=[32, 128, 512, 1024], help="default: 32,128,512,1024")
    parser.add_argument("--precisions", default="fp32,fp16", help="fp32, fp16 (autocast), bf16 (default: fp32,fp16)")
    parser.add_argument("--iterations", type=int, default=50, help="timed calls per point (default: 50)")
    parser.add_argument("--warmup", type=int, default=10, help="untimed calls first (default: 10)")
    parser.add_argument("--items", type=int, default=10_000, help="synthetic catalog size (default: 10000)")
    parser.add_argument("--output", type=Path, required=True, help="JSON file to write")
    args = parser.parse_args(argv)
    if set(args.precisions.split(",")) - {"fp32", "fp16", "bf16"}:
        parser.exit(2, f"gpu_check_torch.py: unknown precision in {args.precisions!r} (fp32, fp16, bf16)\n")
    try:
        import torch
    except ImportError:
        parser.exit(3, "gpu_check_torch.py: torch is not installed\n")
    if not torch.cuda.is_available():
        parser.exit(3, f"gpu_check_torch.py: torch {torch.__version__} sees no CUDA device\n")
    started = time.time()
    result = run(args)
    result["seconds"] = round(time.time() - started, 1)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
