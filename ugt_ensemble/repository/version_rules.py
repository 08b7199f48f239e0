"""Check a repository's versions offline: what its ensembles pin, what its steps' policies load, and what
its manifest says exists, so that `validate` fails on a repository that tritonserver cannot load.

Triton loads an ensemble only when every step version it pins is loaded, and loads a step version only
when its folder exists and the step's version policy selects it. A deleted version folder (say, by a
cleanup) therefore takes every ensemble or variant that pins it down, at the next load or restart.
"""

from __future__ import annotations

from pathlib import Path

from tritonclient.grpc import model_config_pb2 as mc

from ugt_ensemble.repository.manifest import read_manifest_or_empty


def check_versions(root: Path, configs: dict[str, mc.ModelConfig]) -> list[str]:
    """One line per ensemble pin, manifest version or variant the repository cannot serve."""
    folders = {name: version_folders(root / name) for name in configs}
    errors = []
    for name, config in sorted(configs.items()):
        if config.platform == "ensemble":
            errors += _check_pins(name, config, configs, folders)
    return errors + _check_manifest(root, configs, folders)


def version_folders(model_dir: Path) -> set[int]:
    """The numbered version folders of a model."""
    if not model_dir.is_dir():
        return set()
    return {int(p.name) for p in model_dir.iterdir() if p.is_dir() and p.name.isdigit()}


def loaded_versions(config: mc.ModelConfig, folders: set[int]) -> set[int]:
    """The versions Triton loads for `config` (its version policy applied to the existing folders)."""
    policy = config.version_policy
    if policy.HasField("specific"):
        return set(policy.specific.versions) & folders
    if policy.HasField("all"):
        return set(folders)
    count = policy.latest.num_versions if policy.HasField("latest") else 1
    return set(sorted(folders)[-max(count, 1) :])


def _check_pins(name: str, ensemble: mc.ModelConfig, configs: dict, folders: dict[str, set[int]]) -> list[str]:
    errors = []
    for step in ensemble.ensemble_scheduling.step:
        model = configs.get(step.model_name)
        if model is None or step.model_version == -1:
            continue  # a missing step is a repository rule; -1 serves the latest loaded version
        version, existing = step.model_version, folders.get(step.model_name, set())
        if version not in existing:
            errors.append(
                f"{name}: pins version {version} of {step.model_name}, which has no folder "
                f"{step.model_name}/{version}/ (versions there: {sorted(existing)}); pin an existing version"
            )
        elif version not in loaded_versions(model, existing):
            errors.append(
                f"{name}: pins version {version} of {step.model_name}, which its version_policy does not load "
                f"(it loads {sorted(loaded_versions(model, existing))}); add {version} to the policy"
            )
    return errors


def _check_manifest(root: Path, configs: dict, folders: dict[str, set[int]]) -> list[str]:
    manifest = read_manifest_or_empty(root)
    triton = manifest.get("triton") if isinstance(manifest.get("triton"), dict) else {}
    steps = [triton.get(k) for k in ("preprocess_name", "step_name", "postprocess_name") if triton.get(k) in configs]
    errors = []
    versions = manifest.get("versions") if isinstance(manifest.get("versions"), dict) else {}
    for number in sorted(versions, key=str):
        missing = [s for s in steps if not str(number).isdigit() or int(number) not in folders[s]]
        if missing:
            errors.append(
                f"{root}/ugt_build.json: names version {number}, but {', '.join(f'{s}/{number}/' for s in missing)} "
                "is missing; restore the folders or deploy again"
            )
    variants = manifest.get("variants") if isinstance(manifest.get("variants"), dict) else {}
    for name, version in sorted(variants.items()):
        if name not in configs:
            errors.append(f"{root}/ugt_build.json: names variant {name!r}, which has no {name}/config.pbtxt")
            continue
        pins = {s.model_version for s in configs[name].ensemble_scheduling.step if s.model_name in steps}
        if pins != {version}:
            errors.append(
                f"{root}/ugt_build.json: says variant {name!r} serves version {version}, but its config pins "
                f"{sorted(pins)}"
            )
    return errors


