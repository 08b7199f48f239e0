"""Build version N+1 of a repository beside the versions it serves (`serving.versions`): the same checked
pipeline as `build` (contract, export, parity, validity probe), written into new version folders only.

A new version brings a model (a .pt2, an ONNX file, or reference-UGT weights) and/or a catalog; what is
not given is kept: the catalog of the served version, and its model, by the kind the manifest records
(`model.provenance.ModelSource`): the reference UGT's seed and weights are exported again (on a new
catalog, since its constraint tables come from the catalog), and an ONNX file served with no PyTorch model
is taken again from the served version's folder; a .pt2 or a Python-API module must be named again. The
item sets are the served version's, or those the deploy's set flags define (`serving.version_sets`). The
serving settings stay those of the repository: a version whose configs would differ is refused.
"""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable

from ugt_ensemble.build import BuildSteps, plan, prepare_step, with_rules
from ugt_ensemble.catalog import Catalog
from ugt_ensemble.config import BuildConfig, UGTConfig
from ugt_ensemble.errors import ConfigError, RepositoryError, UgtEnsembleError
from ugt_ensemble.export.bake import unbaked_model
from ugt_ensemble.progress import StepProgress
from ugt_ensemble.repository.inspect import RepositoryInfo
from ugt_ensemble.repository.render import render_configs
from ugt_ensemble.repository.rules import parse_config, read_config
from ugt_ensemble.repository.writer import write_version_files
from ugt_ensemble.runtime.catalog_index import CatalogIndex
from ugt_ensemble.runtime.contract import CATALOG_DIR
from ugt_ensemble.serving.data_version import data_version_titles, serves_data_only, stage_data_version
from ugt_ensemble.serving.set_changes import check_set_changes
from ugt_ensemble.serving.unchanged import refuse_unchanged
from ugt_ensemble.serving.version_sets import RECORD_KEY, ItemSetSources, split_changes
from ugt_ensemble.serving.versions import VersionedRepository
from ugt_ensemble.serving.write_failure import write_failure

MODEL_SOURCES = ("model_file", "onnx_path", "checkpoint", "model_config")


def add_version(
    repository: str | Path,
    changes: dict[str, Any],
    catalog_path: Path | None = None,
    number: int | None = None,
    progress: StepProgress | None = None,
    allow_set_changes: bool = False,
    allow_unchanged: bool = True,
) -> int:
    """Build and write version `number` (default: the next) of `repository`; returns it.

    `changes` are BuildConfig fields naming the new model (model_file, onnx_path, checkpoint, model_config)
    and ExportConfig's `set_columns` / `item_sets`, which replace the served version's item sets. A new
    catalog or new sets for a model that reads its constraint data at run time build only that data.
    The new version is written, listed in the steps' version policies and recorded in the manifest, not
    yet served: `VersionedRepository.pin` (or `serving.rollout`) switches the ensemble to it. A version that
    would drop an item set the served one serves is refused (`serving.set_changes`) unless `allow_set_changes`;
    one identical to the served version raises `serving.unchanged.UnchangedVersion` unless `allow_unchanged`
    (`Rollout.deploy`, behind `deploy`, refuses it).
    """
    repo = VersionedRepository(repository)
    number = number or max(repo.numbers()) + 1
    if number in repo.numbers() or number < 1:
        raise ConfigError(f"version {number} exists already in {repo.path} (versions {repo.numbers()})")
    catalog_path = Path(catalog_path) if catalog_path is not None else None
    changes, set_changes = split_changes(changes)
    sets = ItemSetSources.for_new_version(repo, set_changes, catalog_path)
    progress = progress or StepProgress.silent()
    try:
        if not changes and (catalog_path is not None or set_changes) and serves_data_only(repo):
            return _add_data_version(repo, catalog_path, sets, number, progress, allow_set_changes, allow_unchanged)
        return _add_full_version(
            repo, changes, catalog_path, sets, number, progress, allow_set_changes, allow_unchanged
        )
    except OSError as exc:
        if isinstance(exc, UgtEnsembleError):  # e.g. MissingFileError: worded already
            raise
        raise write_failure(repo, number, exc, progress.current) from None


def _add_full_version(
    repo: VersionedRepository, changes: dict[str, Any], catalog_path: Path | None, sets: ItemSetSources, number: int,
    progress: StepProgress, allow_set_changes: bool, allow_unchanged: bool,
) -> int:  # fmt: skip
    """A new model (or a model that holds the catalog's tables): the checked pipeline of `build`, then as
    `add_version`."""
    config = _config(repo, changes, sets)
    catalog = None if catalog_path else _served_catalog(repo)
    steps = BuildSteps(progress, plan(config))
    staging = Path(tempfile.mkdtemp(prefix=f".{repo.path.name}.version-", dir=repo.path.parent))
    try:
        prepared = prepare_step(config, steps, staging / config.triton.step_name / str(number), catalog=catalog)
        config = with_rules(config, prepared)
        new_names = prepared.data.set_names if prepared.data is not None else ()
        check_set_changes(repo, sets, new_names, number, allow_set_changes)
        with steps(detail=f"version {number}"):
            write_version_files(staging, config, prepared.data, number)
        with steps():
            _check_same_configs(repo.path, config)
            if not allow_unchanged:
                refuse_unchanged(repo, staging, number, sets)
        catalog = prepared.catalog
        record = {"source": catalog.source, "items": len(catalog), "fingerprint": catalog.fingerprint()}
        extra = {RECORD_KEY: sets.as_record(new_names)}
        _commit(repo, staging, number, lambda files: repo.record(
            number, prepared.step.source, record, files, prepared.step.origin, extra
        ))  # fmt: skip
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return number


