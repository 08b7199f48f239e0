"""What a running tritonserver serves, as the watchdog asks it: models by state, Python-backend models, their
instance counts, and the stub processes each loaded version is short of.

Every function takes a tritonclient gRPC client (the watchdog's `DeadlineClient`, whose calls carry deadlines) and
the operator key's `headers` (the repository index is a keyed API).
"""

from __future__ import annotations

from typing import Any

from ugt_ensemble.server.stubs import stubs_of


def index_names(client: Any, headers: dict[str, str], states: tuple[str, ...]) -> list[str]:
    """Names of the models that the repository index lists with a version in one of `states`."""
    return sorted({m["name"] for m in _index(client, headers) if m.get("state") in states})


def python_models(client: Any, headers: dict[str, str]) -> list[str]:
    """The READY models served by the Python backend."""
    return list(_python_configs(client, headers, _index(client, headers)))


def missing_stubs(client: Any, headers: dict[str, str], server_pid: int) -> dict[str, int]:
    """Python-backend model -> how many stub processes its loaded versions lack (tritonserver `server_pid`): one
    index fetch and one config fetch per Python model per call."""
    running: dict[tuple[str, str], int] = {}
    for stub in stubs_of(server_pid):
        running[(stub.model, stub.version)] = running.get((stub.model, stub.version), 0) + 1
    index = _index(client, headers)
    missing: dict[str, int] = {}
    for model, config in _python_configs(client, headers, index).items():
        count = sum(int(g.get("count", 1)) for g in config.get("instance_group", [])) or 1  # stubs per version
        versions = {m.get("version", "") for m in index if m["name"] == model and m.get("state") == "READY"} - {""}
        for version in sorted(versions):
            short = count - running.get((model, version), 0)
            if short > 0:
                missing[model] = missing.get(model, 0) + short
    return missing


def _index(client: Any, headers: dict[str, str]) -> list[dict]:
    return client.get_model_repository_index(as_json=True, headers=headers).get("models", [])


def _python_configs(client: Any, headers: dict[str, str], index: list[dict]) -> dict[str, dict]:
    """READY model -> its config, for the models the Python backend serves."""
    ready = sorted({m["name"] for m in index if m.get("state") == "READY"})
    configs = {name: client.get_model_config(name, as_json=True, headers=headers)["config"] for name in ready}
    return {name: config for name, config in configs.items() if config.get("backend") == "python"}
