"""Describe the machine a benchmark ran on (for BENCHMARKS.md)."""

from __future__ import annotations

import datetime
import importlib.metadata
import os
import platform
from pathlib import Path

import tritonclient.grpc as grpcclient

PACKAGES = ("torch", "onnxruntime", "numpy", "tritonclient", "nvidia-pytriton", "orjson")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _memory_gib() -> str:
    try:
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        return f"{kib / 2**20:.0f} GiB"
    except (OSError, ValueError, IndexError):
        return "unknown"


def _server_version(url: str | None) -> str:
    if not url:
        return "unknown"
    try:
        with grpcclient.InferenceServerClient(url) as client:
            return f"tritonserver {client.get_server_metadata().version}"
    except Exception:  # noqa: BLE001 - a description, never a failure
        return "unknown"


def describe_machine(url: str | None = None) -> dict[str, str]:
    """CPU, cores, memory, OS, Python, package and server versions, and the date."""
    versions = []
    for name in PACKAGES:
        try:
            versions.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            continue
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": f"{_cpu_model()}, {os.cpu_count()} cores, {_memory_gib()}, no GPU in use",
        "os": f"{platform.system()} {platform.release()} ({platform.machine()})",
        "python": platform.python_version(),
        "packages": ", ".join(versions),
        "server": _server_version(url),
    }
