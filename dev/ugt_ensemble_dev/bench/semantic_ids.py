"""Time `python -m ugt_ensemble semantic-ids` on synthetic clustered embeddings (issue 24's BENCHMARKS.md figures).

    python -m ugt_ensemble_dev.bench.semantic_ids --items 100000,1000000 --dim 64 --work-dir /tmp/sid_bench \
        [--threads N] [--report FILE]

For each size: a seeded Parquet file of `--items` vectors (a list column `embedding`, float32) drawn around 4,096
cluster centres, 0.5 % of them exact copies of another item (the duplicates real catalogs have); then the real
command in a subprocess with the default codebooks (1024, 4096, 16384): its wall time, its CPU time, its peak
resident memory (the child's ru_maxrss) and the stage seconds of its report. The load average before and after
says whether other jobs shared the cores. Prints a Markdown table (and writes it to `--report`).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Sequence

import numpy as np

CENTRES = 4096
DUPLICATE_SHARE = 0.005


def write_embeddings(path: Path, items: int, dim: int, seed: int = 0) -> None:
    """Clustered float32 embeddings with exact duplicates, as Parquet (item_id, embedding list column)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((CENTRES, dim)).astype(np.float32)
    vectors = centres[rng.integers(0, CENTRES, items)]
    vectors += 0.35 * rng.standard_normal((items, dim), dtype=np.float32)
    copies = rng.choice(items, int(items * DUPLICATE_SHARE), replace=False)
    vectors[copies] = vectors[rng.integers(0, items, copies.size)]
    flat = pa.array(vectors.reshape(-1))
    column = pa.FixedSizeListArray.from_arrays(flat, dim)
    pq.write_table(pa.table({"item_id": pa.array(np.arange(items, dtype=np.int64) * 7 + 3), "embedding": column}),
                   path)  # fmt: skip


def run_once(embeddings: Path, output: Path, threads: int | None) -> dict:
    """The command's wall seconds, CPU seconds, peak RSS (MiB) and report."""
    command = [sys.executable, "-m", "ugt_ensemble", "semantic-ids", str(embeddings), "-o", str(output)]
    if threads:
        command += ["--threads", str(threads)]
    load_before = os.getloadavg()[0]
    start = time.perf_counter()
    process = subprocess.Popen(command)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(command)} failed with status {os.waitstatus_to_exitcode(status)}")
    report = json.loads(output.with_name(output.stem + ".report.json").read_text())
    return {"command": " ".join(command[1:]), "wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime,
            "peak_rss_mib": usage.ru_maxrss / 1024, "load_before": load_before, "load_after": os.getloadavg()[0],
            "report": report}  # fmt: skip


def markdown(rows: list[tuple[int, float, dict]]) -> str:
    lines = [
        "| items | write input s | command wall s | CPU s | peak RSS MiB | read | level 1 | level 2 | level 3 | "
        "collisions | moved items | relative error l1/l2/l3 | load avg before/after |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for items, generate_s, run in rows:
        r = run["report"]
        s = r["seconds"]
        errors = "/".join(f"{e['relative']:.3f}" for e in r["quantisation_error"])
        read_s = r["total_seconds"] - sum(s.values())  # reading, writing and the read-back check
        lines.append(f"| {items:,} | {generate_s:.1f} | {run['wall_s']:.1f} | {run['cpu_s']:.1f} | "
                     f"{run['peak_rss_mib']:.0f} | {read_s:.1f} (+write) | {s['level1']:.1f} | {s['level2']:.1f} | "
                     f"{s['level3']:.1f} | {s['collisions']:.1f} | {r['collisions']['moved_items']:,} | {errors} | "
                     f"{run['load_before']:.1f}/{run['load_after']:.1f} |")  # fmt: skip
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m ugt_ensemble_dev.bench.semantic_ids", description=__doc__.strip())
    p.add_argument("--items", default="100000,1000000", help="comma-separated catalog sizes")
    p.add_argument("--dim", type=int, default=64)
    p.add_argument("--work-dir", type=Path, required=True)
    p.add_argument("--threads", type=int, help="passed to semantic-ids --threads")
    p.add_argument("--report", type=Path, help="also write the Markdown table here")
    args = p.parse_args(argv)
    args.work_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for items in (int(v) for v in args.items.split(",") if v.strip()):
        embeddings = args.work_dir / f"embeddings_{items}.parquet"
        start = time.perf_counter()
        write_embeddings(embeddings, items, args.dim)
        generate_s = time.perf_counter() - start
        run = run_once(embeddings, args.work_dir / f"catalog_{items}.csv", args.threads)
        print(f"{items} items: {run['wall_s']:.1f} s, {run['peak_rss_mib']:.0f} MiB; {run['command']}", flush=True)
        rows.append((items, generate_s, run))
    table = markdown(rows)
    print(table)
    if args.report:
        args.report.write_text(table + "\n" + json.dumps([r for _, _, r in rows], indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