def _add_data_version(
    repo: VersionedRepository, catalog_path: Path | None, sets: ItemSetSources, number: int, progress: StepProgress,
    allow_set_changes: bool, allow_unchanged: bool,
) -> int:  # fmt: skip
    """A new catalog and/or new item sets for the served model: data only (`serving.data_version`), then as
    `add_version`."""
    config = repo.build_config(seed=int(repo.manifest.get("seed") or 0))  # its settings; the model is the served one
    config = dataclasses.replace(config, export=sets.apply(config.export))
    progress.total = progress.total or len(data_version_titles(catalog_path)) + 1
    staging, data, catalog = stage_data_version(repo, config, catalog_path, number, progress)
    try:
        check_set_changes(repo, sets, data.set_names, number, allow_set_changes)
        served = repo.pinned()
        record = repo.manifest.get("versions", {}).get(str(served)) or repo.manifest
        source, model, extra = str(record.get("model_source", "")), repo.model_source(served), {
            RECORD_KEY: sets.as_record(data.set_names)
        }  # fmt: skip
        with progress.step("Checking the configs and moving the version in"):
            _check_same_configs(repo.path, config)
            if not allow_unchanged:
                refuse_unchanged(repo, staging, number, sets)
            _commit(repo, staging, number, lambda files: repo.record(number, source, catalog, files, model, extra))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return number


def _commit(repo: VersionedRepository, staging: Path, number: int, record: Callable[[list[str]], None]) -> None:
    """Move the staged version in, add it to the steps' version policies, then `record(files)` it in the manifest;
    an OSError on the way (a full disk) takes the version out again and restores the policies."""
    policy = repo.loaded_policy()
    try:
        files = _move_in(staging, repo.path, repo.steps, number)
        repo.keep_loaded(policy + [number])
        record(files)
    except OSError:
        for step in repo.steps:  # _move_in checked that no folder of this number was there before
            shutil.rmtree(repo.path / step / str(number), ignore_errors=True)
        try:
            repo.keep_loaded(policy)
        except OSError:
            pass  # `write_failure` names the folders still there
        raise


def _config(repo: VersionedRepository, changes: dict[str, Any], sets: ItemSetSources) -> BuildConfig:
    """The new version's BuildConfig: the repository's settings, the new (or the served) model, and `sets`
    with their catalog (the new one, else the served version's)."""
    unknown = sorted(set(changes) - set(MODEL_SOURCES))
    if unknown:
        raise ConfigError(f"a version takes a new model ({', '.join(MODEL_SOURCES)}), not {unknown}")
    manifest = repo.manifest
    config = repo.build_config(seed=int(manifest.get("seed") or 0), **(changes or _served_model(repo)))
    return dataclasses.replace(config, export=sets.apply(config.export))


def _served_model(repo: VersionedRepository) -> dict[str, Any]:
    """The BuildConfig fields that rebuild the model of the served version, by its recorded kind."""
    served = repo.pinned()
    source = repo.model_source(served)
    if source.kind == "onnx":
        return {"onnx_path": unbaked_model(repo.path / repo.steps[1] / str(served))}  # a native step's: unbaked
    if source.kind not in ("reference", "checkpoint"):
        raise ConfigError("name the new version's model: --model FILE.pt2, --onnx FILE.onnx or --checkpoint")
    changes: dict[str, Any] = {"checkpoint": Path(source.path)} if source.kind == "checkpoint" and source.path else {}
    if repo.manifest.get("model_config"):
        changes["model_config"] = UGTConfig.from_dict(repo.manifest["model_config"], source=f"{repo.path} manifest")
    return changes


def _served_catalog(repo: VersionedRepository) -> Catalog:
    info = RepositoryInfo.read(repo.path)
    index = CatalogIndex.load(repo.path / info.preprocess / str(repo.pinned()) / CATALOG_DIR)
    return Catalog(index.item_ids, index.codes, index.codebook_sizes, f"the catalog of version {repo.pinned()}")


def _check_same_configs(root: Path, config: BuildConfig) -> None:
    """RepositoryError unless the new version's step configs equal the served ones (policies aside)."""
    rendered = render_configs(config)
    for name in (config.triton.preprocess_name, config.triton.step_name, config.triton.postprocess_name):
        current, new = read_config(root / name / "config.pbtxt"), parse_config(rendered[name], name)
        for message in (current, new):
            message.ClearField("version_policy")
        if current != new:
            raise RepositoryError(
                f"the new version would change {name}'s serving settings; a version keeps them (build a new "
                "repository for new settings)"
            )


def _move_in(staging: Path, root: Path, steps: tuple[str, ...], number: int) -> list[str]:
    """Move the staged version folders into the steps (never into a folder that appeared meanwhile)."""
    taken = [f"{step}/{number}" for step in steps if (root / step / str(number)).exists()]
    if taken:
        raise RepositoryError(f"{root}: {', '.join(taken)} appeared while version {number} was built; nothing moved")
    files = []
    for step in steps:
        source, target = staging / step / str(number), root / step / str(number)
        files += [f"{step}/{number}/{p.relative_to(source).as_posix()}" for p in source.rglob("*") if p.is_file()]
        shutil.move(str(source), str(target))
    return files
