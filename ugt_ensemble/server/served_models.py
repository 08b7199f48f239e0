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
    index = client.get_model_repository_index(as_json=True, headers=headers).get("models", [])
    return sorted({m["name"] for m in index if m.get("state") in states})


def python_models(client: Any, headers: dict[str, str]) -> list[str]:
    """The READY models served by the Python backend."""
    return [
        name
        for name in index_names(client, headers, ("READY",))
        if client.get_model_config(name, as_json=True, headers=headers)["config"].get("backend") == "python"
    ]


def python_instances(client: Any, headers: dict[str, str]) -> dict[str, int]:
    """Python-backend model -> stub processes per loaded version (its instance count)."""
    counts = {}
    for model in python_models(client, headers):
        config = client.get_model_config(model, as_json=True, headers=headers)["config"]
        counts[model] = sum(int(g.get("count", 1)) for g in config.get("instance_group", [])) or 1
    return counts


def loaded_versions(client: Any, headers: dict[str, str], model: str) -> list[str]:
    """The READY versions of `model`."""
    index = client.get_model_repository_index(as_json=True, headers=headers).get("models", [])
    return sorted({m.get("version", "") for m in index if m["name"] == model and m.get("state") == "READY"} - {""})


def missing_stubs(client: Any, headers: dict[str, str], server_pid: int) -> dict[str, int]:
    """Python-backend model -> how many stub processes its loaded versions lack (tritonserver `server_pid`)."""
    running: dict[tuple[str, str], int] = {}
    for stub in stubs_of(server_pid):
        running[(stub.model, stub.version)] = running.get((stub.model, stub.version), 0) + 1
    missing: dict[str, int] = {}
    for model, count in python_instances(client, headers).items():
        for version in loaded_versions(client, headers, model):
            short = count - running.get((model, version), 0)
            if short > 0:
                missing[model] = missing.get(model, 0) + short
    return missing
