"""Which models a served repository should have loaded, and a reload that writes nothing to the repository.

`expected_models` reads the build manifest (`ugt_build.json`): the ensemble, its steps, the naive peer and
the A/B variants it lists. A model of that list which the repository index shows with no version READY,
LOADING or UNLOADING was unloaded (or failed to load) and should be loaded again.

`reload_with_new_stub` makes Triton start a fresh Python-backend stub for a model without touching its
files: Triton skips the load of a model whose files and configuration are unchanged (measured on
tritonserver 2.51: a load with the same configuration returns in 0.01 s and the dead stub stays dead),
so the configuration it serves is sent back with one parameter changed, `ugt_heal` (a counter the model
code ignores). That counts as a new configuration: Triton loads the model again with new stubs (measured:
1.4-1.5 s) and swaps it in. A live override, e.g. from `bench --tune`, survives, and a read-only
repository (Kubernetes mounts it so) is no obstacle.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable

from ugt_ensemble.repository.manifest import read_manifest_or_empty

#: The model-config parameter whose change makes Triton reload a model with new stubs.
HEAL_PARAMETER = "ugt_heal"
#: Repository-index states of a version that is serving or about to change on the operator's request.
ACTIVE_STATES = ("READY", "LOADING", "UNLOADING")


def expected_models(repository: Path, also: Iterable[str] = ()) -> list[str]:
    """The models the manifest of `repository` names, plus `also`; ensembles (and variants) last.

    Steps come first so that an ensemble is loaded after the models it calls. An unreadable manifest
    leaves only `also`.
    """
    manifest = read_manifest_or_empty(repository)
    names = {m for m in [*manifest.get("models", []), *also] if isinstance(m, str)}
    variants = manifest.get("variants", {})
    ensembles = {manifest.get("ensemble"), *(variants if isinstance(variants, dict) else ())}
    return sorted(names, key=lambda name: (name in ensembles, name))


def unloaded(index: list[dict[str, Any]], expected: list[str]) -> list[str]:
    """Of `expected` (in its order), those the repository index lists with no version serving.

    A model that is not in the index at all (its folder is gone) is left alone.
    """
    listed = {entry.get("name") for entry in index}
    active = {entry.get("name") for entry in index if entry.get("state") in ACTIVE_STATES}
    return [name for name in expected if name in listed and name not in active]


def bumped_config(config: dict[str, Any]) -> dict[str, Any]:
    """A copy of the model configuration `config` with its `ugt_heal` parameter one higher."""
    parameters = dict(config.get("parameters") or {})
    try:
        count = int(parameters.get(HEAL_PARAMETER, {}).get("string_value", "0"))
    except (AttributeError, ValueError):
        count = 0
    parameters[HEAL_PARAMETER] = {"string_value": str(count + 1)}
    return {**config, "parameters": parameters}


def reload_with_new_stub(client: Any, model: str, headers: dict[str, str]) -> None:
    """Load `model` again, with new stubs, through `client` (tritonclient.grpc) and the operator `headers`."""
    config = client.get_model_config(model, as_json=True, headers=headers)["config"]
    client.load_model(model, config=json.dumps(bumped_config(config)), headers=headers)
