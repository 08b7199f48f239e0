"""A watchdog for a running tritonserver: it heals a Python-backend step whose stub died and loads again a
model that was unloaded.

Since Triton 24.06 a dead stub is not restarted, and the health endpoints keep answering 200, so the
watchdog checks, every `interval_s`: that every model the build manifest names (the ensemble, its steps,
the naive peer, the A/B variants) is loaded, that each loaded Python-backend model version has its stub
processes, and that a real inference through the ensemble answers. An unloaded model is loaded again from
the repository. A broken step is reloaded with the configuration it was serving plus a changed `ugt_heal`
counter (`server.restore`): Triton then starts new stubs (measured: about 1.5 s) without a write to the
repository, which may be read-only; a live override (e.g. from `bench --tune`) survives. Every repository
call carries the operator key's `headers` (the repository API is restricted). If healing fails
`max_failed_heals` times in a row, `fatal` is set and `on_fatal` is called, so that `serve` restarts the
server.

Data files that differ from the sizes and hashes recorded when they were written (`server.data_watch`,
checked every round) are logged as errors and counted (`data.failed_checks`); the steps they belong to are
not reloaded, and damage never makes the watchdog give up (a restart cannot repair a file). A probe answered
with no item where it had items (`probe.ProbeContent`) is a failed probe, never mistaken for overload.

Every call to tritonserver carries a deadline (`server.deadlines`): `call_timeout_s` for the index,
configurations and statistics, `load_timeout_s` for a load or reload. A reload that misses it is a failed
heal, and the model is not sent another (Triton's load of it is stuck: a second one waits behind the first);
each later round that finds it still broken fails at once, so the supervisor restarts the server after
`max_failed_heals` rounds. A model of the manifest LOADING with no version READY for longer than
`load_timeout_s`, and a round whose call to the server misses its deadline, are failed heals too. `stop`
waits at most `STOP_JOIN_S` for the thread (a call in flight ends when the server is stopped).

A probe that fails without naming a stub (a deadline, a full queue) while the ensemble's success count
still grows means the server is overloaded, not broken: nothing is reloaded (reloading healthy steps under
peak load, or restarting the server, would turn overload into an outage). Only a failing probe with no
progress since the last round counts as a hung step.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ugt_ensemble.errors import ServerError
from ugt_ensemble.server.data_watch import DataWatch
from ugt_ensemble.server.deadlines import DeadlineClient, LoadDeadlines, is_deadline
from ugt_ensemble.server.probe import EmptyAnswerError, ProbeContent, served_counts
from ugt_ensemble.server.restore import ACTIVE_STATES, expected_models, reload_with_new_stub, unloaded
from ugt_ensemble.server.served_models import index_names, missing_stubs, python_models

LOGGER = logging.getLogger(__name__)
_UNHEALTHY = re.compile(r"Stub process '(.+?)_\d+_\d+' is not healthy")
#: Seconds `Watchdog.stop` waits for the thread: `serve` must stop within 10 s in every state.
STOP_JOIN_S = 1.0


class _Stopped(Exception):
    """Raised in the watchdog's thread when it was stopped in the middle of a round."""


@dataclass
class Heal:
    """One healing: which model, why, how long it took, whether it worked, and what was done
    ("reload": new stubs for a loaded model; "load": a model that was unloaded loaded again)."""

    model: str
    reason: str
    seconds: float
    ok: bool
    action: str = "reload"
    #: A call of it missed its deadline (the server's load is stuck, or the server does not answer).
    hung: bool = False

    @property
    def failed(self) -> bool:
        """Whether it counts towards `max_failed_heals`: a failed reload, or any heal that missed a deadline."""
        return (self.action == "reload" and not self.ok) or self.hung


