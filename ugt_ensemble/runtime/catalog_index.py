"""`CatalogIndex`: item id <-> semantic-ID lookups as sorted arrays (one `searchsorted` per batch)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from .contract import CODEBOOK_SIZES, PAD_ITEM_ID, code_keys
from .errors import UgtEnsembleError

_ARRAYS = ("item_ids", "codes", "code_keys", "items_by_code")


class CatalogIndexError(UgtEnsembleError, ValueError):
    """A catalog index file is missing, unreadable, or inconsistent."""


class CatalogIndex:
    """Both directions of the catalog as sorted numpy arrays.

    Attributes:
        item_ids: int64 [N], sorted ascending.
        codes: int64 [N, 3], the codes of `item_ids[i]`; `codes_by_level` is its (3, N) transpose.
        code_keys: int64 [N], `code_keys(codes)` sorted ascending.
        items_by_code: int64 [N], the item id of `code_keys[i]`.
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
        return _lookup(self.item_ids, np.asarray(item_ids, dtype=np.int64))

    def codes_of(self, item_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Codes (..., 3) of `item_ids` and a bool mask of those found (missing rows hold 0s)."""
        pos, found = self.positions_of(item_ids)
        codes = self.codes[pos]
        codes[~found] = 0
        return codes, found

    def items_of(self, codes: np.ndarray) -> np.ndarray:
        """Item ids of code triples (..., 3); `PAD_ITEM_ID` where a triple is no catalog item."""
        codes = np.asarray(codes, dtype=np.int64)
        in_range = np.all((codes >= 0) & (codes < np.array(self.codebook_sizes)), axis=-1)
        pos, found = _lookup(self.code_keys, code_keys(codes, self.codebook_sizes))
        return np.where(found & in_range, self.items_by_code[pos], PAD_ITEM_ID)

    def save(self, path: str | Path) -> None:
        """Write the index as an uncompressed .npz (fast to load in `initialize`)."""
        np.savez(
            path,
            codebook_sizes=np.array(self.codebook_sizes, dtype=np.int64),
            **{name: getattr(self, name) for name in _ARRAYS},
        )

    @classmethod
    def load(cls, path: str | Path) -> CatalogIndex:
        """Read an index written by `save`; raises `CatalogIndexError` naming the file."""
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {name: data[name] for name in (*_ARRAYS, "codebook_sizes")}
        except (OSError, KeyError, ValueError) as exc:
            raise CatalogIndexError(f"catalog index {path}: cannot load ({exc})") from None
        index = cls.__new__(cls)
        index.codebook_sizes = tuple(int(v) for v in arrays.pop("codebook_sizes"))
        for name, value in arrays.items():
            setattr(index, name, value)
        index._check(path)
        index.codes_by_level = np.ascontiguousarray(index.codes.T)
        return index

    def _check(self, path: str | Path) -> None:
        n = len(self.item_ids)
        shapes_ok = self.codes.shape == (n, 3) and all(
            getattr(self, name).shape == (n,) for name in ("code_keys", "items_by_code")
        )
        if not shapes_ok or n == 0:
            raise CatalogIndexError(f"catalog index {path}: arrays are empty or of mismatched shapes")
        if np.any(np.diff(self.item_ids) <= 0) or np.any(np.diff(self.code_keys) <= 0):
            raise CatalogIndexError(f"catalog index {path}: keys are not strictly increasing")


def _lookup(sorted_keys: np.ndarray, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positions of `keys` in `sorted_keys` (clipped) and whether each was found."""
    pos = sorted_keys.searchsorted(keys)
    pos.clip(max=len(sorted_keys) - 1, out=pos)
    return pos, sorted_keys[pos] == keys
