"""Deadlines for the watchdog's calls to tritonserver, and what a missed one means.

Measured on tritonserver 2.51: a Python-backend stub killed while Triton starts it for a (re)load (e.g. an
OOM kill during its initialisation, or `kill -9` of a step's stubs twice 0.6 s apart while the watchdog heals
it) leaves that load pending for good: Triton logs `loading: <model>` and never finishes, the `load_model`
call never returns, a second load of the same model waits behind the first (it missed a 5 s deadline), the
repository index keeps showing the old version READY, and tritonserver ignores SIGINT (still running 30 s
later). Without deadlines the watchdog thread waited on that call forever and never counted a failure.

So every call the watchdog makes goes through `DeadlineClient`, whose calls carry a deadline (`call_s` for
the index, configurations and statistics, `load_s` for loads), and `LoadDeadlines` remembers what missed
one: a model whose reload missed its deadline is not sent another (it would queue behind the stuck one);
each later round that still finds it broken is a failed heal at once, so `max_failed_heals` rounds end in
a restart of the server. A model of the manifest with no version READY and one LOADING for longer than
`load_s` is stuck too.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Iterable

import tritonclient.grpc as grpcclient


def is_deadline(exc: BaseException) -> bool:
    """Whether `exc` is a gRPC call that missed its deadline (tritonclient's DEADLINE_EXCEEDED)."""
    status = getattr(exc, "status", None)
    code = status() if callable(status) else None
    return "DEADLINE_EXCEEDED" in str(code) or "Deadline Exceeded" in str(exc)


class DeadlineClient(grpcclient.InferenceServerClient):
    """tritonclient's gRPC client whose repository, configuration and statistics calls all carry a deadline:
    `load_s` seconds for `load_model`, `call_s` for the others (an explicit `client_timeout` wins)."""

    def __init__(self, url: str, call_s: float, load_s: float) -> None:
        super().__init__(url)
        self.call_s, self.load_s = call_s, load_s

    def get_model_repository_index(self, *args: Any, client_timeout: float | None = None, **kwargs: Any) -> Any:
        return super().get_model_repository_index(*args, client_timeout=client_timeout or self.call_s, **kwargs)

    def get_model_config(self, *args: Any, client_timeout: float | None = None, **kwargs: Any) -> Any:
        return super().get_model_config(*args, client_timeout=client_timeout or self.call_s, **kwargs)

    def get_inference_statistics(self, *args: Any, client_timeout: float | None = None, **kwargs: Any) -> Any:
        return super().get_inference_statistics(*args, client_timeout=client_timeout or self.call_s, **kwargs)

    def unload_model(self, *args: Any, client_timeout: float | None = None, **kwargs: Any) -> Any:
        return super().unload_model(*args, client_timeout=client_timeout or self.call_s, **kwargs)

    def load_model(self, *args: Any, client_timeout: float | None = None, **kwargs: Any) -> Any:
        return super().load_model(*args, client_timeout=client_timeout or self.load_s, **kwargs)


@dataclass
class LoadDeadlines:
    """Loads that took too long: reloads that missed their deadline, and versions stuck LOADING."""

    #: model -> monotonic time its reload was sent, for reloads that missed their deadline.
    missed: dict[str, float] = field(default_factory=dict)
    #: (model, version) -> monotonic time it was first seen LOADING.
    loading: dict[tuple[str, str], float] = field(default_factory=dict)

    def miss(self, model: str, sent_at: float) -> None:
        """The reload of `model` sent at `sent_at` missed its deadline: Triton's load of it is stuck."""
        self.missed.setdefault(model, sent_at)

    def pending_s(self, model: str) -> float | None:
        """Seconds since the stuck reload of `model` was sent (None: none is stuck)."""
        sent = self.missed.get(model)
        return None if sent is None else time.monotonic() - sent

    def settle(self, still_broken: Iterable[str]) -> None:
        """Forget the stuck reloads of the models that are no longer broken (the load finished after all)."""
        broken = set(still_broken)
        self.missed = {model: sent for model, sent in self.missed.items() if model in broken}

    def stuck(self, index: list[dict[str, Any]], expected: Iterable[str], load_s: float) -> dict[str, float]:
        """Of `expected`, models with no version READY and one LOADING for longer than `load_s` -> seconds."""
        now = time.monotonic()
        loading = {(m.get("name"), m.get("version", "")) for m in index if m.get("state") == "LOADING"}
        self.loading = {key: self.loading.get(key, now) for key in loading}
        watched = set(expected) - {m.get("name") for m in index if m.get("state") == "READY"}
        found: dict[str, float] = {}
        for (model, _), since in self.loading.items():
            if model in watched and now - since > load_s:
                found[model] = max(found.get(model, 0.0), now - since)
        return found
