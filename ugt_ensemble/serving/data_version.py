"""A data-only version: a new catalog and/or new item sets for the model the repository serves, in seconds.

A model that honours the business rules in its search reads the catalog's constraint tables at run time
(`ugt_runtime.constraint_data`), so a new catalog drawn from the same codebooks needs no torch export, no
parity run and no engine: the new version's folders get a copy of the served version's model file (`clone_file`)
and the new catalog data, checked by running the served model on a few histories (what new data can break is
the tables the search reads; the model itself was checked when it was built). A catalog whose widest fan-out
exceeds the caps the model was exported with is refused, naming the cap (export again then).
Without a new catalog (new item sets only), the served version's catalog folder is read again.
"""

from __future__ import annotations

import fcntl
import logging
import shutil
import tempfile
from pathlib import Path

from ugt_ensemble.catalog import Catalog, load_catalog
from ugt_ensemble.catalog.item_sets import item_sets_for
from ugt_ensemble.catalog.one_read import ReadColumns, read_catalog_indexed
from ugt_ensemble.config import BuildConfig
from ugt_ensemble.errors import ConfigError
from ugt_ensemble.export.bake import UNBAKED_ONNX_FILE, bake_tables, unbaked_model
from ugt_ensemble.export.onnx_contract import check_onnx_signature
from ugt_ensemble.export.onnx_file import external_files, read_onnx
from ugt_ensemble.export.probe import probe_catalog_validity, require_validity
from ugt_ensemble.export.validate import onnx_runner
from ugt_ensemble.progress import StepProgress
from ugt_ensemble.repository.writer import write_version_files
from ugt_ensemble.runtime.catalog_index import CatalogIndex
from ugt_ensemble.runtime.constraint_data import ConstraintData
from ugt_ensemble.runtime.contract import CATALOG_DIR, ONNX_FILE
from ugt_ensemble.runtime.packing import PackingConfig
from ugt_ensemble.serving.versions import VersionedRepository

LOGGER = logging.getLogger(__name__)
#: The validity probe of a data-only version: a few short histories in one call (the model is the served one,
#: checked when it was built; what new data can break is its tables, which every probed beam search reads).
PROBE_HISTORIES, PROBE_MAX_LENGTH = 8, 64
#: Linux's ioctl that makes a file share another's extents (btrfs, XFS).
_FICLONE = 0x40049409


def serves_data_only(repo: VersionedRepository) -> bool:
    """Whether a new catalog for `repo` can be a data-only version: its served model honours the rules in its
    search and runs inside the Python-backend model step (fed the tables from memory) or on Triton's onnxruntime
    backend (its model.onnx is baked again from the unbaked export kept beside it, `export.bake`: no torch, seconds).
    A TensorRT engine holds the tables as weights: a new catalog needs a new engine, a full version."""
    t = repo.build_config().triton
    if t.model_step.rules_in_search and t.platform == "tensorrt_plan":
        LOGGER.info("the TensorRT engine holds the catalog's tables as weights: a new catalog is a full version")
    return t.model_step.rules_in_search and (t.python_model_step or t.platform == "onnxruntime_onnx")


def data_version_titles(catalog_path: Path | None) -> list[str]:
    """The progress steps of `stage_data_version` (`catalog_path` None: the served version's catalog)."""
    return [
        f"Reading the catalog ({catalog_path})" if catalog_path else "Reading the served version's catalog",
        "Building the constraint data (no export, no engine)",
        "Checking the served model on the new data",
        "Writing the version",
    ]


