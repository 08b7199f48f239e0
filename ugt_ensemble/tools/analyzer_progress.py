"""Progress of a running Model Analyzer, read from its log as it grows.

Model Analyzer 1.44 logs `Creating [ensemble] model config: <variant>` for each configuration it tries and
`Profiling <variant>: concurrency=<n>` for each perf_analyzer measurement (a configuration of the ensemble
comes with one of each composing model: only the ensemble's are counted). Its quick search stops when no
neighbour improves, so the number of configurations is not known beforehand; what is known is the size of
the space it searches (per composing model: instance counts x max batch sizes), an upper bound.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

_CONFIG = re.compile(r"(?:Creating|Found existing) (?:ensemble )?model config: (\S+)")
_MEASUREMENT = re.compile(r"Profiling (\S+): (.*)$")
_PHASES = ("Done with quick mode search", "Done gathering concurrency sweep", "Profiling server only metrics",
           "Generating", "Exporting", "Saved checkpoint")  # fmt: skip


def search_space(max_instance_count: int, max_batch_size: int, composing_models: int = 3) -> int:
    """Configurations in Model Analyzer's quick search space, plus its default one: an upper bound."""
    batch_sizes = max(max_batch_size, 1).bit_length()  # 1, 2, 4, ... up to max_batch_size
    return (max(max_instance_count, 1) * batch_sizes) ** composing_models + 1


@dataclass
class AnalyzerProgress:
    """Reads new lines of the log at each `poll` and says what happened since."""

    log: Path
    space: int
    model: str  # the profiled model (the ensemble): its composing models' configurations are not counted
    configs: list[str] = field(default_factory=list)
    measurements: int = 0
    _offset: int = 0

    def poll(self) -> list[str]:
        """One line per configuration started, measurement started or phase reached since the last call."""
        try:
            with self.log.open("rb") as handle:
                handle.seek(self._offset)
                chunk = handle.read()
        except OSError:
            return []
        complete = chunk[: chunk.rfind(b"\n") + 1]
        self._offset += len(complete)
        told = []
        for line in complete.decode("utf-8", "replace").splitlines():
            told += self._read(line)
        return told

    def _read(self, line: str) -> list[str]:
        match = _CONFIG.search(line)
        if match and match.group(1).startswith(f"{self.model}_config") and match.group(1) not in self.configs:
            self.configs.append(match.group(1))
            return [f"configuration {len(self.configs)} of at most {self.space}: {match.group(1)}"]
        if match := _MEASUREMENT.search(line):
            self.measurements += 1
            done = max(len(self.configs) - 1, 0)
            return [f"measurement {self.measurements} ({match.group(1)}, {match.group(2).strip()}); "
                    f"configurations done {done}, at most {self.space - done} to do"]  # fmt: skip
        phase = next((p for p in _PHASES if p in line), None)
        return [line.split("] ", 1)[-1].strip()] if phase else []
