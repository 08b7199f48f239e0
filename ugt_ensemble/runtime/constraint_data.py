"""`ConstraintData`: a served catalog's constraint data, kept outside the model step so that a new catalog
(or a changed item set) of the same codebooks needs no new export.

It holds the catalog index, the padded prefix and item-set tables a rules-aware model step takes as its
`contract.TABLE_INPUTS`, and the arrays `rules.pack_rules` reads. `save(folder)` writes everything into one
folder of .npy files plus `constraints.json`, sealed (`data_files`: read-only, sizes and hashes recorded);
`load(folder)` checks them against the record and maps them read-only, so every process serving the catalog
shares one copy of the pages.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Mapping

import numpy as np

from .catalog_index import CatalogIndex, CatalogIndexError, load_npy, save_npy
from .constraint_tables import (
    ITEM_PAIR,
    L2_COUNT,
    L3_COUNT,
    PACKER_NAMES,
    PAIR_L1,
    SET_ITEMS,
    SET_L1_PAIRS,
    SET_MEMBERS,
    SET_OFFSETS,
    SET_PAIR_COUNTS,
    SET_PAIRS,
    build_arrays,
    fanouts,
)
from .contract import TABLE_NAMES, default_fanout_caps
from .data_files import FileGuard, seal, verify_folder
from .errors import RequestError, clip, quote
from .rule_request import MAX_EXCLUDED_ITEMS, MAX_SETS_PER_REQUEST, RuleRequest, normal_set_name

#: The folder's description: set names, fan-out caps, sizes and fingerprints.
META_FILE = "constraints.json"
FORMAT_VERSION = 1
#: Most items the intersection of a request's sets may remove from the smallest of them.
MAX_INTERSECTION_REMOVALS = 50_000
_CACHED_INTERSECTIONS = 256
_CHUNK = 1 << 18
_NO_ITEMS = np.zeros(0, dtype=np.int64)


class ConstraintDataError(CatalogIndexError):
    """A constraint-data folder is missing a file, unreadable, or inconsistent."""


class ConstraintData:
    """The constraint data of one catalog: `index`, the named item sets and their arrays.

    Set 0 is the whole catalog; sets 1..S-1 are `set_names` in order. `fanout_caps` (C2cap, C3cap) are
    the widest fan-outs the model step was exported for.
    """

    def __init__(
        self,
        index: CatalogIndex,
        set_names: tuple[str, ...],
        fanout_caps: tuple[int, int],
        arrays: dict[str, np.ndarray],
        fingerprint: str,
    ) -> None:
        self.index = index
        self.set_names = tuple(set_names)
        self.fanout_caps = (int(fanout_caps[0]), int(fanout_caps[1]))
        self.arrays = arrays
        self.fingerprint = fingerprint
        self._set_ids = {name: k + 1 for k, name in enumerate(self.set_names)}
        #: The loaded files held open (`load` with mmap): `files.check()` before touching the maps.
        self.files = FileGuard()
        self._intersections: dict[tuple[int, ...], tuple[int, np.ndarray | int]] = {}

    @classmethod
    def build(
        cls,
        index: CatalogIndex,
        sets: Mapping[str, np.ndarray] | None = None,
        fanout_caps: tuple[int, int] | None = None,
    ) -> ConstraintData:
        """Build from an index, named bool masks over its id order, and (C2cap, C3cap) (default: this
        catalog's `default_fanout_caps`). Raises `ConfigError` naming a cap the catalog exceeds or a bad set."""
        caps = tuple(fanout_caps) if fanout_caps else default_fanout_caps(*fanouts(index), index.codebook_sizes)
        names, arrays = build_arrays(index, sets or {}, caps)  # type: ignore[arg-type]
        digest = hashlib.sha256(json.dumps([index.fingerprint(), names, list(caps)]).encode())
        digest.update(np.ascontiguousarray(arrays[SET_ITEMS]).tobytes())
        return cls(index, names, caps, arrays, digest.hexdigest()[:16])  # type: ignore[arg-type]

    # --- sizes and lookups ---------------------------------------------------------------------------
    @property
    def num_items(self) -> int:
        return len(self.index)

    @property
    def num_pairs(self) -> int:
        return len(self.arrays[PAIR_L1])

    @property
    def num_sets(self) -> int:
        """Sets in the tables, the whole catalog (set 0) included."""
        return len(self.set_names) + 1

    def tables(self) -> dict[str, np.ndarray]:
        """The `contract.TABLE_INPUTS` arrays by name (the stored arrays themselves, not copies)."""
        return {name: self.arrays[name] for name in TABLE_NAMES}

    def set_id(self, name: str) -> int:
        """The table index of a named set; `RequestError` listing the known names for an unknown one."""
        found = self._set_ids.get(normal_set_name(name)) if isinstance(name, str) else None
        if found is None:
            known = clip(", ".join(self.set_names), 300) if self.set_names else "none are defined"
            raise RequestError(f"sets: unknown item set {quote(name)}; known sets: {known}")
        return found

    def set_size(self, set_id: int) -> int:
        offsets = self.arrays[SET_OFFSETS]
        return self.num_items if set_id == 0 else int(offsets[set_id + 1] - offsets[set_id])

    def set_members(self, set_id: int) -> np.ndarray:
        """Sorted item indices (code order) of a set."""
        if set_id == 0:
            return np.arange(self.num_items, dtype=np.int64)
        offsets = self.arrays[SET_OFFSETS]
        return self.arrays[SET_MEMBERS][offsets[set_id] : offsets[set_id + 1]]

    def named_sets(self) -> dict[str, np.ndarray]:
        """Each named set as a bool mask over the index's id order (what `build` takes)."""
        order = np.asarray(self.index.code_order)
        return {name: self.arrays[SET_ITEMS][k + 1, order] for k, name in enumerate(self.set_names)}

    # --- requests ------------------------------------------------------------------------------------
    def check_request(self, rule: RuleRequest) -> None:
        """Raise `RequestError` naming the problem when `rule` cannot be served. (The bound a TensorRT step puts on
        the rule lists depends on the request's history too: `rules.check_list_length` checks it.)"""
        self.resolve(rule)

    def resolve(self, rule: RuleRequest) -> tuple[int, np.ndarray]:
        """(base set, sorted item indices the intersection of the named sets removes from it); checks `rule`."""
        if len(rule.exclude) > MAX_EXCLUDED_ITEMS:
            raise RequestError(f"exclude: {len(rule.exclude)} item ids, at most {MAX_EXCLUDED_ITEMS} per request")
        if not all(isinstance(name, str) for name in rule.sets):
            raise RequestError(f"sets: expected item set names (strings), got {quote(list(map(repr, rule.sets)))}")
        names = tuple(dict.fromkeys(map(normal_set_name, rule.sets)))  # as stored: NFC
        if len(names) > MAX_SETS_PER_REQUEST:
            raise RequestError(f"sets: {len(names)} item sets named, at most {MAX_SETS_PER_REQUEST} per request")
        if not names:
            return 0, _NO_ITEMS
        key = tuple(sorted(self.set_id(name) for name in names))
        cached = self._intersections.get(key)
        if cached is None:
            if len(self._intersections) >= _CACHED_INTERSECTIONS:
                self._intersections.pop(next(iter(self._intersections)), None)
            cached = self._intersections[key] = self._intersect(key)
        base, removed = cached
        if isinstance(removed, int):
            raise RequestError(
                f"sets: the intersection of {quote(list(names))} removes more than {MAX_INTERSECTION_REMOVALS} "
                f"of the {self.set_size(base)} items of {self.set_names[base - 1]!r}; define the combined set "
                "when building the repository and name it alone"
            )
        return base, removed

    def _intersect(self, set_ids: tuple[int, ...]) -> tuple[int, np.ndarray | int]:
        """(smallest set, its items missing from another set), or (smallest set, a count over the bound)."""
        base = min(set_ids, key=lambda s: (self.set_size(s), s))
        others = [s for s in set_ids if s != base]
        members, items = self.set_members(base), self.arrays[SET_ITEMS]
        removed, count = [], 0
        for start in range(0, len(members) if others else 0, _CHUNK):
            chunk = np.asarray(members[start : start + _CHUNK])
            keep = np.logical_and.reduce([items[s, chunk] for s in others])
            removed.append(chunk[~keep])
            count += len(removed[-1])
            if count > MAX_INTERSECTION_REMOVALS:
                return base, count
        return base, np.concatenate(removed) if removed else _NO_ITEMS

    # --- files ---------------------------------------------------------------------------------------
    def save(self, folder: str | Path) -> None:
        """Write the index, the arrays (.npy) and `META_FILE` into `folder`, created if needed, and seal them
        (`data_files.SEAL_FILE`, last)."""
        folder = Path(folder)
        self.index.save_dir(folder)
        for name in (*TABLE_NAMES, *PACKER_NAMES):
            save_npy(folder / f"{name}.npy", self.arrays[name])
        meta = {
            "format": FORMAT_VERSION,
            "set_names": list(self.set_names),
            "set_sizes": [self.set_size(s) for s in range(self.num_sets)],
            "fanout_caps": list(self.fanout_caps),
            "num_items": self.num_items,
            "num_pairs": self.num_pairs,
            "codebook_sizes": list(self.index.codebook_sizes),
            "fingerprint": self.fingerprint,
        }
        tmp = folder / f".{META_FILE}.tmp"
        tmp.write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
        os.replace(tmp, folder / META_FILE)
        seal(folder, [p.name for p in folder.iterdir() if p.suffix == ".npy"] + [META_FILE])

    @classmethod
    def load(cls, folder: str | Path, mmap: bool = True, verify: bool = True) -> ConstraintData:
        """Read a folder written by `save`, memory-mapped read-only unless `mmap` is False; raises
        `ConstraintDataError` (or `CatalogIndexError`) naming the file at fault. With `verify`, every file is first
        checked against the folder's seal (`data_files.DataFileError` names the file and the recorded and actual
        size or sha256), and with `mmap` the files stay open for `files.check()`."""
        folder = Path(folder)
        records = verify_folder(folder) if verify else {}
        meta = _read_meta(folder / META_FILE)
        index = CatalogIndex.load(folder, mmap=mmap)
        arrays = {
            name: load_npy(folder / f"{name}.npy", mmap, ConstraintDataError) for name in (*TABLE_NAMES, *PACKER_NAMES)
        }
        data = cls(index, tuple(meta["set_names"]), tuple(meta["fanout_caps"]), arrays, str(meta["fingerprint"]))
        data._check(folder, meta)
        if mmap:
            data.files.add(folder, records)
        return data

    def _check(self, folder: Path, meta: dict) -> None:
        """Shapes and dtypes against the index and `META_FILE`; cheap sums against the index."""
        n, p, s, (c2, c3) = self.num_items, int(meta["num_pairs"]), self.num_sets, self.fanout_caps
        v1 = self.index.codebook_sizes[0]
        if int(meta["num_items"]) != n or list(meta["codebook_sizes"]) != list(self.index.codebook_sizes):
            raise ConstraintDataError(f"{folder / META_FILE}: items or codebook sizes differ from the catalog index")
        int64, int32, bool_ = np.dtype(np.int64), np.dtype(np.int32), np.dtype(bool)
        expected = dict.fromkeys(TABLE_NAMES[:2], (int64, (v1,)))
        expected.update(dict.fromkeys(TABLE_NAMES[2:5], (int64, (p + c2,))))
        expected.update({TABLE_NAMES[5]: (int64, (n + c3,)), SET_PAIRS: (bool_, (s, p + c2))})
        expected.update({SET_ITEMS: (bool_, (s, n + c3)), PAIR_L1: (int64, (p,)), ITEM_PAIR: (int64, (n,))})
        expected.update({SET_PAIR_COUNTS: (int32, (s, p)), SET_L1_PAIRS: (int32, (s, v1))})
        expected.update({SET_OFFSETS: (int64, (s + 1,))})
        for name, (dtype, shape) in expected.items():
            value = self.arrays[name]
            if value.dtype != dtype or value.shape != shape:
                raise ConstraintDataError(
                    f"{folder / (name + '.npy')}: {value.dtype} {list(value.shape)}, expected {dtype} {list(shape)}"
                )
        members = self.arrays[SET_MEMBERS]
        if members.dtype != int64 or members.shape != (int(self.arrays[SET_OFFSETS][-1]),):
            raise ConstraintDataError(f"{folder / (SET_MEMBERS + '.npy')}: does not match {SET_OFFSETS}.npy")
        if int(self.arrays[L2_COUNT].sum()) != p or int(self.arrays[L3_COUNT][:p].sum()) != n:
            raise ConstraintDataError(f"{folder}: the prefix tables do not count the catalog's {n} items")


def _read_meta(path: Path) -> dict:
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConstraintDataError(f"{path}: cannot read the constraint data's description ({exc})") from None
    keys = ("format", "set_names", "fanout_caps", "num_items", "num_pairs", "codebook_sizes", "fingerprint")
    if not isinstance(meta, dict) or any(key not in meta for key in keys):
        raise ConstraintDataError(f"{path}: expected a JSON object with {', '.join(keys)}")
    if meta["format"] != FORMAT_VERSION:
        raise ConstraintDataError(f"{path}: format {meta['format']!r}, this runtime reads format {FORMAT_VERSION}")
    return meta
