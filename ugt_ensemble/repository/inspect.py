"""`RepositoryInfo`: what a client needs from a built repository (names, catalog, packing, K), read back
from the files `build` wrote: the manifest and the steps' typed parameters."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ugt_ensemble.errors import InputFileError
from ugt_ensemble.repository.manifest import model_names, read_manifest
from ugt_ensemble.repository.rules import read_config, string_parameters
from ugt_ensemble.runtime.catalog_index import CatalogIndex
from ugt_ensemble.runtime.packing import PackingConfig
from ugt_ensemble.runtime.parameters import PostprocessParameters, PreprocessParameters


@dataclass(frozen=True)
class RepositoryInfo:
    """The ensemble, its steps, and the catalog and packing that preprocess uses (latest version)."""

    path: Path
    ensemble: str
    preprocess: str
    model_step: str
    postprocess: str
    naive_peer: str | None
    index: CatalogIndex
    packing: PackingConfig
    num_recommendations: int

    @classmethod
    def read(cls, repository: str | Path) -> RepositoryInfo:
        path = Path(repository)
        try:
            names = model_names(read_manifest(path))
        except (InputFileError, KeyError, TypeError) as exc:
            raise InputFileError(
                f"{path}: not a repository written by `python -m ugt_ensemble build` ({exc})"
            ) from None
        preprocess, postprocess = names.preprocess, names.postprocess
        version = latest_version(path / preprocess)
        pre = PreprocessParameters.from_config(*_parameters(path, preprocess))
        post = PostprocessParameters.from_config(*_parameters(path, postprocess))
        return cls(
            path=path,
            ensemble=names.ensemble,
            preprocess=preprocess,
            model_step=names.model_step,
            postprocess=postprocess,
            naive_peer=names.naive_peer,
            index=CatalogIndex.load(path / preprocess / str(version) / pre.catalog_file),
            packing=PackingConfig(pre.max_seq_length, pre.length_buckets),
            num_recommendations=post.num_recommendations,
        )


def latest_version(model_dir: Path) -> int:
    """The highest numbered version folder of a model (InputFileError if there is none)."""
    versions = (
        [int(p.name) for p in model_dir.iterdir() if p.is_dir() and p.name.isdigit()] if model_dir.is_dir() else []
    )
    if not versions:
        raise InputFileError(f"{model_dir}: no version folder")
    return max(versions)


def _parameters(root: Path, model: str) -> tuple[dict[str, str], str]:
    path = root / model / "config.pbtxt"
    return string_parameters(read_config(path)), str(path)
