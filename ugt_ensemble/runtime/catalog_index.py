"""`CatalogIndex`: item id <-> semantic-ID lookups as sorted arrays (one `searchsorted` per batch).

An index is saved either as a folder of .npy files (`save_dir`, loaded as read-only memory maps so that
every process serving the catalog shares the same pages) or, in older repositories, as one .npz file.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from .contract import CODEBOOK_SIZES, PAD_ITEM_ID, code_keys
from .errors import UgtEnsembleError
from .id_buckets import MIN_KEYS, IdBuckets

#: The arrays of an index (one .npy file each in a folder); the .npz form lacks the last two.
_NPZ_ARRAYS = ("item_ids", "codes", "code_keys", "items_by_code")
_DIR_ARRAYS = (*_NPZ_ARRAYS, "codes_by_level", "code_order")
CODEBOOK_FILE = "codebook_sizes.npy"


class CatalogIndexError(UgtEnsembleError, ValueError):
    """A catalog index file is missing, unreadable, or inconsistent."""


class CatalogIndex:
    """Both directions of the catalog as sorted numpy arrays.

    "Id order" sorts items by id; "code order" sorts them by (l1, l2, l3), the order of the prefix tables.

    Attributes:
        item_ids: int64 [N], sorted ascending.
        codes: int64 [N, 3], the codes of `item_ids[i]`; `codes_by_level` is its (3, N) transpose.
        code_keys: int64 [N], `code_keys(codes)` sorted ascending.
        items_by_code: int64 [N], the item id of `code_keys[i]`.
        code_order: int64 [N], the code-order position of `item_ids[i]`.
    """

    def __init__(
        self,
        item_ids: np.ndarray,
        codes: np.ndarray,
        codebook_sizes: tuple[int, int, int] = CODEBOOK_SIZES,
    ) -> None:
        order = np.argsort(item_ids, kind="stable")
        self.codebook_sizes = tuple(int(v) for v in codebook_sizes)
        self.item_ids = np.ascontiguousarray(item_ids[order], dtype=np.int64)
        self.codes = np.ascontiguousarray(codes[order], dtype=np.int64)
        self.codes_by_level = np.ascontiguousarray(self.codes.T)  # (3, N): fast gathers per level
        keys = code_keys(self.codes, self.codebook_sizes)
        by_key = np.argsort(keys, kind="stable")
        self.code_keys = keys[by_key]
        self.items_by_code = self.item_ids[by_key]
        self.code_order = _inverse_permutation(by_key)

    def __len__(self) -> int:
        return len(self.item_ids)

    def fingerprint(self) -> str:
        """A short digest of the item -> code mapping and the codebook sizes."""
        digest = hashlib.sha256(np.array(self.codebook_sizes, dtype=np.int64).tobytes())
        digest.update(np.ascontiguousarray(self.item_ids).tobytes())
        digest.update(np.ascontiguousarray(self.codes).tobytes())
        return digest.hexdigest()[:16]

    def positions_of(self, item_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Rows of `item_ids` in `codes` (clipped for missing ids) and a bool mask of those found."""
        keys = np.asarray(item_ids, dtype=np.int64)
        if keys.ndim != 1 or len(keys) < MIN_KEYS:
            return _lookup(self.item_ids, keys)
        return self.id_buckets().lookup(keys)

    def id_buckets(self) -> IdBuckets:
        """The bucket index of `item_ids`, built on first use (preprocess builds it in `initialize`, so that no
        request pays for it; postprocess, which looks codes up, never does)."""
        buckets = self.__dict__.get("_id_buckets")
        if buckets is None:
            buckets = self._id_buckets = IdBuckets(self.item_ids)
        return buckets

    def code_positions_of(self, item_ids: np.ndarray) -> np.ndarray:
        """Code-order positions of the catalog items among `item_ids` (ids outside the catalog dropped)."""
        pos, found = self.positions_of(item_ids)
        return self.code_order[pos[found]]

    def codes_of(self, item_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Codes (..., 3) of `item_ids` and a bool mask of those found (missing rows hold 0s)."""
        pos, found = self.positions_of(item_ids)
        codes = self.codes[pos]
        codes[~found] = 0
        return codes, found

    def items_of(self, codes: np.ndarray) -> np.ndarray:
        """Item ids of code triples (..., 3); `PAD_ITEM_ID` where a triple is no catalog item."""
        pos, found = self._code_lookup(codes)
        return np.where(found, self.items_by_code[pos], PAD_ITEM_ID)

    def item_index_of(self, codes: np.ndarray) -> np.ndarray:
        """Code-order positions of code triples (..., 3); -1 where a triple is no catalog item."""
        pos, found = self._code_lookup(codes)
        return np.where(found, pos, -1)

    def _code_lookup(self, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        codes = np.asarray(codes, dtype=np.int64)
        in_range = np.all((codes >= 0) & (codes < np.array(self.codebook_sizes)), axis=-1)
        pos, found = _lookup(self.code_keys, code_keys(codes, self.codebook_sizes))
        return pos, found & in_range

    def save(self, path: str | Path) -> None:
        """Write the index as one uncompressed .npz (the older form; `save_dir` is the one to map)."""
        np.savez(
            path,
            codebook_sizes=np.array(self.codebook_sizes, dtype=np.int64),
            **{name: getattr(self, name) for name in _NPZ_ARRAYS},
        )

    def save_dir(self, folder: str | Path) -> None:
        """Write the index into `folder` (created if needed) as one .npy file per array."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        save_npy(folder / CODEBOOK_FILE, np.array(self.codebook_sizes, dtype=np.int64))
        for name in _DIR_ARRAYS:
            save_npy(folder / f"{name}.npy", getattr(self, name))

    @classmethod
    def load(cls, path: str | Path, mmap: bool = True) -> CatalogIndex:
        """Read a folder written by `save_dir` (memory-mapped read-only unless `mmap` is False) or a .npz
        written by `save`; raises `CatalogIndexError` naming the file."""
        path = Path(path)
        index = cls.__new__(cls)
        if path.is_dir():
            arrays = {name: load_npy(path / f"{name}.npy", mmap) for name in _DIR_ARRAYS}
            sizes = load_npy(path / CODEBOOK_FILE, mmap=False)
        else:
            arrays, sizes = _load_npz(path)
        if sizes.shape != (3,) or np.any(sizes <= 0):
            raise CatalogIndexError(f"catalog index {path}: codebook sizes {sizes.tolist()} are not 3 positive ints")
        index.codebook_sizes = tuple(int(v) for v in sizes)
        for name, value in arrays.items():
            setattr(index, name, value)
        index._check(path)
        return index

    def _check(self, path: Path) -> None:
        n = len(self.item_ids)
        expected = {"item_ids": (n,), "codes": (n, 3), "code_keys": (n,), "items_by_code": (n,)}
        expected.update(codes_by_level=(3, n), code_order=(n,))
        for name, shape in expected.items():
            value = getattr(self, name)
            if value.shape != shape or value.dtype != np.int64 or n == 0:
                where = path / f"{name}.npy" if path.is_dir() else f"{path} ({name})"
                raise CatalogIndexError(
                    f"catalog index {where}: {value.dtype} {list(value.shape)}, expected non-empty int64 {list(shape)}"
                )
        if np.any(self.item_ids[1:] <= self.item_ids[:-1]) or np.any(self.code_keys[1:] <= self.code_keys[:-1]):
            raise CatalogIndexError(f"catalog index {path}: keys are not strictly increasing")
        order = self.code_order
        if order.min() < 0 or order.max() >= n or np.any(self.items_by_code[order] != self.item_ids):
            raise CatalogIndexError(f"catalog index {path}: code_order and items_by_code disagree on the items' order")


def save_npy(path: Path, array: np.ndarray) -> None:
    """Write `array` as a new .npy file at `path` (renamed over an old one, never written into it: a sealed file
    is read-only, and a hard link to it belongs to another version)."""
    partial = path.with_name(f".{path.name}.tmp")
    with open(partial, "wb") as file:
        np.save(file, np.ascontiguousarray(array))
    os.replace(partial, path)


def load_npy(path: Path, mmap: bool = True, error: type[CatalogIndexError] = CatalogIndexError) -> np.ndarray:
    """One .npy file, memory-mapped read-only when `mmap`; `error` naming the file when it cannot be read."""
    try:
        array = np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except (OSError, ValueError) as exc:
        kind = "catalog index" if error is CatalogIndexError else "constraint data"
        raise error(f"{kind} {path}: cannot load ({exc})") from None
    # A plain ndarray over the map (its base keeps the file mapped): numpy's memmap subclass wraps every slice
    # it returns, which costs more than the lookups themselves on the request path.
    return array.view(np.ndarray) if isinstance(array, np.memmap) else array


def is_mapped(array: np.ndarray) -> bool:
    """Whether `array` (or what it views) is a memory-mapped file."""
    while array is not None:
        if isinstance(array, np.memmap):
            return True
        array = array.base if isinstance(array.base, np.ndarray) else None
    return False


def _load_npz(path: Path) -> tuple[dict[str, np.ndarray], np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: data[name] for name in (*_NPZ_ARRAYS, "codebook_sizes")}
    except (OSError, KeyError, ValueError) as exc:
        raise CatalogIndexError(f"catalog index {path}: cannot load ({exc})") from None
    sizes = arrays.pop("codebook_sizes")
    ids, codes, by_code = arrays["item_ids"], arrays["codes"], arrays["items_by_code"]
    arrays["codes_by_level"] = np.ascontiguousarray(codes.T)
    arrays["code_order"] = np.zeros(0, dtype=np.int64)  # refused by `_check` unless rebuilt below
    if ids.ndim == 1 and len(ids) and by_code.shape == ids.shape and ids.dtype == by_code.dtype == np.int64:
        pos, found = _lookup(ids, by_code)
        arrays["code_order"] = _inverse_permutation(np.where(found, pos, 0))
    return arrays, sizes


def _inverse_permutation(perm: np.ndarray) -> np.ndarray:
    inverse = np.full(len(perm), -1, dtype=np.int64)
    inverse[perm] = np.arange(len(perm), dtype=np.int64)
    return inverse


def _lookup(sorted_keys: np.ndarray, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positions of `keys` in `sorted_keys` (clipped) and whether each was found."""
    pos = np.minimum(sorted_keys.searchsorted(keys), len(sorted_keys) - 1)
    return pos, sorted_keys[pos] == keys
