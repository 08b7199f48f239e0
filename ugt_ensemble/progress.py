"""Step-by-step progress for long operations (build, export): `[2/6] Exporting ONNX ... done (9.6 s)`."""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from typing import Iterator, TextIO


class StepProgress:
    """Prints numbered steps to `stream` (stderr by default); silent when `enabled` is False.

    On a terminal, a step that runs longer than a few seconds shows its elapsed time while it runs.
    """

    def __init__(self, total: int = 0, stream: TextIO | None = None, enabled: bool = True) -> None:
        self.total = total
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.done = 0
        #: The title of the step running (or the last one started): what failed, when one raises.
        self.current = ""

    @classmethod
    def silent(cls) -> StepProgress:
        return cls(0, enabled=False)

    @contextlib.contextmanager
    def step(self, title: str) -> Iterator[None]:
        self.done += 1
        self.current = title
        label = f"[{self.done}/{self.total}] {title}"
        self._print(f"{label} ...")
        start = time.perf_counter()
        stop = threading.Event()
        ticker = self._start_ticker(label, start, stop)
        try:
            yield
        finally:
            stop.set()
            if ticker:
                ticker.join()
        self._print(f"{label}: done ({time.perf_counter() - start:.1f} s)")

    def _print(self, text: str) -> None:
        if self.enabled:
            print(text, file=self.stream, flush=True)

    def _start_ticker(self, label: str, start: float, stop: threading.Event) -> threading.Thread | None:
        if not (self.enabled and self.stream.isatty()):
            return None

        def tick() -> None:
            while not stop.wait(2.0):
                self.stream.write(f"\r{label} ... {time.perf_counter() - start:.0f} s")
                self.stream.flush()
            self.stream.write("\r")

        thread = threading.Thread(target=tick, daemon=True)
        thread.start()
        return thread
