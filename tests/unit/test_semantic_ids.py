"""Semantic IDs from embeddings (`ugt_ensemble.catalog.semantic_ids`): the real faiss encoder on small data."""

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("faiss")

from ugt_ensemble.catalog.catalog import Catalog  # noqa: E402
from ugt_ensemble.catalog.code_collisions import CodebookFullError  # noqa: E402
from ugt_ensemble.catalog.embeddings import validated  # noqa: E402
from ugt_ensemble.catalog.residual_kmeans import Codebooks, KMeansSettings  # noqa: E402
from ugt_ensemble.catalog.semantic_ids import SemanticIdSettings, assign_semantic_ids  # noqa: E402
from ugt_ensemble.errors import InputFileError  # noqa: E402

SIZES = (8, 16, 32)


def clustered(n: int, dim: int = 8, seed: int = 0, duplicates: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((12, dim))
    vectors = centres[rng.integers(0, 12, n)] + 0.2 * rng.standard_normal((n, dim))
    vectors[n - duplicates :] = vectors[0]  # exact copies of row 0
    return vectors.astype(np.float32)


def embeddings(vectors: np.ndarray, ids: np.ndarray | None = None):
    ids = np.arange(len(vectors)) * 10 + 1 if ids is None else ids
    return validated(ids, vectors, "embeddings test", lambda i: f"row {i + 1}")


def settings(sizes=SIZES, seed: int = 0, flat_up_to: int = 1024) -> SemanticIdSettings:
    return SemanticIdSettings(sizes, KMeansSettings(seed=seed, iterations=6, flat_up_to=flat_up_to))


def keys(codes: np.ndarray, sizes=SIZES) -> np.ndarray:
    return (codes[:, 0] * sizes[1] + codes[:, 1]) * sizes[2] + codes[:, 2]


@pytest.mark.parametrize("flat_up_to", [1024, 10], ids=["flat", "two-level"])
def test_codes_are_unique_inside_the_codebooks_and_accepted_as_a_catalog(flat_up_to):
    result = assign_semantic_ids(embeddings(clustered(600, duplicates=40)), settings(flat_up_to=flat_up_to))
    assert len(np.unique(keys(result.codes))) == 600
    assert ((result.codes >= 0) & (result.codes < np.array(SIZES))).all()
    Catalog.from_arrays(result.item_ids, result.codes, SIZES)  # the catalog's own validation
    assert result.report["collisions"]["moved_items"] >= 39  # 40 copies of row 0 share one triple
    errors = [e["relative"] for e in result.report["quantisation_error"]]
    assert 0 < errors[2] < errors[1] < errors[0] < 1
    if flat_up_to == 10:
        assert all(level.coarse is not None for level in result.codebooks.levels[1:])


def test_the_same_seed_gives_the_same_codes_and_another_seed_other_codes():
    data = embeddings(clustered(500, duplicates=10))
    first, again = assign_semantic_ids(data, settings(seed=3)), assign_semantic_ids(data, settings(seed=3))
    other = assign_semantic_ids(data, settings(seed=4))
    assert np.array_equal(first.codes, again.codes)
    assert not np.array_equal(first.codes, other.codes)


def test_k_is_capped_at_the_number_of_items():
    result = assign_semantic_ids(embeddings(clustered(20)), settings(sizes=(1024, 4096, 16384)))
    assert result.report["centroids_per_level"] == [20, 20, 20]
    assert len(np.unique(keys(result.codes, (1024, 4096, 16384)))) == 20


def test_a_collision_keeps_the_earliest_copy_and_moves_the_others_to_the_nearest_free_level3():
    vectors = clustered(300, duplicates=3)  # rows 297-299 copy row 0: four identical vectors
    result = assign_semantic_ids(embeddings(vectors), settings())
    codes, (c1, c2, c3) = result.codes, result.codebooks.centroids
    copies = [0, 297, 298, 299]
    assert len({tuple(codes[r, :2]) for r in copies}) == 1  # same (l1, l2) prefix: it had free l3 codes
    l1, l2 = codes[0, :2]
    residual = vectors[0] - c1[l1] - c2[l2]
    by_distance = np.argsort(((c3 - residual) ** 2).sum(axis=1), kind="stable")
    assert codes[0, 2] == by_distance[0]  # row 0 (the earliest of equals) keeps the nearest code
    others = {int(codes[r, 2]) for r in range(300) if r not in copies and tuple(codes[r, :2]) == (l1, l2)}
    free = [int(c) for c in by_distance if int(c) not in others]
    assert [int(codes[r, 2]) for r in copies] == free[:4]  # then the next free ones, in row order


def test_a_full_prefix_moves_items_to_the_next_l2_then_the_next_l1():
    vectors = np.repeat(np.eye(4, dtype=np.float32)[:1], 5, axis=0)  # five identical items, 2 x 2 x 2 codes
    result = assign_semantic_ids(embeddings(vectors), settings(sizes=(2, 2, 2)))
    assert result.codes.tolist() == [[0, 0, 0], [0, 0, 1], [0, 1, 0], [0, 1, 1], [1, 0, 0]]
    stats = result.report["collisions"]
    assert (stats["moved_within_prefix"], stats["moved_to_other_l2"], stats["moved_to_other_l1"]) == (1, 2, 1)


def test_too_many_items_for_the_codebooks_is_a_clear_error():
    with pytest.raises(CodebookFullError, match=r"9 items need unique .* 2 x 2 x 2 = 8; use larger --codebook-sizes"):
        assign_semantic_ids(embeddings(clustered(9)), settings(sizes=(2, 2, 2)))


def test_new_items_are_added_without_moving_the_old_ones(tmp_path: Path):
    vectors = clustered(500, duplicates=0)
    vectors[450:460] = vectors[:10]  # new items identical to old ones: the old keep their triples
    first = assign_semantic_ids(embeddings(vectors[:400], np.arange(400)), settings(flat_up_to=10))
    first.codebooks.save(tmp_path / "c.npz")
    codebooks = Codebooks.load(tmp_path / "c.npz", SIZES, 8)
    existing = Catalog.from_arrays(first.item_ids, first.codes, SIZES)
    grown = assign_semantic_ids(embeddings(vectors, np.arange(500)), settings(), existing=existing, codebooks=codebooks)
    assert np.array_equal(grown.item_ids[:400], first.item_ids)
    assert np.array_equal(grown.codes[:400], first.codes)
    assert grown.report["new_items"] == 100 and grown.report["existing_items"] == 400
    assert len(np.unique(keys(grown.codes))) == 500
    assert grown.report["collisions"]["moved_items"] >= 10


def test_codebooks_of_another_shape_are_refused_naming_the_file(tmp_path: Path):
    result = assign_semantic_ids(embeddings(clustered(200)), settings())
    path = tmp_path / "c.npz"
    result.codebooks.save(path)
    with pytest.raises(InputFileError, match=rf"codebooks {path}: level1 has shape \(8, 8\); expected \(K, 16\)"):
        Codebooks.load(path, SIZES, 16)
    with pytest.raises(InputFileError, match=rf"codebooks {path}: made for codebook sizes \(8, 16, 32\), not"):
        Codebooks.load(path, (8, 16, 64), 8)
    np.savez(tmp_path / "bad.npz", codebook_sizes=np.array(SIZES), level1=np.zeros((8, 8)), level2=np.zeros((3, 8)),
             level3=np.zeros((40, 8)))  # fmt: skip
    with pytest.raises(InputFileError, match=r"bad.npz: level3 has shape \(40, 8\); expected \(K, 8\) with 1 <= K"):
        Codebooks.load(tmp_path / "bad.npz", SIZES, 8)
