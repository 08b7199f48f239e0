"""Benchmark reports: CSV, a Markdown table, and a PNG of latency percentiles against throughput."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Sequence

from ugt_ensemble.client.load_results import COLUMNS, BenchmarkResult
from ugt_ensemble_dev.bench.targets import TARGETS


def write_csv(stats: Sequence[BenchmarkResult], path: Path) -> Path:
    """Every field of every run, one row each."""
    rows = [s.as_row() for s in stats]
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(COLUMNS))
        writer.writeheader()
        writer.writerows(rows)
    return path


def markdown_table(stats: Sequence[BenchmarkResult]) -> str:
    """A Markdown table of the main columns (latencies in ms, throughput in requests/s)."""
    header = "| target | conc. | req/s | p50 | p90 | p95 | p99 | avg | min | max | ok | failed |"
    lines = [header, "|" + "---|" * 12]
    for s in stats:
        lines.append(
            f"| {s.target} | {s.concurrency} | {s.throughput:.1f} | {s.latency_p50:.2f} | {s.latency_p90:.2f} | "
            f"{s.latency_p95:.2f} | {s.latency_p99:.2f} | {s.latency_avg:.2f} | {s.latency_min:.2f} | "
            f"{s.latency_max:.2f} | {s.successful_requests} | {s.failed_requests} |"
        )
    return "\n".join(lines)


def plot(stats: Sequence[BenchmarkResult], path: Path, title: str) -> Path | None:
    """Latency (p50 dashed, p99 solid) against throughput, one colour per target; None without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, ax = plt.subplots(figsize=(8, 5))
    for index, target in enumerate(dict.fromkeys(s.target for s in stats)):
        runs = sorted((s for s in stats if s.target == target), key=lambda s: s.concurrency)
        x = [s.throughput for s in runs]
        colour = f"C{index}"
        ax.plot(x, [s.latency_p99 for s in runs], "-o", color=colour, label=f"{target} p99")
        ax.plot(x, [s.latency_p50 for s in runs], "--", color=colour, alpha=0.6, label=f"{target} p50")
        for s in runs:
            ax.annotate(
                f"c{s.concurrency}",
                (s.throughput, s.latency_p99),
                textcoords="offset points",
                xytext=(4, 4),
                fontsize=7,
            )
    ax.set_xlabel("throughput (requests/s)")
    ax.set_ylabel("latency (ms)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def target_legend(names: Sequence[str]) -> str:
    """A Markdown list describing each target in `names`."""
    return "\n".join(f"- `{n}`: {TARGETS[n]}" for n in dict.fromkeys(names))
