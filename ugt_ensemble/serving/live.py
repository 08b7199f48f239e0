"""The running server that version operations drive: its operator key, loads through the repository API,
and which step versions its loaded ensembles serve.

Loading and the repository index are keyed APIs (`ugt_ensemble.server.operator_key`): every call here
sends the key as gRPC metadata. Model configs are open.

Every call has a deadline: a load `load_timeout_s` (a stub killed while Triton starts it leaves the load
pending for good, and a deploy waiting on it would hold the repository lock for as long), the others
`CALL_TIMEOUT_S`. A missed one is a ServerError, so the version operation ends and releases its lock.
"""

from __future__ import annotations

from pathlib import Path

from ugt_ensemble.errors import ConfigError, ServerError
from ugt_ensemble.server.operator_key import OperatorKey, load_operator_key
from ugt_ensemble.server.served_loads import load_steps
from ugt_ensemble.serving.versions import VersionedRepository

#: Seconds a version operation waits for one model to load (build-time warm-up included).
LOAD_TIMEOUT_S = 300.0
#: Seconds for the repository index and model configurations.
CALL_TIMEOUT_S = 30.0


def resolve_operator_key(url: str | None, key_file: Path | None = None) -> OperatorKey | None:
    """The operator key for the server at `url` (None without a URL), as `load_operator_key` finds it
    ($UGT_OPERATOR_KEY, `key_file`, $UGT_OPERATOR_KEY_FILE or the file `serve` writes); none is a one-line
    ConfigError naming the URL."""
    if url is None:
        return None
    try:
        return load_operator_key(key_file)
    except ConfigError as exc:
        raise ConfigError(f"{url} demands the operator key to load models: {exc}") from None


class LiveServer:
    """tritonserver at `url` (gRPC), driven with the operator `key`'s metadata."""

    def __init__(self, url: str, key: OperatorKey | None, load_timeout_s: float = LOAD_TIMEOUT_S) -> None:
        self.url, self.load_timeout_s = url, load_timeout_s
        self.headers = key.grpc_headers() if key is not None else None

    def load(self, *models: str) -> None:
        """Load (or reload) `models` through the repository API and check that each is ready."""
        import tritonclient.grpc as grpcclient
        from tritonclient.utils import InferenceServerException

        from ugt_ensemble.server.deadlines import is_deadline

        with grpcclient.InferenceServerClient(self.url) as client:
            for model in models:
                try:
                    client.load_model(model, headers=self.headers, client_timeout=self.load_timeout_s)
                except InferenceServerException as exc:
                    if is_deadline(exc):
                        raise ServerError(
                            f"{self.url}: loading {model} did not finish within {self.load_timeout_s:g} s; the "
                            "server may be stuck on it (serve's watchdog restarts a server whose reload hangs)"
                        ) from None
                    raise ServerError(f"{self.url}: loading {model} failed: {_explain(exc)}") from None
                if not client.is_model_ready(model, client_timeout=CALL_TIMEOUT_S):
                    raise ServerError(f"{self.url}: {model} is not ready after loading it")

    def load_steps(self, repo: VersionedRepository, versions: list[int] | None) -> None:
        """Load `repo`'s steps with `versions` loaded (None: as their files say; `served_loads.load_steps`)."""
        load_steps(self.url, repo.path, repo.steps, versions, self.headers, self.load_timeout_s)

    def ready_versions(self, steps: tuple[str, ...]) -> set[int]:
        """The versions every one of `steps` has READY on the server now."""
        import tritonclient.grpc as grpcclient
        from tritonclient.utils import InferenceServerException

        try:
            with grpcclient.InferenceServerClient(self.url) as client:
                index = client.get_model_repository_index(headers=self.headers, client_timeout=CALL_TIMEOUT_S).models
        except InferenceServerException as exc:
            raise ServerError(f"{self.url}: cannot read its repository index: {_explain(exc)}") from None
        ready = [{int(m.version) for m in index if m.name == s and m.state == "READY" and m.version.isdigit()}
                 for s in steps]  # fmt: skip
        return set.intersection(*ready) if ready else set()

    def served_versions(self, steps: tuple[str, ...]) -> dict[int, list[str]]:
        """{version of `steps`: [ready ensembles that serve it]}, as the server reports it now."""
        import tritonclient.grpc as grpcclient
        from tritonclient.utils import InferenceServerException

        try:
            with grpcclient.InferenceServerClient(self.url) as client:
                index = client.get_model_repository_index(headers=self.headers, client_timeout=CALL_TIMEOUT_S).models
                latest = _latest_ready(index, steps)
                served: dict[int, list[str]] = {}
                for name in sorted({m.name for m in index if m.state == "READY" and m.name not in steps}):
                    config = client.get_model_config(name, client_timeout=CALL_TIMEOUT_S).config
                    if config.platform != "ensemble":
                        continue
                    for step in config.ensemble_scheduling.step:
                        if step.model_name in steps:
                            version = step.model_version if step.model_version != -1 else latest.get(step.model_name)
                            if version is not None and name not in served.setdefault(version, []):
                                served[version].append(name)
                return served
        except InferenceServerException as exc:
            raise ServerError(f"{self.url}: cannot ask which versions it serves: {_explain(exc)}") from None


def _latest_ready(index, steps: tuple[str, ...]) -> dict[str, int]:  # noqa: ANN001 - the index's models
    """The newest ready version of each step (what a `model_version: -1` pin serves)."""
    latest: dict[str, int] = {}
    for model in index:
        if model.name in steps and model.state == "READY" and model.version.isdigit():
            latest[model.name] = max(latest.get(model.name, 0), int(model.version))
    return latest


def _explain(exc: Exception) -> str:
    message = exc.message() if callable(getattr(exc, "message", None)) else str(exc)
    if "polling is enabled" in message:
        message += " (run the server in explicit model-control mode: serve --model-control explicit)"
    elif "restricted" in message.lower():
        message += " (the operator key is missing or wrong: $UGT_OPERATOR_KEY or --operator-key-file)"
    return message
