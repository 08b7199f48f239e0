"""`serve`'s supervision of tritonserver: start it, watch it, and restart it when it dies, within bounds.

tritonserver can die on its own (measured: a Python-backend stub paused for 3 s under load crashed it with
SIGSEGV in libtriton_python.so or SIGABRT from a boost interprocess lock, three times of three). When it
dies, or the watchdog gives up healing it, the supervisor logs why (exit code or signal, and the log's
tail), kills the stubs it left and removes its shared-memory regions (`server.orphans`), waits (1 s,
doubling up to 30 s), and starts it again with the same ports, operator key and arguments. It then sends
a real inference through the ensemble before resuming the watchdog. More than `max_restarts` restarts
within `window_s` means something a restart does not fix: `run` returns 3 with a message saying so.
A stop request (Ctrl-C, SIGTERM) stops the server and cleans up in every state, a start in progress included.
"""

from __future__ import annotations

import signal
import threading
import time
from dataclasses import dataclass
from typing import Callable

from ugt_ensemble.errors import ServerError
from ugt_ensemble.server.context import ServingContext
from ugt_ensemble.server.orphans import Cleanup
from ugt_ensemble.server.request_guard import RequestGuard
from ugt_ensemble.server.watchdog import Watchdog

#: `run`'s exit code when tritonserver keeps dying.
GAVE_UP = 3


@dataclass(frozen=True)
class RestartPolicy:
    """At most `max_restarts` restarts within `window_s`; the n-th waits `first_backoff_s` x 2^(n-1), capped."""

    max_restarts: int = 5
    window_s: float = 600.0
    first_backoff_s: float = 1.0
    max_backoff_s: float = 30.0

    def backoff_s(self, restart: int) -> float:
        """Seconds to wait before restart number `restart` (1-based) within the window."""
        return min(self.max_backoff_s, self.first_backoff_s * 2 ** max(0, restart - 1))


class StopRequested(BaseException):
    """Raised in the main thread by `Supervisor.request_stop` to abandon a start in progress."""


def describe_exit(code: int | None) -> str:
    """'killed by SIGSEGV', 'exited with code 1', ... for a Popen return code."""
    if code is None:
        return "is still running"
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with code {code}"


def _say(text: str) -> None:
    print(text, flush=True)


class Supervisor:
    """Runs `context` (not started yet) until a stop request or too many restarts."""

    def __init__(
        self,
        context: ServingContext,
        policy: RestartPolicy = RestartPolicy(),
        say: Callable[[str], None] = _say,
        public: RequestGuard | None = None,
    ) -> None:
        self.context, self.server, self.ensemble = context, context.server, context.ensemble
        self.policy, self.say = policy, say
        #: The request guard clients reach instead of tritonserver's own ports (None: they reach those).
        self.public = public
        self.stop_event = threading.Event()
        self.restarts: list[float] = []  # monotonic times of the restarts within the window
        self._starting = False
        self._started_at = 0.0

    @property
    def watchdog(self) -> Watchdog | None:
        return self.context.watchdog

    @property
    def cleanups(self) -> list[Cleanup]:
        return self.context.cleanups

    def request_stop(self, *_: object) -> None:
        """Stop serving (a signal handler); interrupts a start in progress."""
        self.stop_event.set()
        if self._starting:
            self._starting = False
            raise StopRequested

    def run(self) -> int:
        """Serve until stopped (0) or until tritonserver died too often (`GAVE_UP`); a failed first start raises."""
        try:
            self._start()
            while (trouble := self._wait_for_trouble()) is not None:
                code = self._recover(trouble)
                if code is not None:
                    return code
            return 0
        except StopRequested:
            return 0
        finally:
            code = self._retire()
            if self.server.process is not None:
                self.say(f"tritonserver stopped (exit code {code}).")

    def _start(self) -> None:
        self._starting = True
        try:
            self.context.start()
        finally:
            self._starting = False
        self._started_at = time.monotonic()
        pid = self.server.process.pid  # type: ignore[union-attr]
        if self.restarts:
            restart = len(self.restarts)
            self.say(f"Serving {self.ensemble!r} again (pid {pid}, restart {restart}) at {self.server.grpc_url}")
            return
        if self.watchdog is not None:
            self.say(
                f"Watchdog: probing {self.ensemble!r}, checking its stubs and that its models are loaded "
                f"every {self.context.watch_interval_s:g} s"
            )
        self.say(
            f"Serving {self.ensemble!r} (pid {pid}): {self._urls()}\nLog: {self.server.log_path}. Press Ctrl-C to stop."
        )

    def _urls(self) -> str:
        server = self.server
        own = f"gRPC {server.grpc_url}, HTTP {server.http_url}, metrics {server.metrics_url}"
        if self.public is None:
            return own
        plan = self.public.plan
        host = "127.0.0.1" if plan.host in ("0.0.0.0", "") else plan.host
        return (
            f"gRPC {host}:{plan.grpc_port}, HTTP http://{host}:{plan.http_port}, metrics "
            f"http://{host}:{plan.metrics_port}/metrics through the request guard (bodies up to "
            f"{plan.max_request_bytes} bytes, none compressed; tritonserver itself on {own})"
        )

    def _wait_for_trouble(self) -> str | None:
        """Why the server must be restarted, or None once a stop was requested."""
        while not self.stop_event.wait(0.2):
            process = self.server.process
            if process is None or process.poll() is not None:
                code = None if process is None else process.returncode
                return f"tritonserver (pid {getattr(process, 'pid', '?')}) {describe_exit(code)}"
            if self.watchdog is not None and self.watchdog.fatal:
                return f"the watchdog gave up: {self.watchdog.fatal}"
        return None

    def _recover(self, trouble: str) -> int | None:
        """Clean up and restart; None once serving again, 0 on a stop request, `GAVE_UP` past the limit."""
        uptime = time.monotonic() - self._started_at
        self.say(f"{trouble} after {uptime:.0f} s; last lines of {self.server.log_path}:\n{self.server.log_tail(20)}")
        while True:
            self._retire()
            now = time.monotonic()
            self.restarts = [t for t in self.restarts if now - t < self.policy.window_s]
            if len(self.restarts) >= self.policy.max_restarts:
                self.say(
                    f"error: tritonserver needed {len(self.restarts)} restarts within {self.policy.window_s:g} s "
                    f"and failed again ({trouble}); giving up. Its log: {self.server.log_path}"
                )
                return GAVE_UP
            self.restarts.append(now)
            delay = self.policy.backoff_s(len(self.restarts))
            self.say(
                f"Restarting tritonserver in {delay:g} s (restart {len(self.restarts)} of at most "
                f"{self.policy.max_restarts} within {self.policy.window_s:g} s)"
            )
            if self.stop_event.wait(delay):
                return 0
            try:
                self._start()
            except (ServerError, OSError) as exc:
                trouble = f"the restart failed: {exc}"
                self.say(trouble)
                continue
            return None

    def _retire(self) -> int | None:
        """Stop the watchdog and the server, then remove what the server left; its exit code."""
        if self.server.process is None:
            self.context.stop_watchdog()
            return None
        code = self.context.stop()
        cleanup = self.context.cleanups[-1]
        if cleanup.stubs or cleanup.regions:
            self.say(f"Cleaned up after tritonserver (pid {self.server.process.pid}): {cleanup.describe()}")
        return code