def stage_data_version(
    repo: VersionedRepository, config: BuildConfig, catalog_path: Path | None, number: int, progress: StepProgress
) -> tuple[Path, ConstraintData, dict]:
    """Write version `number`'s folders into a staging folder beside the repository; returns (staging folder,
    the data, the catalog's record for the manifest). `catalog_path` None keeps the served version's catalog;
    the item sets are `config.export`'s. The caller moves the folders in (or removes the staging)."""
    served = repo.path / config.triton.step_name / str(repo.pinned())
    with progress.step(data_version_titles(catalog_path)[0]):
        index, record, read = _catalog(repo, config, catalog_path)
    with progress.step(data_version_titles(catalog_path)[1]):
        signature = check_onnx_signature(unbaked_model(served), config.export.num_recommendations)
        if not signature.rules_in_search:
            raise ConfigError(f"{served / ONNX_FILE} takes no constraint tables: deploy a model with the catalog")
        sets = item_sets_for(config.export, config.export.catalog_path, index, read)
        data = ConstraintData.build(index, sets, signature.fanout_caps)
    with progress.step(data_version_titles(catalog_path)[2]):
        packing = PackingConfig(min(PROBE_MAX_LENGTH, config.packing.max_seq_length), config.packing.buckets)
        validity = probe_catalog_validity(
            onnx_runner(unbaked_model(served), data=data), index, packing, PROBE_HISTORIES, config.seed
        )
        where = catalog_path or f"the catalog of version {repo.pinned()}"
        require_validity(validity, config.export.min_catalog_validity, f"{served / ONNX_FILE} on {where}")
    staging = Path(tempfile.mkdtemp(prefix=f".{repo.path.name}.version-", dir=repo.path.parent))
    try:
        with progress.step(data_version_titles(catalog_path)[3]):
            # The model files first: `write_version_files` seals them with the rest of the version.
            _copy_model_files(served, staging / config.triton.step_name / str(number), data)
            write_version_files(staging, config, data, number)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return staging, data, record


def _catalog(
    repo: VersionedRepository, config: BuildConfig, catalog_path: Path | None
) -> tuple[CatalogIndex, dict, ReadColumns | None]:
    """The new version's catalog index, its manifest record (the file's, or the served version's again), and the
    set columns when they were read with the catalog (`catalog.one_read`; None: `item_sets_for` reads them)."""
    if catalog_path is not None:
        catalog, index, read = _read_catalog(catalog_path, config)
        return index, {"source": catalog.source, "items": len(catalog), "fingerprint": index.fingerprint(),
                       "data_only": True}, read  # fmt: skip
    served = repo.pinned()
    index = ConstraintData.load(repo.path / config.triton.preprocess_name / str(served) / CATALOG_DIR).index
    previous = ((repo.manifest.get("versions") or {}).get(str(served)) or repo.manifest).get("catalog") or {}
    source = previous.get("source") or f"the catalog of version {served}"
    return index, {"source": source, "items": len(index), "fingerprint": index.fingerprint(), "data_only": True}, None


def _read_catalog(catalog_path: Path, config: BuildConfig) -> tuple[Catalog, CatalogIndex, ReadColumns | None]:
    """The catalog file and its index (built once: `Catalog.fingerprint` builds one of its own), with the set columns
    it defines in the same read where it can be (`catalog.one_read`)."""
    export = config.export
    same_file = export.catalog_path and Path(export.catalog_path).resolve() == catalog_path.resolve()
    names = tuple(export.set_columns) if same_file else ()
    fast = read_catalog_indexed(catalog_path, export.codebook_sizes, names)
    if fast is not None:
        return fast
    catalog = load_catalog(catalog_path, export.codebook_sizes)
    return catalog, catalog.index(), None


def _copy_model_files(served: Path, target: Path, data: ConstraintData) -> None:
    """The served version's model files (the ONNX file and its external data) copied into `target` (`clone_file`);
    a native step's unbaked export is copied and baked again with `data`'s tables (`export.bake`)."""
    model = unbaked_model(served)
    for relative in [model.name, *sorted(external_files(model, read_onnx(model, check_opset=False)))]:
        destination = target / relative
        destination.parent.mkdir(parents=True, exist_ok=True)
        clone_file(served / relative, destination)
    if model.name == UNBAKED_ONNX_FILE:
        bake_tables(target / model.name, target / ONNX_FILE, data.tables(), data.fingerprint)


def clone_file(source: Path, destination: Path) -> None:
    """Copy `source` to a new file `destination`: a reflink (shared extents, no bytes copied) where the filesystem
    has them, else a plain copy. Never a hard link: linking (and then sealing, a chmod) changes the served file's
    inode, its ctime with it, and Triton takes a changed file for a new model and reloads the served version."""
    with open(source, "rb") as reader, open(destination, "xb") as writer:
        try:
            fcntl.ioctl(writer.fileno(), _FICLONE, reader.fileno())
            return
        except OSError:  # ext4, tmpfs, another filesystem than the source's: copied below (sendfile on Linux)
            pass
    shutil.copyfile(source, destination)
