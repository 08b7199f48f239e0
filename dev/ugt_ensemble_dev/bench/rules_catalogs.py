"""`rules build`: a synthetic catalog with an `allow` column, the repository of the reference UGT built on it, and
`next.csv`, the same catalog with some items removed and new ones added, for a data-only switch.

New items get fresh codes in existing (l1, l2) clusters, as a semantic-ID model places new items near similar ones,
and only clusters no larger than the median grow: every fan-out stays within the caps the model was exported with.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ugt_ensemble.catalog import Catalog, synthetic_catalog
from ugt_ensemble_dev.bench.rules_report import RecordingProgress, stage_table, timed

#: The flag column of the catalog files written here (1 for the items of the allow-list, else 0).
ALLOW_SET = "allow"


@dataclass(frozen=True)
class NextCatalog:
    """The next catalog: which old items stay, and the new items' ids, codes and allow flags."""

    kept: np.ndarray
    new_ids: np.ndarray
    new_codes: np.ndarray
    new_allow: np.ndarray


def allow_mask(num_items: int, share: float, rng: np.random.Generator) -> np.ndarray:
    """A bool mask with round(num_items * share) (at least 1) true entries at seeded random places."""
    if not 0 < share <= 1:
        raise ValueError(f"--allow-share must be in (0, 1], got {share}")
    mask = np.zeros(num_items, dtype=bool)
    mask[rng.choice(num_items, max(1, round(num_items * share)), replace=False)] = True
    return mask


def new_items(catalog: Catalog, count: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """`count` new item ids (above the catalog's) with fresh codes in existing (l1, l2) clusters of at most the
    median size (see the module docstring)."""
    sizes = catalog.codebook_sizes
    pair_of = catalog.codes[:, 0] * sizes[1] + catalog.codes[:, 1]
    pairs, counts = np.unique(pair_of, return_counts=True)
    small = pairs[counts <= np.median(counts)]
    old = pair_of * sizes[2] + catalog.codes[:, 2]
    fresh = np.zeros(0, dtype=np.int64)
    while len(fresh) < count:
        chosen = rng.choice(small, 2 * (count - len(fresh)) + 16)
        keys = chosen * sizes[2] + rng.integers(0, sizes[2], len(chosen))
        keys = keys[~np.isin(keys, old) & ~np.isin(keys, fresh)]
        _, first = np.unique(keys, return_index=True)
        fresh = np.concatenate([fresh, keys[np.sort(first)]])
    fresh = fresh[:count]
    codes = np.column_stack([fresh // sizes[2] // sizes[1], fresh // sizes[2] % sizes[1], fresh % sizes[2]])
    return np.arange(count, dtype=np.int64) + int(catalog.item_ids.max()) + 1, codes.astype(np.int64)


def next_catalog(
    catalog: Catalog, remove_share: float, add_share: float, allow_share: float, rng: np.random.Generator
) -> NextCatalog:
    """`catalog` with a seeded `remove_share` of its items removed and `add_share` new ones added."""
    removed = rng.choice(len(catalog), round(len(catalog) * remove_share), replace=False)
    kept = np.ones(len(catalog), dtype=bool)
    kept[removed] = False
    new_ids, new_codes = new_items(catalog, round(len(catalog) * add_share), rng)
    return NextCatalog(kept, new_ids, new_codes, rng.random(len(new_ids)) < allow_share)


def write_catalog_csv(
    path: Path, item_ids: np.ndarray, codes: np.ndarray, flags: np.ndarray, column: str = ALLOW_SET
) -> None:
    """A catalog CSV: item_id, l1, l2, l3 and a 0/1 `column` (a boolean item set for `--set-column`)."""
    table = np.column_stack([item_ids, codes, flags.astype(np.int64)])
    np.savetxt(path, table, fmt="%d", delimiter=",", header=f"item_id,l1,l2,l3,{column}", comments="")


def build_config(output: Path, catalog_csv: Path, seed: int, instances: int = 1):  # noqa: ANN201 - a BuildConfig
    """What `python -m ugt_ensemble build --target-server cpu-wheel --catalog CSV --set-column allow` builds (the
    reference UGT, seeded), checked on two small shapes only, with `instances` instances of every step."""
    from ugt_ensemble.config import BuildConfig, ExportConfig
    from ugt_ensemble.config.build import target_server_settings

    defaults, triton = target_server_settings("cpu-wheel")
    if instances != 1:
        triton = triton.with_changes(instance_count=instances, preprocess_instances=instances,
                                     postprocess_instances=instances)  # fmt: skip
    export = ExportConfig(**{**defaults, "precision": "fp32"}, catalog_path=catalog_csv, set_columns=(ALLOW_SET,),
                          validation_shapes=((1, 1), (2, 16)))  # fmt: skip
    return BuildConfig(output_dir=output, export=export, triton=triton, seed=seed, target_server="cpu-wheel")


def run_build(
    items: int, output: Path, allow_share: float = 0.01, seed: int = 0, remove_share: float = 0.05,
    add_share: float = 0.02, instances: int = 1,
) -> str:  # fmt: skip
    """Write `output`/catalog.csv, `output`/next.csv and build `output`/repo; returns the Markdown report."""
    from ugt_ensemble.build import build_repository

    output.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    times: list[tuple[str, float]] = []
    with timed(times, f"synthetic catalog ({items} items)"):
        catalog = synthetic_catalog(items, seed=seed)
        allow = allow_mask(items, allow_share, rng)
    with timed(times, "catalog write (catalog.csv)"):
        write_catalog_csv(output / "catalog.csv", catalog.item_ids, catalog.codes, allow)
    with timed(times, "next catalog write (next.csv)"):
        nxt = next_catalog(catalog, remove_share, add_share, allow_share, rng)
        write_catalog_csv(
            output / "next.csv",
            np.concatenate([catalog.item_ids[nxt.kept], nxt.new_ids]),
            np.concatenate([catalog.codes[nxt.kept], nxt.new_codes]),
            np.concatenate([allow[nxt.kept], nxt.new_allow]),
        )
    progress = RecordingProgress()
    with timed(times, "build (total)"):
        build_repository(build_config(output / "repo", output / "catalog.csv", seed, instances), progress)
    lines = [
        f"Catalog {items} items ({int(allow.sum())} in set `{ALLOW_SET}`), next.csv: "
        f"{int((~nxt.kept).sum())} removed, {len(nxt.new_ids)} added; repository {output / 'repo'}",
        "",
        stage_table(times, None),
        "",
        "Build steps:",
        "",
        stage_table(progress.times),
    ]
    return "\n".join(lines)