@dataclass
class Watchdog:
    """Watches the server at `grpc_url` (process `server_pid`) serving `ensemble` from `repository`."""

    grpc_url: str
    server_pid: int
    repository: Path
    ensemble: str
    interval_s: float = 2.0
    probe_timeout_s: float | None = None  # default: max(5 s, interval_s)
    max_failed_heals: int = 3
    on_fatal: Callable[[str], None] | None = None
    #: gRPC metadata with the operator key (`OperatorKey.grpc_headers()`); {} for an unrestricted server.
    headers: dict[str, str] = field(default_factory=dict)
    #: Seconds before a model whose load failed is tried again.
    retry_load_s: float = 30.0
    #: Deadline of a repository-index, configuration or statistics call.
    call_timeout_s: float = 10.0
    #: Deadline of a load or reload (measured: 1.5 s for a step's reload).
    load_timeout_s: float = 60.0
    heals: list[Heal] = field(default_factory=list)
    fatal: str | None = None
    overloaded_rounds: int = 0
    #: Models that should be serving and were not loaded after the last round.
    not_loaded: list[str] = field(default_factory=list)
    _answered: int | None = field(default=None, repr=False)
    _serving: tuple[str, ...] = field(default=(), repr=False)
    _retry_at: dict[str, float] = field(default_factory=dict, repr=False)
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)
    _loads: LoadDeadlines = field(default_factory=LoadDeadlines, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)
    #: The repository's sealed data files, checked every round; the probe's content check.
    data: DataWatch | None = None
    _content: ProbeContent = field(default_factory=ProbeContent, repr=False)

    def __post_init__(self) -> None:
        self.data = self.data or DataWatch(Path(self.repository))

    def start(self) -> Watchdog:
        self._progressed()  # the baseline of the success count
        try:
            self._serving = tuple(self._index_names(ACTIVE_STATES))  # loaded now: restored if unloaded later
        except Exception as exc:  # noqa: BLE001 - the manifest still says what should be serving
            LOGGER.warning("watchdog: cannot read the repository index (%s); restoring the manifest's models only", exc)
        self._thread = threading.Thread(target=self._run, name="ugt-watchdog", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=STOP_JOIN_S)  # a call in flight ends when the server stops

    def check_once(self) -> list[Heal]:
        """One round: load unloaded models, check the data files, heal broken steps whose data is intact; returns
        what it did."""
        made = self.restore_unloaded()
        damaged = self.data.damaged_models() if self.data is not None else set()  # logged; a reload cannot help
        if self.ensemble not in self.not_loaded:  # else the probe cannot tell a broken step
            made += [self._heal(model, why) for model, why in self.broken_steps().items() if model not in damaged]
        self._loads.settle(h.model for h in made if h.action == "reload" and not h.ok)
        self.heals += made
        return made

    def restore_unloaded(self) -> list[Heal]:
        """Load again each model that should be serving and is not (see `server.restore`)."""
        expected = expected_models(self.repository, also=self._serving)
        with self._client() as client:
            index = client.get_model_repository_index(as_json=True, headers=self.headers).get("models", [])
            missing = unloaded(index, expected)
            made = [self._load(client, m) for m in missing if self._retry_at.get(m, 0.0) <= time.monotonic()]
        self.not_loaded = sorted(set(missing) - {h.model for h in made if h.ok})
        return made + self._stuck_loads(index, expected)

    def _stuck_loads(self, index: list[dict], expected: list[str]) -> list[Heal]:
        """A failed heal for each model of `expected` LOADING, with no version READY, for over `load_timeout_s`."""
        stuck = self._loads.stuck(index, expected, self.load_timeout_s)
        for model, seconds in stuck.items():
            LOGGER.error("watchdog: %s has been LOADING for %.0f s with no version READY: stuck", model, seconds)
        return [Heal(m, f"LOADING for {s:.0f} s", s, False, "load", hung=True) for m, s in stuck.items()]

    def _client(self) -> DeadlineClient:
        """A gRPC client of the server whose every call carries a deadline."""
        return DeadlineClient(self.grpc_url, self.call_timeout_s, self.load_timeout_s)

    def _check_stop(self) -> None:
        if self._stop.is_set():
            raise _Stopped

    def _load(self, client, model: str) -> Heal:  # noqa: ANN001 - tritonclient's client
        self._check_stop()
        LOGGER.warning("watchdog: %s should be serving but is not loaded; loading it", model)
        start = time.perf_counter()
        try:
            client.load_model(model, headers=self.headers)
        except Exception as exc:  # noqa: BLE001 - recorded; tried again after retry_load_s
            self._retry_at[model] = time.monotonic() + self.retry_load_s
            LOGGER.error("watchdog: loading %s failed (next try in %.0f s): %s", model, self.retry_load_s, exc)
            return Heal(model, "unloaded", time.perf_counter() - start, False, "load", hung=is_deadline(exc))
        self._retry_at.pop(model, None)
        heal = Heal(model, "unloaded", time.perf_counter() - start, True, "load")
        LOGGER.warning("watchdog: %s loaded again after %.1f s", model, heal.seconds)
        return heal

    def broken_steps(self) -> dict[str, str]:
        """model -> why it needs healing (a stub missing, or the probe failing because of it)."""
        if self._answered is None:
            self._progressed()  # the baseline: progress is then counted from here
        broken = {model: f"{missing} stub(s) missing" for model, missing in self._missing_stubs().items()}
        if broken:
            return broken
        timeout_s = self.probe_timeout_s if self.probe_timeout_s is not None else max(5.0, self.interval_s)
        try:
            self._content.probe(self.grpc_url, self.ensemble, timeout_s=timeout_s)
        except ServerError as exc:
            named = _UNHEALTHY.findall(str(exc))
            if named:
                return {model: f"probe failed: {exc}" for model in named}
            if isinstance(exc, EmptyAnswerError):  # answered, but empty: not overload
                return {model: f"probe failed: {exc}" for model in self._python_models()}
            if self._progressed():
                self._note_overload(exc)
                return {}
            return {
                model: f"probe failed with no request answered since the last round: {exc}"
                for model in self._python_models()
            }
        self._progressed()
        if self.overloaded_rounds:
            LOGGER.warning("watchdog: the probe answers again after %d overloaded round(s)", self.overloaded_rounds)
            self.overloaded_rounds = 0
        return {}

    def _progressed(self) -> bool:
        """Whether the ensemble answered a request since the previous call (Triton's success count grew)."""
        try:
            answered = served_counts(self.grpc_url, self.ensemble, self.call_timeout_s)[0]
        except Exception:  # noqa: BLE001 - no statistics: no evidence of progress
            return False
        previous, self._answered = self._answered, answered
        return previous is not None and answered > previous

    def _note_overload(self, exc: ServerError) -> None:
        if not self.overloaded_rounds:
            LOGGER.warning(
                "watchdog: probe failed (%s) but requests are being answered: overloaded, not reloading", exc
            )
        self.overloaded_rounds += 1

    def _run(self) -> None:
        failed = 0
        while not self._stop.wait(self.interval_s):
            try:
                made = self.check_once()
            except _Stopped:
                return
            except Exception as exc:  # noqa: BLE001 - the watchdog must outlive a bad round
                if not is_deadline(exc):
                    LOGGER.warning("watchdog round failed: %s", exc)
                    continue
                made = [self._missed_call(exc)]
            if self._stop.is_set():
                return
            failures = [h for h in made if h.failed]
            failed = failed + 1 if failures else 0
            if failed >= self.max_failed_heals:
                self.fatal = f"healing failed {failed} times in a row; last: {failures[-1]}"
                LOGGER.error("watchdog: %s", self.fatal)
                if self.on_fatal is not None:
                    self.on_fatal(self.fatal)
                return

    def _missed_call(self, exc: Exception) -> Heal:
        """A round whose call to the server missed its deadline: a failed heal of the server."""
        LOGGER.error("watchdog: tritonserver did not answer within %g s: %s", self.call_timeout_s, exc)
        heal = Heal("tritonserver", f"a call missed its deadline: {exc}", self.call_timeout_s, False, "call", True)
        self.heals.append(heal)
        return heal

    def _heal(self, model: str, reason: str) -> Heal:
        pending = self._loads.pending_s(model)
        if pending is not None:  # another load would wait behind the stuck one (measured): none is sent
            LOGGER.error("watchdog: %s is still broken; its reload sent %.0f s ago has not finished", model, pending)
            return Heal(model, f"{reason}; reload pending for {pending:.0f} s", 0.0, False, hung=True)
        self._check_stop()
        LOGGER.warning("watchdog: %s is broken (%s); reloading it", model, reason)
        start = time.perf_counter()
        ok = False
        try:
            with self._client() as client:
                self._reload(client, model)  # writes nothing to the repository
            self._content.probe(self.grpc_url, self.ensemble)
            ok = True
        except Exception as exc:  # noqa: BLE001 - recorded; the next round tries again
            LOGGER.error("watchdog: reloading %s failed: %s", model, exc)
        heal = Heal(model, reason, time.perf_counter() - start, ok, hung=model in self._loads.missed)
        LOGGER.warning("watchdog: %s %s after %.1f s", model, "answers again" if ok else "still broken", heal.seconds)
        return heal

    def _reload(self, client: DeadlineClient, model: str) -> None:
        """`reload_with_new_stub`; a reload that misses its deadline is noted as stuck."""
        sent = time.monotonic()
        try:
            reload_with_new_stub(client, model, self.headers)
        except Exception as exc:
            if is_deadline(exc):
                self._loads.miss(model, sent)
                raise ServerError(f"its reload did not finish within {self.load_timeout_s:g} s ({exc})") from exc
            raise

    def _missing_stubs(self) -> dict[str, int]:
        with self._client() as client:
            return missing_stubs(client, self.headers, self.server_pid)

    def _python_models(self) -> list[str]:
        with self._client() as client:
            return python_models(client, self.headers)

    def _index_names(self, states: tuple[str, ...]) -> list[str]:
        with self._client() as client:
            return index_names(client, self.headers, states)
